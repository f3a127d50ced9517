//! The device's sealed on-disk store: one redb file holding every record's signed changes,
//! compacted snapshots and the device's secrets, all sealed under a passphrase-wrapped key.
//!
//! Layout (keys are plaintext and reveal only ids, section codes, sequence numbers and change
//! hashes; every value is sealed with XChaCha20-Poly1305, its table and key as associated data):
//!
//! | table       | key                              | value                               |
//! |-------------|----------------------------------|-------------------------------------|
//! | `meta`      | name                             | format version, KDF settings, wrapped store key (not sealed) |
//! | `secrets`   | name                             | device key, root key, certificates  |
//! | `records`   | record id                        | record info                         |
//! | `changes`   | record ‖ section ‖ seq (BE)      | one Automerge change                |
//! | `sigs`      | record ‖ section ‖ change hash   | the change's ed25519 signature      |
//! | `snapshots` | record ‖ section                 | seq compacted through ‖ `save()`    |
//! | `access`    | record ‖ statement id            | a signed membership statement       |
//! | `peers`     | record ‖ device key              | the peer's last known address       |
//!
//! A `changes` row holds one local change, or a bundle of changes received from a peer in one
//! go (kind byte first). Signatures are kept for every local change and for the head change of
//! each author in every batch received; see docs/PROTOCOL.md for why that suffices.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;

pub use crate::FORMAT_VERSION;
use crate::db_error::db_err;
use automerge::{AutoCommit, Change};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use phr_model::change::SignedChange;
use phr_model::crypto::{KdfParams, SecretKey, derive_key, random_bytes};
use phr_model::error::{Damage, Error, Origin, Result, Stored};
use phr_model::identity::RecordId;
use phr_model::section::Section;

/// Uncompacted changes in a section after which it is folded into a snapshot.
pub const COMPACT_AFTER: usize = 2048;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const CHANGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("changes");
const SIGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sigs");
const SNAPSHOTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("snapshots");
const ACCESS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("access");
const PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peers");

/// Kinds of rows in `changes`: one change, or a bundle of changes received together.
const ROW_CHANGE: u8 = 0;
const ROW_BUNDLE: u8 = 1;
const ROW_LIST: u8 = 2;

const KEY_WRAP_AAD: &[u8] = b"phr/store-key/v1";

#[derive(serde::Serialize, serde::Deserialize)]
struct KdfSlot {
    params: KdfParams,
    salt: [u8; 16],
}

fn section_key(record: &RecordId, section: Section) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.extend_from_slice(&record.0);
    k.push(section.code());
    k
}

fn change_key(record: &RecordId, section: Section, seq: u64) -> Vec<u8> {
    let mut k = section_key(record, section);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn sig_key(record: &RecordId, section: Section, hash: &[u8; 32]) -> Vec<u8> {
    let mut k = section_key(record, section);
    k.extend_from_slice(hash);
    k
}

fn aad(table: &str, key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(table.len() + 1 + key.len());
    a.extend_from_slice(table.as_bytes());
    a.push(0);
    a.extend_from_slice(key);
    a
}

thread_local! {
    /// Set while [`guarded`] runs on this thread: a panic there is expected and reported as an error.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Wrap the process's panic hook once so that panics inside [`guarded`] print nothing: redb
/// panics on some damaged files, and the user should see our error, not a backtrace. Panics
/// anywhere else, on any thread, still reach the previous hook unchanged.
fn quiet_guarded_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                tracing::debug!("caught a panic reading a damaged store: {info}");
            } else {
                previous(info);
            }
        }));
    });
}

/// Run a redb call that may panic on a damaged file, turning the panic into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    quiet_guarded_panics();
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.unwrap_or_else(|_| Err(Error::Corrupt(Damage::Crashed)))
}

/// Check, reading only, that every table walks in key order and every sealed value opens
/// under `key`: catches a wrong key, altered values and branch pages of a damaged file that
/// lead to the wrong (or the same) leaf twice. A missing table is left to the reads that need it.
fn verify_sealed(txn: &redb::ReadTransaction, key: &SecretKey) -> Result<()> {
    fn out_of_order(table: &str) -> Error {
        Error::Corrupt(Damage::TableOrder {
            table: table.to_string(),
        })
    }
    match txn.open_table(SECRETS) {
        Ok(table) => {
            let mut last: Option<String> = None;
            for row in table.iter().map_err(db_err)? {
                let (k, v) = row.map_err(db_err)?;
                let name = k.value();
                if last.as_deref().is_some_and(|l| l >= name) {
                    return Err(out_of_order("secrets"));
                }
                key.open(&aad("secrets", name.as_bytes()), v.value())?;
                last = Some(name.to_string());
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(db_err(e)),
    }
    let tables = [
        ("records", RECORDS),
        ("changes", CHANGES),
        ("sigs", SIGS),
        ("snapshots", SNAPSHOTS),
        ("access", ACCESS),
        ("peers", PEERS),
    ];
    for (name, def) in tables {
        let table = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(db_err(e)),
        };
        let mut last: Option<Vec<u8>> = None;
        for row in table.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let k = k.value();
            if last.as_deref().is_some_and(|l| l >= k) {
                return Err(out_of_order(name));
            }
            key.open(&aad(name, k), v.value())?;
            last = Some(k.to_vec());
        }
    }
    Ok(())
}

/// Open the store for writing, verifying the checksum of every page of the committed trees and
/// rebuilding redb's page allocator from them instead of trusting the recorded allocator state.
/// A plain open trusts a cleanly closed file: damage to branch pages can hide rows from reads
/// without any error, and damage to the recorded allocator state panics (or reuses a live page)
/// at the next commit, which happens on every close. Nothing is written before the check passes.
///
/// If the latest commit of a `clean` file (one that needs no crash recovery) fails its
/// checksums, redb would fall back to the commit before it, silently dropping the latest
/// changes; that is refused instead. After a crash that fallback is redb's normal recovery.
fn open_checked(path: &Path, clean: bool) -> Result<Database> {
    let mut builder = redb::Builder::new();
    builder.set_check_integrity_on_open(true);
    if clean {
        // redb reports progress 0.3 only when it is about to roll back to the previous commit.
        builder.set_repair_callback(|session| {
            if (0.2..0.4).contains(&session.progress()) {
                session.abort();
            }
        });
    }
    match builder.open(path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::RepairAborted) => Err(Error::Corrupt(Damage::Checksums)),
        Err(e) => Err(db_err(e)),
    }
}

fn read_meta(txn: &redb::ReadTransaction) -> Result<(u32, KdfSlot, Vec<u8>)> {
    let meta = txn.open_table(META).map_err(|_| Error::Corrupt(Damage::NotAStore))?;
    let get = |name: &str| -> Result<Vec<u8>> {
        meta.get(name)
            .map_err(db_err)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| Error::Corrupt(Damage::Missing(Stored::Metadata(name.to_string()))))
    };
    let format_bytes = get("format")?;
    let format = u32::from_le_bytes(
        format_bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::FormatVersion)))?,
    );
    let kdf: KdfSlot =
        postcard::from_bytes(&get("kdf")?).map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::KdfSettings)))?;
    Ok((format, kdf, get("wrapped_key")?))
}

/// A store's key slot, to check a passphrase against (the portal asks for the passphrase again
/// before a sensitive act): [`Store::passphrase_check`].
pub struct PassphraseCheck {
    kdf: KdfSlot,
    wrapped: Vec<u8>,
}

impl PassphraseCheck {
    /// `Ok` if `passphrase` unlocks the store (argon2id, as opening it does), else
    /// [`Error::WrongPassphrase`].
    pub fn verify(&self, passphrase: &str) -> Result<()> {
        Store::unwrap_key(passphrase, &self.kdf, &self.wrapped).map(|_| ())
    }
}

/// Load a stored snapshot value, opened: the next change sequence number, then `save()` bytes.
pub(crate) fn decode_snapshot(section: Section, plain: &[u8]) -> Result<AutoCommit> {
    if plain.len() < 8 {
        return Err(Error::Corrupt(Damage::Unreadable(Stored::Snapshot(section))));
    }
    phr_model::change::load_document(Origin::StoredSnapshot(section), &plain[8..]).map_err(|e| match e {
        Error::Corrupt(_) => e,
        other => Error::Corrupt(Damage::Undecodable {
            stored: Stored::Snapshot(section),
            cause: Box::new(other),
        }),
    })
}

/// Decode one stored change row, opened (a single change, a bundle, or a postcard list of
/// changes), appending its changes to `changes`.
pub(crate) fn decode_change_row(section: Section, plain: &[u8], changes: &mut Vec<Change>) -> Result<()> {
    decode_row(section, plain, changes).map_err(|e| match e {
        Error::Corrupt(_) => e,
        other => Error::Corrupt(Damage::Undecodable {
            stored: Stored::Change(section),
            cause: Box::new(other),
        }),
    })
}

fn decode_row(section: Section, plain: &[u8], changes: &mut Vec<Change>) -> Result<()> {
    let bad = || Error::Corrupt(Damage::Unreadable(Stored::Change(section)));
    let what = Origin::StoredChange(section);
    match plain.split_first() {
        Some((&ROW_CHANGE, bytes)) => changes.push(phr_model::change::decode_change(what, bytes)?),
        Some((&ROW_BUNDLE, bytes)) => changes.extend(phr_model::change::decode_bundle(what, bytes)?),
        Some((&ROW_LIST, bytes)) => {
            let list: Vec<Vec<u8>> = postcard::from_bytes(bytes).map_err(|_| bad())?;
            for c in list {
                changes.push(phr_model::change::decode_change(what, &c)?);
            }
        }
        _ => return Err(bad()),
    }
    Ok(())
}

/// Something a sync session took in, to be made durable.
#[derive(Debug, Clone)]
pub enum Persist {
    /// Changes appended as one bundle row.
    Bundle {
        /// Record.
        record: RecordId,
        /// Section.
        section: Section,
        /// Automerge bundle bytes.
        bundle: Vec<u8>,
        /// Authors' head signatures.
        head_sigs: Vec<phr_model::verify::HeadSig>,
    },
    /// Changes appended as one row of individually encoded changes (as received live).
    Changes {
        /// Record.
        record: RecordId,
        /// Section.
        section: Section,
        /// Postcard list of encoded Automerge changes.
        list: Vec<u8>,
        /// Authors' head signatures.
        head_sigs: Vec<phr_model::verify::HeadSig>,
    },
    /// A whole section installed as its snapshot.
    Snapshot {
        /// Record.
        record: RecordId,
        /// Section.
        section: Section,
        /// `save()` bytes.
        saved: Vec<u8>,
        /// Authors' head signatures.
        head_sigs: Vec<phr_model::verify::HeadSig>,
    },
}

/// The sealed store of one device home.
pub struct Store {
    db: Database,
    key: SecretKey,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Create a new store file protected by `passphrase`. Refuses to overwrite.
    pub fn create(path: &Path, passphrase: &str, kdf: KdfParams) -> Result<Store> {
        if path.exists() {
            return Err(Error::StoreExists {
                home: path.to_path_buf(),
            });
        }
        if let Some(dir) = path.parent() {
            crate::private_file::create_dir(dir)?;
        }
        let salt: [u8; 16] = random_bytes();
        let kek = derive_key(passphrase, &salt, kdf)?;
        let key = SecretKey::generate();
        let wrapped = kek.seal(KEY_WRAP_AAD, key.as_bytes());
        // Made private before redb writes a byte: a copy of the store is what a passphrase
        // can be guessed against offline.
        let file = crate::private_file::create_file(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::StoreExists {
                home: path.to_path_buf(),
            },
            _ => e.into(),
        })?;
        let created = redb::backends::FileBackend::new(file).and_then(|b| redb::Builder::new().create_with_backend(b));
        let db = match created {
            Ok(db) => db,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(db_err(e));
            }
        };
        let txn = db.begin_write().map_err(db_err)?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            meta.insert("format", FORMAT_VERSION.to_le_bytes().as_slice())
                .map_err(db_err)?;
            let slot = postcard::to_stdvec(&KdfSlot { params: kdf, salt })
                .map_err(|_| Error::internal("a key slot would not encode"))?;
            meta.insert("kdf", slot.as_slice()).map_err(db_err)?;
            meta.insert("wrapped_key", wrapped.as_slice()).map_err(db_err)?;
            txn.open_table(SECRETS).map_err(db_err)?;
            txn.open_table(RECORDS).map_err(db_err)?;
            txn.open_table(CHANGES).map_err(db_err)?;
            txn.open_table(SIGS).map_err(db_err)?;
            txn.open_table(SNAPSHOTS).map_err(db_err)?;
            txn.open_table(ACCESS).map_err(db_err)?;
            txn.open_table(PEERS).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(Store {
            db,
            key,
            path: path.to_path_buf(),
        })
    }

    /// Open and unlock an existing store. A wrong passphrase or a damaged file is reported
    /// without writing anything to the file.
    pub fn open(path: &Path, passphrase: &str) -> Result<Store> {
        if !path.exists() {
            return Err(Error::NoStore {
                home: path.to_path_buf(),
            });
        }
        // First look read-only: checks format, passphrase and every sealed value without
        // touching the file. Opening writable makes redb rewrite its header and allocator
        // state even if nothing is changed, so a store that will be refused must be refused
        // here, before that.
        let checked = guarded(|| {
            let ro = match redb::Builder::new().open_read_only(path) {
                Ok(ro) => ro,
                // Left mid-write by a crash: redb must replay its recovery, which writes.
                // That is redb's normal crash path, so defer all checks to the writable open.
                Err(redb::DatabaseError::RepairAborted) => return Ok(None),
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(Error::StoreBusy),
                Err(e) => return Err(db_err(e)),
            };
            let txn = ro.begin_read().map_err(db_err)?;
            let (format, kdf, wrapped) = read_meta(&txn)?;
            Self::check_format(format)?;
            let key = Self::unwrap_key(passphrase, &kdf, &wrapped)?;
            verify_sealed(&txn, &key)?;
            Ok(Some((kdf, wrapped, key)))
        })?;
        let clean = checked.is_some();
        let db = guarded(|| open_checked(path, clean))?;
        let (format, kdf, wrapped) = guarded(|| read_meta(&db.begin_read().map_err(db_err)?))?;
        Self::check_format(format)?;
        let key = match checked {
            // Same wrapped key under the same salt and settings: same key, no second argon2 run.
            Some((kdf0, wrapped0, key))
                if kdf0.salt == kdf.salt && kdf0.params == kdf.params && wrapped0 == wrapped =>
            {
                key
            }
            _ => {
                let key = Self::unwrap_key(passphrase, &kdf, &wrapped)?;
                guarded(|| verify_sealed(&db.begin_read().map_err(db_err)?, &key))?;
                key
            }
        };
        Ok(Store {
            db,
            key,
            path: path.to_path_buf(),
        })
    }

    fn check_format(format: u32) -> Result<()> {
        if format > FORMAT_VERSION {
            return Err(Error::NewerFormat {
                found: format,
                supported: FORMAT_VERSION,
            });
        }
        Ok(())
    }

    fn unwrap_key(passphrase: &str, kdf: &KdfSlot, wrapped: &[u8]) -> Result<SecretKey> {
        let kek = derive_key(passphrase, &kdf.salt, kdf.params)?;
        let raw = kek.open(KEY_WRAP_AAD, wrapped).map_err(|_| Error::WrongPassphrase)?;
        let arr: [u8; 32] = raw
            .try_into()
            .map_err(|_| Error::Corrupt(Damage::WrongLength(Stored::WrappedKey)))?;
        Ok(SecretKey::from_bytes(arr))
    }

    /// What checking a passphrase against this store needs (its key slot as stored now), read
    /// without deriving anything, so a caller can run the slow derivation without holding the
    /// device.
    pub fn passphrase_check(&self) -> Result<PassphraseCheck> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let (_, kdf, wrapped) = read_meta(&txn)?;
        Ok(PassphraseCheck { kdf, wrapped })
    }

    /// Where the store file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Change the passphrase: re-wraps the store key; the data is not re-encrypted.
    pub fn change_passphrase(&self, new_passphrase: &str, kdf: KdfParams) -> Result<()> {
        phr_model::crypto::check_new_passphrase(new_passphrase)?;
        let salt: [u8; 16] = random_bytes();
        let kek = derive_key(new_passphrase, &salt, kdf)?;
        let wrapped = kek.seal(KEY_WRAP_AAD, self.key.as_bytes());
        let slot = postcard::to_stdvec(&KdfSlot { params: kdf, salt })
            .map_err(|_| Error::internal("a key slot would not encode"))?;
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            meta.insert("kdf", slot.as_slice()).map_err(db_err)?;
            meta.insert("wrapped_key", wrapped.as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Store a named secret (sealed), durably.
    pub fn put_secret(&self, name: &str, value: &[u8]) -> Result<()> {
        let sealed = self.key.seal(&aad("secrets", name.as_bytes()), value);
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(SECRETS)
            .map_err(db_err)?
            .insert(name, sealed.as_slice())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Read a named secret.
    pub fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SECRETS).map_err(db_err)?;
        match table.get(name).map_err(db_err)? {
            Some(v) => Ok(Some(self.key.open(&aad("secrets", name.as_bytes()), v.value())?)),
            None => Ok(None),
        }
    }

    /// Every named secret whose name starts with `prefix`, in name order.
    pub fn secrets_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SECRETS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.range(prefix..).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let name = k.value();
            if !name.starts_with(prefix) {
                break;
            }
            out.push((
                name.to_string(),
                self.key.open(&aad("secrets", name.as_bytes()), v.value())?,
            ));
        }
        Ok(out)
    }

    /// Remove a named secret, durably.
    pub fn delete_secret(&self, name: &str) -> Result<()> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(SECRETS).map_err(db_err)?.remove(name).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Register a record this home holds, with opaque sealed info.
    pub fn put_record(&self, record: &RecordId, info: &[u8]) -> Result<()> {
        let sealed = self.key.seal(&aad("records", &record.0), info);
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(RECORDS)
            .map_err(db_err)?
            .insert(record.0.as_slice(), sealed.as_slice())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Whether this home holds `record`: one key lookup, nothing unsealed.
    pub fn has_record(&self, record: &RecordId) -> Result<bool> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(RECORDS).map_err(db_err)?;
        Ok(table.get(record.0.as_slice()).map_err(db_err)?.is_some())
    }

    /// How many records this home holds (nothing unsealed).
    pub fn record_count(&self) -> Result<u64> {
        let txn = self.db.begin_read().map_err(db_err)?;
        txn.open_table(RECORDS).map_err(db_err)?.len().map_err(db_err)
    }

    /// One held record's info.
    pub fn record_info(&self, record: &RecordId) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(RECORDS).map_err(db_err)?;
        match table.get(record.0.as_slice()).map_err(db_err)? {
            Some(v) => Ok(Some(self.key.open(&aad("records", &record.0), v.value())?)),
            None => Ok(None),
        }
    }

    /// Records held in this home, with their info.
    pub fn records(&self) -> Result<Vec<(RecordId, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(RECORDS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let id: [u8; 32] = k
                .value()
                .try_into()
                .map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::RecordId)))?;
            out.push((
                RecordId::from(id),
                self.key.open(&aad("records", k.value()), v.value())?,
            ));
        }
        Ok(out)
    }

    /// Durably append signed changes of one record in a single transaction (group commit).
    ///
    /// Returns, per section touched, how many changes now wait for compaction.
    pub fn append(&self, record: &RecordId, changes: &[SignedChange]) -> Result<BTreeMap<Section, usize>> {
        let mut waiting = BTreeMap::new();
        if changes.is_empty() {
            return Ok(waiting);
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut ctable = txn.open_table(CHANGES).map_err(db_err)?;
            let mut stable = txn.open_table(SIGS).map_err(db_err)?;
            let mut next: BTreeMap<Section, u64> = BTreeMap::new();
            for sc in changes {
                let seq = match next.get(&sc.section) {
                    Some(s) => *s,
                    None => Self::next_seq(&ctable, record, sc.section)?,
                };
                next.insert(sc.section, seq + 1);
                let ck = change_key(record, sc.section, seq);
                let mut row = Vec::with_capacity(1 + sc.bytes.len());
                row.push(ROW_CHANGE);
                row.extend_from_slice(&sc.bytes);
                let sealed = self.key.seal(&aad("changes", &ck), &row);
                ctable.insert(ck.as_slice(), sealed.as_slice()).map_err(db_err)?;
                let sk = sig_key(record, sc.section, &sc.hash);
                let sealed_sig = self.key.seal(&aad("sigs", &sk), &sc.signature);
                stable.insert(sk.as_slice(), sealed_sig.as_slice()).map_err(db_err)?;
            }
            for section in next.keys() {
                // Rows of a section are numbered without gaps since its last compaction (which
                // removes them all), so first and last give the count without a scan.
                let (lo, hi) = section_bounds(record, *section);
                let mut rows = ctable.range(lo.as_slice()..hi.as_slice()).map_err(db_err)?;
                let first = match rows.next() {
                    Some(row) => seq_of(row.map_err(db_err)?.0.value())?,
                    None => continue,
                };
                let last = match rows.next_back() {
                    Some(row) => seq_of(row.map_err(db_err)?.0.value())?,
                    None => first,
                };
                waiting.insert(*section, (last - first + 1) as usize);
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(waiting)
    }

    fn next_seq(
        table: &impl ReadableTable<&'static [u8], &'static [u8]>,
        record: &RecordId,
        section: Section,
    ) -> Result<u64> {
        let (lo, hi) = section_bounds(record, section);
        let last = table.range(lo.as_slice()..hi.as_slice()).map_err(db_err)?.next_back();
        match last {
            Some(row) => {
                let (k, _) = row.map_err(db_err)?;
                Ok(seq_of(k.value())? + 1)
            }
            None => Ok(0),
        }
    }

    /// Load one section: its snapshot plus the changes after it, applied as one batch.
    pub fn load_section(&self, record: &RecordId, section: Section) -> Result<(AutoCommit, usize)> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let (doc, waiting) = self.load_section_in(&txn, record, section)?;
        Ok((doc.unwrap_or_default(), waiting))
    }

    fn load_section_in(
        &self,
        txn: &redb::ReadTransaction,
        record: &RecordId,
        section: Section,
    ) -> Result<(Option<AutoCommit>, usize)> {
        let snaps = txn.open_table(SNAPSHOTS).map_err(db_err)?;
        let sk = section_key(record, section);
        let mut doc = match snaps.get(sk.as_slice()).map_err(db_err)? {
            Some(v) => Some(decode_snapshot(
                section,
                &self.key.open(&aad("snapshots", &sk), v.value())?,
            )?),
            None => None,
        };
        let table = txn.open_table(CHANGES).map_err(db_err)?;
        let (lo, hi) = section_bounds(record, section);
        let mut changes = Vec::new();
        for row in table.range(lo.as_slice()..hi.as_slice()).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let plain = self.key.open(&aad("changes", k.value()), v.value())?;
            decode_change_row(section, &plain, &mut changes)?;
        }
        let waiting = changes.len();
        if !changes.is_empty() {
            doc.get_or_insert_with(AutoCommit::new).apply_changes_batch(changes)?;
        }
        Ok((doc, waiting))
    }

    /// Load every section of a record that holds anything.
    pub fn load_record(&self, record: &RecordId) -> Result<(BTreeMap<Section, AutoCommit>, BTreeMap<Section, usize>)> {
        let mut docs = BTreeMap::new();
        let mut waiting = BTreeMap::new();
        // One read transaction for the whole record: a node loading thousands of records paid
        // for one per section.
        let txn = self.db.begin_read().map_err(db_err)?;
        for section in Section::SYNCED {
            let (doc, n) = self.load_section_in(&txn, record, section)?;
            if let Some(doc) = doc {
                docs.insert(section, doc);
            }
            waiting.insert(section, n);
        }
        Ok((docs, waiting))
    }

    /// Fold a section's changes into a snapshot of `doc`, which must hold every stored change.
    pub fn compact(&self, record: &RecordId, section: Section, doc: &mut AutoCommit) -> Result<()> {
        let saved = doc.save();
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut ctable = txn.open_table(CHANGES).map_err(db_err)?;
            let next = Self::next_seq(&ctable, record, section)?;
            let sk = section_key(record, section);
            let mut plain = Vec::with_capacity(8 + saved.len());
            plain.extend_from_slice(&next.to_be_bytes());
            plain.extend_from_slice(&saved);
            let sealed = self.key.seal(&aad("snapshots", &sk), &plain);
            txn.open_table(SNAPSHOTS)
                .map_err(db_err)?
                .insert(sk.as_slice(), sealed.as_slice())
                .map_err(db_err)?;
            let (lo, hi) = section_bounds(record, section);
            ctable
                .retain_in(lo.as_slice()..hi.as_slice(), |_, _| false)
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Durably store what sync sessions took in, all in one transaction (group commit).
    pub fn persist_received(&self, items: &[Persist]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut ctable = txn.open_table(CHANGES).map_err(db_err)?;
            let mut snaps = txn.open_table(SNAPSHOTS).map_err(db_err)?;
            for item in items {
                match item {
                    Persist::Bundle {
                        record,
                        section,
                        bundle: bytes,
                        head_sigs,
                    }
                    | Persist::Changes {
                        record,
                        section,
                        list: bytes,
                        head_sigs,
                    } => {
                        let kind = if matches!(item, Persist::Bundle { .. }) {
                            ROW_BUNDLE
                        } else {
                            ROW_LIST
                        };
                        let seq = Self::next_seq(&ctable, record, *section)?;
                        let ck = change_key(record, *section, seq);
                        let mut row = Vec::with_capacity(1 + bytes.len());
                        row.push(kind);
                        row.extend_from_slice(bytes);
                        ctable
                            .insert(ck.as_slice(), self.key.seal(&aad("changes", &ck), &row).as_slice())
                            .map_err(db_err)?;
                        self.put_sigs(&txn, record, *section, head_sigs)?;
                    }
                    Persist::Snapshot {
                        record,
                        section,
                        saved,
                        head_sigs,
                    } => {
                        let next = Self::next_seq(&ctable, record, *section)?;
                        let sk = section_key(record, *section);
                        let mut plain = Vec::with_capacity(8 + saved.len());
                        plain.extend_from_slice(&next.to_be_bytes());
                        plain.extend_from_slice(saved);
                        let sealed = self.key.seal(&aad("snapshots", &sk), &plain);
                        snaps.insert(sk.as_slice(), sealed.as_slice()).map_err(db_err)?;
                        let (lo, hi) = section_bounds(record, *section);
                        ctable
                            .retain_in(lo.as_slice()..hi.as_slice(), |_, _| false)
                            .map_err(db_err)?;
                        self.put_sigs(&txn, record, *section, head_sigs)?;
                    }
                }
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    fn put_sigs(
        &self,
        txn: &redb::WriteTransaction,
        record: &RecordId,
        section: Section,
        sigs: &[phr_model::verify::HeadSig],
    ) -> Result<()> {
        let mut stable = txn.open_table(SIGS).map_err(db_err)?;
        for h in sigs {
            let sk = sig_key(record, section, &h.hash);
            stable
                .insert(sk.as_slice(), self.key.seal(&aad("sigs", &sk), &h.sig).as_slice())
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Durably add membership statements (already verified by the caller).
    pub fn put_statements(&self, record: &RecordId, statements: &[phr_model::access::Statement]) -> Result<()> {
        if statements.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(ACCESS).map_err(db_err)?;
            for st in statements {
                let mut k = record.0.to_vec();
                k.extend_from_slice(&st.id());
                let bytes = postcard::to_stdvec(st).map_err(|_| Error::internal("a value would not encode"))?;
                table
                    .insert(k.as_slice(), self.key.seal(&aad("access", &k), &bytes).as_slice())
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Every membership statement stored for a record (not re-verified).
    pub fn statements(&self, record: &RecordId) -> Result<Vec<phr_model::access::Statement>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(ACCESS).map_err(db_err)?;
        let (lo, hi) = record_bounds(record);
        let mut out = Vec::new();
        for row in table.range(lo.as_slice()..hi.as_slice()).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let plain = self.key.open(&aad("access", k.value()), v.value())?;
            out.push(postcard::from_bytes(&plain).map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::Membership)))?);
        }
        Ok(out)
    }

    /// Remember how to reach a peer device.
    pub fn put_peer(&self, record: &RecordId, device: &phr_model::identity::PublicKey, info: &[u8]) -> Result<()> {
        let mut k = record.0.to_vec();
        k.extend_from_slice(&device.0);
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(PEERS)
            .map_err(db_err)?
            .insert(k.as_slice(), self.key.seal(&aad("peers", &k), info).as_slice())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Known peers of a record with their stored info.
    pub fn peers(&self, record: &RecordId) -> Result<Vec<(phr_model::identity::PublicKey, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(PEERS).map_err(db_err)?;
        let (lo, hi) = record_bounds(record);
        let mut out = Vec::new();
        for row in table.range(lo.as_slice()..hi.as_slice()).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let dev: [u8; 32] = k
                .value()
                .get(32..64)
                .and_then(|s| s.try_into().ok())
                .ok_or(Error::Corrupt(Damage::Unreadable(Stored::PeerKey)))?;
            out.push((dev.into(), self.key.open(&aad("peers", k.value()), v.value())?));
        }
        Ok(out)
    }

    /// The stored signature of a change, if known.
    pub fn signature(&self, record: &RecordId, section: Section, hash: &[u8; 32]) -> Result<Option<[u8; 64]>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SIGS).map_err(db_err)?;
        let k = sig_key(record, section, hash);
        match table.get(k.as_slice()).map_err(db_err)? {
            Some(v) => {
                let raw = self.key.open(&aad("sigs", &k), v.value())?;
                Ok(Some(
                    raw.try_into()
                        .map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::Signature)))?,
                ))
            }
            None => Ok(None),
        }
    }

    /// Number of signatures stored for a section (one per change ever stored).
    pub fn signature_count(&self, record: &RecordId, section: Section) -> Result<usize> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SIGS).map_err(db_err)?;
        let (lo, hi) = section_bounds(record, section);
        Ok(table.range(lo.as_slice()..hi.as_slice()).map_err(db_err)?.count())
    }
}

fn section_bounds(record: &RecordId, section: Section) -> (Vec<u8>, Vec<u8>) {
    let lo = section_key(record, section);
    let mut hi = lo.clone();
    // Section codes are < 255, so bumping the last byte gives the next section's prefix.
    if let Some(last) = hi.last_mut() {
        *last += 1;
    }
    (lo, hi)
}

/// Bounds of the keys `record ‖ 32-byte id` (tables `access` and `peers`). The upper bound must
/// lie above `record ‖ ff…`: a bound of `record ‖ ff` would skip every id whose first byte is ff.
fn record_bounds(record: &RecordId) -> (Vec<u8>, Vec<u8>) {
    let lo = record.0.to_vec();
    let mut hi = lo.clone();
    hi.extend_from_slice(&[0xff; 33]);
    (lo, hi)
}

fn seq_of(key: &[u8]) -> Result<u64> {
    let tail: [u8; 8] = key
        .get(33..41)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Corrupt(Damage::Unreadable(Stored::ChangeKey)))?;
    Ok(u64::from_be_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_model::access::Statement;
    use phr_model::identity::{DeviceCert, KeyPair, PublicKey};

    fn cheap() -> KdfParams {
        KdfParams::for_tests()
    }

    #[test]
    fn statements_and_peers_whose_id_starts_with_ff_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("s.redb"), "pw", cheap()).unwrap();
        let root = KeyPair::generate();
        let record = root.public();
        // A certificate whose statement id (its storage key after the record) starts with ff.
        let high = (0..)
            .map(|i| Statement::Device(DeviceCert::issue(&root, KeyPair::generate().public(), "d", i)))
            .find(|st| st.id()[0] == 0xff)
            .unwrap();
        let low = Statement::Device(DeviceCert::issue(&root, KeyPair::generate().public(), "e", 0));
        store.put_statements(&record, &[high.clone(), low.clone()]).unwrap();
        let got = store.statements(&record).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.contains(&high) && got.contains(&low));

        store.put_peer(&record, &PublicKey([0xff; 32]), b"far").unwrap();
        store.put_peer(&record, &PublicKey([0x01; 32]), b"near").unwrap();
        assert_eq!(store.peers(&record).unwrap().len(), 2);
    }

    #[test]
    fn a_passphrase_is_checked_against_the_store_it_would_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("s.redb"), "right passphrase", cheap()).unwrap();
        let check = store.passphrase_check().unwrap();
        assert!(check.verify("right passphrase").is_ok());
        assert!(matches!(check.verify("wrong passphrase"), Err(Error::WrongPassphrase)));
        store
            .change_passphrase("a new passphrase, long enough", cheap())
            .unwrap();
        let check = store.passphrase_check().unwrap();
        assert!(check.verify("a new passphrase, long enough").is_ok());
        assert!(matches!(check.verify("right passphrase"), Err(Error::WrongPassphrase)));
    }
}
