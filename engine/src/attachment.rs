//! Encrypted attachments: files of any size, sealed chunk by chunk under a random key of their
//! own, kept content-addressed in the home's blob store (`HOME/blobs/`, ciphertext only) and
//! referenced from an entry of `documents`, `insurance` or `notes`.
//!
//! The reference ([`Attachment`]: key, nonce prefix, blob hash, sizes, media type) is a field of
//! the entry, so it lives inside the sealed, signed record: only those who may read the section
//! learn the key, and the blob store and the network only ever see ciphertext.
//!
//! # Blob format, version 1
//!
//! ```text
//! n         = max(1, ceil(size / chunk))
//! blob      = sealed(0) ‖ sealed(1) ‖ … ‖ sealed(n-1)
//! sealed(i) = XChaCha20-Poly1305(key, nonce(i), aad, plaintext[i·chunk .. min((i+1)·chunk, size)])
//!             (ciphertext ‖ 16-byte tag)
//! nonce(i)  = prefix (15 random bytes per file) ‖ i (u64 big-endian) ‖ last (1 byte: 1 if i = n-1, else 0)
//! aad       = "phr/attachment/v1"
//! ```
//!
//! The nonce commits every chunk to its position and the final one to being final, so a
//! reordered, dropped or repeated chunk and a truncated or extended blob all fail to open, chunk
//! by chunk, without holding the file in memory. Opening also checks the total size and the
//! plaintext hash the entry records. The blob's address is the BLAKE3 hash of the ciphertext,
//! which iroh-blobs verifies on every transfer.
//!
//! # The same file twice
//!
//! Each entry records the plaintext's BLAKE3 hash, keyed per record (see [`plain_hasher`]).
//! Attaching a file whose keyed hash and size match an attachment the record already holds
//! reuses that attachment's blob and key instead of sealing the file again, so the file is
//! stored (and transferred) once. The key is per record so that the hash says nothing across
//! records; within a record only readers of the section see it, and they can open the file anyway.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use iroh_blobs::api::blobs::{AddProgressItem, BlobStatus};
use iroh_blobs::api::proto::ExportRangesItem;
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::store::fs::options::Options;
use iroh_blobs::store::{GcConfig, ProtectCb, ProtectOutcome};
use iroh_blobs::{Hash, HashAndFormat};
use n0_future::StreamExt;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce as RingNonce, Tag as RingTag, UnboundKey};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::identity::RecordId;
use crate::record::Record;
use crate::section::Section;
use crate::sync::Replica;

/// Sections whose entries may carry an attachment.
pub const SECTIONS: [Section; 3] = [Section::Documents, Section::Insurance, Section::Notes];

/// Plaintext bytes per sealed chunk for new attachments.
pub const CHUNK_SIZE: u32 = 64 * 1024;

/// Directory of the blob store inside a home.
pub const BLOB_DIR: &str = "blobs";

/// Version of the blob format described in the module docs.
pub const FORMAT: u32 = 1;

/// Smallest and largest chunk a reference may name: the upper bound caps what opening one
/// chunk allocates, whatever a (possibly hostile) writer put in the entry.
const MIN_CHUNK: u64 = 1024;
const MAX_CHUNK: u64 = 16 * 1024 * 1024;
/// Largest plaintext an attachment may describe (1 TiB): keeps every size computation far from
/// overflow and every number exact when Automerge stores it as a float.
const MAX_SIZE: u64 = 1 << 40;
const NONCE_PREFIX: usize = 15;
const TAG_LEN: usize = 16;
const AAD: &[u8] = b"phr/attachment/v1";
const PLAIN_HASH_CONTEXT: &str = "phr attachment plaintext hash v1";
/// Tags in the blob store are named by this prefix and the blob hash: a tag keeps its blob
/// (whole or partly fetched) through garbage collection.
const TAG_PREFIX: &str = "phr/attachment/";

/// How often the blob store's collector looks whether a collection was asked for.
const GC_POLL: Duration = Duration::from_millis(100);

/// The reference to an attached file, stored as the `attachment` field of its entry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Blob format version ([`FORMAT`]).
    #[serde(deserialize_with = "whole_number")]
    pub format: u64,
    /// BLAKE3 hash of the sealed blob: its address in blob stores and on the wire.
    #[serde(with = "crate::identity::hex_bytes")]
    pub blob: [u8; 32],
    /// The file's own XChaCha20-Poly1305 key.
    #[serde(with = "crate::identity::hex_bytes")]
    pub key: [u8; 32],
    /// The file's nonce prefix.
    #[serde(with = "crate::identity::hex_bytes")]
    pub nonce: [u8; NONCE_PREFIX],
    /// Plaintext size in bytes.
    #[serde(deserialize_with = "whole_number")]
    pub size: u64,
    /// Plaintext bytes per sealed chunk.
    #[serde(deserialize_with = "whole_number")]
    pub chunk: u64,
    /// BLAKE3 hash of the plaintext, keyed per record ([`plain_hasher`]).
    #[serde(with = "crate::identity::hex_bytes")]
    pub plain_hash: [u8; 32],
    /// MIME type of the file.
    pub media_type: String,
    /// The file's name when it was attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key: debug output ends up in logs.
        f.debug_struct("Attachment")
            .field("blob", &hex::encode(self.blob))
            .field("size", &self.size)
            .field("chunk", &self.chunk)
            .field("media_type", &self.media_type)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Automerge keeps numbers as floats; accept a whole, non-negative float as well as an integer.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                return Ok(u);
            }
            match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 => Ok(f as u64),
                _ => Err(serde::de::Error::custom(format!("`{n}` is not a whole number"))),
            }
        }
        other => Err(serde::de::Error::custom(format!("`{other}` is not a number"))),
    }
}

impl Attachment {
    /// Check what opening relies on; the error says what is wrong, for a field error.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.format != u64::from(FORMAT) {
            return Err(format!(
                "blob format {} is not one this phr reads (it reads {FORMAT}): upgrade phr",
                self.format
            ));
        }
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&self.chunk) {
            return Err(format!(
                "chunk size {} is outside {MIN_CHUNK}..={MAX_CHUNK}",
                self.chunk
            ));
        }
        if self.size > MAX_SIZE {
            return Err(format!("size {} is beyond the 1 TiB limit", self.size));
        }
        if self.media_type.trim().is_empty() || self.media_type.len() > 255 {
            return Err("the media type must be 1 to 255 characters".into());
        }
        if self.name.as_ref().is_some_and(|n| n.len() > 1024) {
            return Err("the file name is longer than 1024 bytes".into());
        }
        Ok(())
    }

    /// Number of sealed chunks.
    pub fn chunks(&self) -> u64 {
        chunk_count(self.size, self.chunk)
    }

    /// Size of the sealed blob in bytes.
    pub fn sealed_size(&self) -> u64 {
        self.size + TAG_LEN as u64 * self.chunks()
    }

    /// The blob's hash as iroh-blobs names it.
    pub fn hash(&self) -> Hash {
        Hash::from_bytes(self.blob)
    }

    /// Short hex form of the blob hash, for messages.
    pub fn short(&self) -> String {
        hex::encode(&self.blob[..4])
    }

    /// A name to show for the file.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("attachment")
    }
}

fn chunk_count(size: u64, chunk: u64) -> u64 {
    size.div_ceil(chunk).max(1)
}

/// The plaintext hasher of a record: BLAKE3 keyed with a key derived from the record id.
pub fn plain_hasher(record: &RecordId) -> blake3::Hasher {
    blake3::Hasher::new_keyed(&blake3::derive_key(PLAIN_HASH_CONTEXT, &record.0))
}

/// A MIME type guessed from a file name's extension (`application/octet-stream` if unknown).
pub fn guess_media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "tif" | "tiff" => "image/tiff",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "txt" | "text" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "json" => "application/json",
        "rtf" => "application/rtf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "dcm" => "application/dicom",
        "zip" => "application/zip",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        _ => "application/octet-stream",
    }
}

// ---------------------------------------------------------------------------------------------
// Sealing and opening chunks
// ---------------------------------------------------------------------------------------------

/// The 24-byte XChaCha20 nonce of chunk `index` (see the module docs).
#[cfg(test)]
fn nonce(prefix: &[u8; NONCE_PREFIX], index: u64, last: bool) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..NONCE_PREFIX].copy_from_slice(prefix);
    n[NONCE_PREFIX..NONCE_PREFIX + 8].copy_from_slice(&index.to_be_bytes());
    n[23] = u8::from(last);
    n
}

/// XChaCha20-Poly1305 over the chunks of one file, as draft-irtf-cfrg-xchacha defines it:
/// HChaCha20 of the key and the nonce's first 16 bytes gives a subkey, then ChaCha20-Poly1305
/// (RFC 8439) runs under the subkey with a 12-byte nonce of four zero bytes and the nonce's last
/// 8. The first 16 nonce bytes are the file's prefix and the chunk index's top byte, which is 0
/// for every chunk an attachment may have (at most 2^30), so the subkey is computed once.
/// ChaCha20-Poly1305 itself is ring's (assembly): RustCrypto's generic implementation would be
/// compiled into this crate, unoptimised in debug builds and tests, at a few MB/s. A test checks
/// the output is byte for byte RustCrypto's `XChaCha20Poly1305`.
struct ChunkCipher {
    key: LessSafeKey,
    index: u64,
    count: Option<u64>,
}

impl ChunkCipher {
    fn new(key: &[u8; 32], prefix: &[u8; NONCE_PREFIX], count: Option<u64>) -> Result<Self> {
        let mut input = [0u8; 16];
        input[..NONCE_PREFIX].copy_from_slice(prefix);
        let subkey = chacha20::hchacha::<chacha20::R20>(&chacha20::Key::from(*key), &input.into());
        let key = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice())
            .map_err(|_| Error::Attachment("the file key is unusable".into()))?;
        Ok(ChunkCipher {
            key: LessSafeKey::new(key),
            index: 0,
            count,
        })
    }

    fn nonce(&self, last: bool) -> Result<RingNonce> {
        let index = self.index.to_be_bytes();
        if index[0] != 0 {
            return Err(Error::Attachment("an attachment may have at most 2^56 chunks".into()));
        }
        let mut n = [0u8; 12];
        n[4..11].copy_from_slice(&index[1..]);
        n[11] = u8::from(last);
        Ok(RingNonce::assume_unique_for_key(n))
    }
}

/// Seals the chunks of one file in order.
struct Sealer(ChunkCipher);

impl Sealer {
    fn new(key: &[u8; 32], prefix: [u8; NONCE_PREFIX]) -> Result<Self> {
        Ok(Sealer(ChunkCipher::new(key, &prefix, None)?))
    }

    /// Seal `buf` (a plaintext chunk) in place and append its tag.
    fn seal(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<()> {
        let nonce = self.0.nonce(last)?;
        let tag = self
            .0
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(AAD), buf.as_mut_slice())
            .map_err(|_| Error::Attachment("a chunk could not be encrypted".into()))?;
        buf.extend_from_slice(tag.as_ref());
        self.0.index += 1;
        Ok(())
    }
}

/// Opens the chunks of one blob in order.
struct Opener(ChunkCipher);

impl Opener {
    fn new(a: &Attachment) -> Result<Self> {
        Ok(Opener(ChunkCipher::new(&a.key, &a.nonce, Some(a.chunks()))?))
    }

    /// Chunks opened so far.
    fn opened(&self) -> u64 {
        self.0.index
    }

    /// Whether every chunk the entry describes was opened.
    fn finished(&self) -> bool {
        Some(self.0.index) == self.0.count
    }

    /// Open a sealed chunk in place; returns its plaintext length.
    fn open(&mut self, buf: &mut [u8]) -> Result<usize> {
        let at = self.0.index;
        let count = self.0.count.unwrap_or(u64::MAX);
        let damaged = || Error::AttachmentDamaged(format!("chunk {at} fails its integrity check"));
        if at >= count {
            return Err(Error::AttachmentDamaged(
                "the blob has more chunks than the entry says".into(),
            ));
        }
        let len = buf.len().checked_sub(TAG_LEN).ok_or_else(damaged)?;
        let (msg, tag) = buf.split_at_mut(len);
        let tag = RingTag::try_from(&*tag).map_err(|_| damaged())?;
        let nonce = self.0.nonce(at + 1 == count)?;
        self.0
            .key
            .open_in_place_separate_tag(nonce, Aad::from(AAD), tag, msg, 0..)
            .map_err(|_| damaged())?;
        self.0.index += 1;
        Ok(len)
    }
}

/// Read into `buf` until it is full or the reader ends; returns how much was read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The keyed plaintext hash and size of a file, read in bounded pieces.
pub fn digest_file(path: &Path, record: &RecordId) -> Result<([u8; 32], u64)> {
    let mut file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
    let mut hasher = plain_hasher(record);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = fill(&mut file, &mut buf).map_err(|e| read_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((*hasher.finalize().as_bytes(), size))
}

fn read_error(path: &Path, e: std::io::Error) -> Error {
    Error::Attachment(format!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Which entries reference which blobs
// ---------------------------------------------------------------------------------------------

/// An entry that carries an attachment.
#[derive(Debug, Clone)]
pub struct Referenced {
    /// Section of the entry.
    pub section: Section,
    /// Entry id.
    pub id: String,
    /// The entry's title (or its first field), for listings.
    pub label: String,
    /// The attachment.
    pub attachment: Attachment,
}

/// The attachment of an entry's fields, if it has a readable one.
pub fn of_fields(fields: &serde_json::Map<String, Value>) -> Option<Attachment> {
    let a: Attachment = serde_json::from_value(fields.get("attachment")?.clone()).ok()?;
    // A reference a peer wrote without validation (received changes are verified for who
    // wrote them, not for their fields) is ignored rather than trusted.
    a.validate().ok().map(|()| a)
}

/// Every entry of the record that carries an attachment, section by section.
pub fn references(record: &Record) -> Result<Vec<Referenced>> {
    let mut out = Vec::new();
    for section in SECTIONS {
        for e in record.list(section)? {
            if let Some(attachment) = of_fields(&e.fields) {
                let label = ["title", "payer", "clinician"]
                    .iter()
                    .find_map(|k| e.fields.get(*k).and_then(Value::as_str))
                    .unwrap_or_default()
                    .to_string();
                out.push(Referenced {
                    section,
                    id: e.id,
                    label,
                    attachment,
                });
            }
        }
    }
    Ok(out)
}

/// The blobs the record references: what the blob store must keep.
pub fn referenced_blobs(record: &Record) -> Result<BTreeSet<[u8; 32]>> {
    Ok(references(record)?.into_iter().map(|r| r.attachment.blob).collect())
}

/// The attachment of the entry `id` (or a unique prefix) in `section`, or in any attachment
/// section when none is given.
pub fn find(record: &Record, id: &str, section: Option<Section>) -> Result<Referenced> {
    let sections: Vec<Section> = match section {
        Some(s) => vec![s],
        None => SECTIONS.to_vec(),
    };
    let mut found = Vec::new();
    for s in &sections {
        match record.resolve_id(*s, id) {
            Ok(full) => found.push((*s, full)),
            Err(Error::NoSuchEntry { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (section, full) = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::Attachment(format!(
                "no entry `{id}` in {}; see `phr attachments list`",
                sections.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        _ => {
            return Err(Error::Attachment(format!(
                "`{id}` matches entries in several sections; add --section"
            )));
        }
    };
    let entry = record.read_entry(section, &full)?.ok_or_else(|| Error::NoSuchEntry {
        section,
        id: full.clone(),
    })?;
    let attachment =
        of_fields(&entry.fields).ok_or_else(|| Error::Attachment(format!("{section} {full} has no attached file")))?;
    Ok(Referenced {
        section,
        id: full,
        label: String::new(),
        attachment,
    })
}

// ---------------------------------------------------------------------------------------------
// The blob store
// ---------------------------------------------------------------------------------------------

/// What this device holds of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Nothing.
    Missing,
    /// Part of it (an interrupted transfer), this many bytes.
    Partial(u64),
    /// All of it, this many bytes.
    Complete(u64),
}

/// What a garbage collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed: no entry referenced them.
    pub removed: usize,
    /// Blobs kept.
    pub kept: usize,
}

/// Decides, each time the store's collector wakes, whether it runs: only when asked.
#[derive(Debug, Default)]
struct GcGate {
    requested: AtomicBool,
    closing: AtomicBool,
    ticks: AtomicU64,
    ran_at: AtomicU64,
    tick: tokio::sync::Notify,
}

impl GcGate {
    fn tick(&self) -> ProtectOutcome {
        let n = self.ticks.fetch_add(1, Ordering::SeqCst) + 1;
        self.tick.notify_waiters();
        // Once the store is shut down a run fails at its first step, which ends the collector
        // task (and with it the last handle keeping the store's threads alive).
        if self.closing.load(Ordering::SeqCst) {
            return ProtectOutcome::Continue;
        }
        if self.requested.swap(false, Ordering::SeqCst) {
            self.ran_at.store(n, Ordering::SeqCst);
            ProtectOutcome::Continue
        } else {
            ProtectOutcome::Abort
        }
    }
}

struct Inner {
    dir: PathBuf,
    store: FsStore,
    gc: Arc<GcGate>,
    /// Attaching (import, then tag) and collecting (retag, then sweep) exclude each other, so a
    /// collection never sweeps a blob between its import and its tag.
    ops: tokio::sync::Mutex<()>,
    shut: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.shut.load(Ordering::SeqCst) {
            // Commit the store's metadata and release its file lock before the home can be
            // opened again; the store runs on its own threads, so waiting here cannot deadlock.
            let store = self.store.clone();
            let ok = n0_future::future::block_on(async move { store.shutdown().await.is_ok() });
            if ok {
                self.gc.closing.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Blob stores open in this process, by directory: a serving process and the commands it runs
/// for other `phr` invocations share one store (its database can only be opened once).
static OPEN: LazyLock<tokio::sync::Mutex<BTreeMap<PathBuf, Weak<Inner>>>> = LazyLock::new(Default::default);

/// A home's blob store: sealed attachment blobs, content-addressed (iroh-blobs `FsStore`).
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore").field("dir", &self.inner.dir).finish()
    }
}

fn store_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Io(format!("the attachment store could not {what}: {e}"))
}

impl BlobStore {
    /// The blob store of the home `home` (`HOME/blobs/`), created if missing.
    pub async fn open_home(home: &Path) -> Result<BlobStore> {
        Self::open(&home.join(BLOB_DIR)).await
    }

    /// Open (or create) the blob store in `dir`; shares the one already open in this process.
    pub async fn open(dir: &Path) -> Result<BlobStore> {
        crate::private_file::create_dir(dir)?;
        let dir = std::fs::canonicalize(dir)?;
        let mut open = OPEN.lock().await;
        if let Some(inner) = open.get(&dir).and_then(Weak::upgrade) {
            return Ok(BlobStore { inner });
        }
        let gc = Arc::new(GcGate::default());
        let gate = gc.clone();
        let cb: ProtectCb = Arc::new(move |_live: &mut HashSet<Hash>| {
            let outcome = gate.tick();
            Box::pin(async move { outcome })
        });
        let mut opts = Options::new(&dir);
        opts.gc = Some(GcConfig {
            interval: GC_POLL,
            add_protected: Some(cb),
        });
        // Metadata writes are few (one per blob); committing them soon keeps a shutdown quick.
        opts.batch.max_write_duration = Duration::from_millis(50);
        let db = dir.join("blobs.db");
        // A store of this directory being closed by a handle dropped a moment ago still holds
        // the database for up to a few hundred milliseconds: wait for it rather than fail.
        let mut tries = 0;
        let store = loop {
            match FsStore::load_with_opts(db.clone(), opts.clone()).await {
                Ok(s) => break s,
                Err(e) if tries < 40 && format!("{e:#}").to_lowercase().contains("already open") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) if format!("{e:#}").to_lowercase().contains("already open") => return Err(Error::StoreBusy),
                Err(e) => return Err(store_error("be opened", format!("{e:#}"))),
            }
        };
        let inner = Arc::new(Inner {
            dir: dir.clone(),
            store,
            gc,
            ops: tokio::sync::Mutex::new(()),
            shut: AtomicBool::new(false),
        });
        open.retain(|_, w| w.strong_count() > 0);
        open.insert(dir, Arc::downgrade(&inner));
        Ok(BlobStore { inner })
    }

    /// Where the store lives.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where the store keeps a blob's data once it is larger than what it inlines (16 KiB).
    pub fn data_path(&self, blob: &[u8; 32]) -> PathBuf {
        self.inner
            .dir
            .join("data")
            .join(format!("{}.data", Hash::from_bytes(*blob).to_hex()))
    }

    /// The iroh-blobs store, for serving and fetching.
    pub fn fs(&self) -> &FsStore {
        &self.inner.store
    }

    /// Commit and close the store now (it also closes when its last handle is dropped).
    pub async fn shutdown(&self) -> Result<()> {
        if self.inner.shut.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.inner
            .store
            .shutdown()
            .await
            .map_err(|e| store_error("be closed", e))?;
        self.inner.gc.closing.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// What this device holds of a blob.
    pub async fn held(&self, blob: &[u8; 32]) -> Result<Held> {
        let hash = Hash::from_bytes(*blob);
        let status = self
            .inner
            .store
            .blobs()
            .status(hash)
            .await
            .map_err(|e| store_error("be read", e))?;
        Ok(match status {
            BlobStatus::NotFound => Held::Missing,
            BlobStatus::Complete { size } => Held::Complete(size),
            BlobStatus::Partial { .. } => {
                let local = self
                    .inner
                    .store
                    .remote()
                    .local(HashAndFormat::raw(hash))
                    .await
                    .map_err(|e| store_error("be read", e))?;
                Held::Partial(local.local_bytes())
            }
        })
    }

    /// Every blob in the store, whole or partial.
    pub async fn list(&self) -> Result<Vec<[u8; 32]>> {
        let hashes = self
            .inner
            .store
            .blobs()
            .list()
            .hashes()
            .await
            .map_err(|e| store_error("be listed", e))?;
        Ok(hashes.into_iter().map(|h| *h.as_bytes()).collect())
    }

    fn tag_name(blob: &[u8; 32]) -> String {
        format!("{TAG_PREFIX}{}", hex::encode(blob))
    }

    /// Keep a blob (whole, partial, or not yet fetched) through garbage collection.
    pub async fn keep(&self, blob: &[u8; 32]) -> Result<()> {
        self.inner
            .store
            .tags()
            .set(Self::tag_name(blob), HashAndFormat::raw(Hash::from_bytes(*blob)))
            .await
            .map_err(|e| store_error("record a blob", e))
    }

    /// Seal the file at `path` into the store under a fresh key (see the module docs). The
    /// file is read once, in chunks; memory stays bounded whatever its size. `expect` is the
    /// keyed plaintext hash a caller computed earlier: a file that changed since is refused.
    /// `progress` is called with the plaintext bytes sealed so far.
    pub async fn seal_file(
        &self,
        path: &Path,
        record: &RecordId,
        media_type: &str,
        expect: Option<[u8; 32]>,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<Attachment> {
        let _op = self.inner.ops.lock().await;
        let key: [u8; 32] = crate::crypto::random_bytes();
        let prefix: [u8; NONCE_PREFIX] = crate::crypto::random_bytes();
        let chunk = CHUNK_SIZE as usize;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
        let record = *record;
        let reader = tokio::task::spawn_blocking(move || -> Result<([u8; 32], u64)> {
            let mut file = std::io::BufReader::with_capacity(chunk, file);
            let mut sealer = Sealer::new(&key, prefix)?;
            let mut hasher = plain_hasher(&record);
            let mut size = 0u64;
            // Read one chunk ahead: a chunk is the last one exactly when the next read is empty.
            let mut cur = vec![0u8; chunk];
            let mut n = fill(&mut file, &mut cur).map_err(|e| Error::Io(e.to_string()))?;
            loop {
                let mut next = vec![0u8; chunk];
                let m = if n == chunk {
                    fill(&mut file, &mut next).map_err(|e| Error::Io(e.to_string()))?
                } else {
                    0
                };
                let last = m == 0;
                cur.truncate(n);
                hasher.update(&cur);
                size += n as u64;
                cur.reserve_exact(TAG_LEN);
                sealer.seal(&mut cur, last)?;
                if tx.blocking_send(Ok(Bytes::from(cur))).is_err() {
                    return Err(Error::Io("the attachment store stopped taking data".into()));
                }
                progress(size);
                if last {
                    return Ok((*hasher.finalize().as_bytes(), size));
                }
                cur = next;
                n = m;
            }
        });
        let mut items = self.inner.store.blobs().add_stream(Feed(rx)).await.stream().await;
        let mut tag = None;
        let mut failure = None;
        while let Some(item) = items.next().await {
            match item {
                AddProgressItem::Done(tt) => tag = Some(tt),
                AddProgressItem::Error(e) => failure = Some(e.to_string()),
                _ => {}
            }
        }
        let sealed = reader
            .await
            .map_err(|e| Error::Io(format!("sealing the file stopped: {e}")))?
            .map_err(|e| match e {
                Error::Io(m) => Error::Attachment(format!("cannot read {}: {m}", path.display())),
                other => other,
            })?;
        let (plain_hash, size) = sealed;
        let tt = match (tag, failure) {
            (Some(tt), _) => tt,
            (None, Some(why)) => return Err(store_error("store the sealed file", why)),
            (None, None) => return Err(store_error("store the sealed file", "the import ended early")),
        };
        if expect.is_some_and(|h| h != plain_hash) {
            return Err(Error::Attachment(format!(
                "{} changed while it was being attached; attach it again once it is complete",
                path.display()
            )));
        }
        let attachment = Attachment {
            format: u64::from(FORMAT),
            blob: *tt.hash().as_bytes(),
            key,
            nonce: prefix,
            size,
            chunk: chunk as u64,
            plain_hash,
            media_type: media_type.to_string(),
            name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        };
        self.keep(&attachment.blob).await?;
        drop(tt);
        Ok(attachment)
    }

    /// Decrypt and verify an attachment into `out`: every chunk's tag, the chunk count, the
    /// total size and the plaintext hash. The plaintext goes to a temporary file beside `out`
    /// that is renamed into place only when everything checked out, so a damaged blob leaves no
    /// output at all. Refuses to overwrite an existing `out`. `progress` gets plaintext bytes.
    pub async fn open_to(
        &self,
        a: &Attachment,
        record: &RecordId,
        out: &Path,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<()> {
        a.validate().map_err(Error::AttachmentDamaged)?;
        if out.exists() {
            return Err(Error::Attachment(format!(
                "{} already exists; choose another --out or remove it first",
                out.display()
            )));
        }
        match self.held(&a.blob).await? {
            Held::Complete(n) if n == a.sealed_size() => {}
            Held::Complete(n) => {
                return Err(Error::AttachmentDamaged(format!(
                    "the stored blob has {n} bytes, the entry says {}",
                    a.sealed_size()
                )));
            }
            Held::Partial(n) => {
                return Err(Error::AttachmentMissing(format!(
                    "{} of {} bytes of `{}` are here",
                    n,
                    a.sealed_size(),
                    a.display_name()
                )));
            }
            Held::Missing => return Err(Error::AttachmentMissing(format!("`{}`", a.display_name()))),
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        let temp = dir.join(format!(
            ".{file_name}.phr-{}.part",
            hex::encode(crate::crypto::random_bytes::<6>())
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(&temp)
            .map_err(|e| Error::Attachment(format!("cannot write {}: {e}", temp.display())))?;
        let result = self.decrypt_into(a, record, file, progress).await;
        let result = result.and_then(|()| {
            std::fs::rename(&temp, out).map_err(|e| Error::Attachment(format!("cannot write {}: {e}", out.display())))
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    async fn decrypt_into(
        &self,
        a: &Attachment,
        record: &RecordId,
        file: std::fs::File,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<()> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let a2 = a.clone();
        let record = *record;
        let writer = tokio::task::spawn_blocking(move || -> Result<()> {
            let a = a2;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            let mut opener = Opener::new(&a)?;
            let mut hasher = plain_hasher(&record);
            let sealed_chunk = a.chunk as usize + TAG_LEN;
            let mut buf: Vec<u8> = Vec::with_capacity(sealed_chunk);
            let mut written = 0u64;
            let write_err = |e: std::io::Error| Error::Attachment(format!("cannot write the opened file: {e}"));
            let mut emit = |buf: &mut Vec<u8>, opener: &mut Opener, written: &mut u64| -> Result<()> {
                let n = opener.open(buf)?;
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(write_err)?;
                *written += n as u64;
                progress(*written);
                buf.clear();
                Ok(())
            };
            while let Some(mut data) = rx.blocking_recv() {
                while !data.is_empty() {
                    let take = (sealed_chunk - buf.len()).min(data.len());
                    buf.extend_from_slice(&data.split_to(take));
                    if buf.len() == sealed_chunk {
                        emit(&mut buf, &mut opener, &mut written)?;
                    }
                }
            }
            if !buf.is_empty() {
                emit(&mut buf, &mut opener, &mut written)?;
            }
            if !opener.finished() || written != a.size {
                return Err(Error::AttachmentDamaged(format!(
                    "{written} of {} bytes ({} of {} chunks) opened: the blob is truncated",
                    a.size,
                    opener.opened(),
                    a.chunks()
                )));
            }
            if *hasher.finalize().as_bytes() != a.plain_hash {
                return Err(Error::AttachmentDamaged(
                    "the opened file is not the one the entry describes".into(),
                ));
            }
            let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
            file.sync_all().map_err(write_err)?;
            Ok(())
        });
        let len = a.sealed_size();
        let mut items = self.inner.store.blobs().export_ranges(a.hash(), 0..len).stream();
        let mut failure = None;
        while let Some(item) = items.next().await {
            match item {
                ExportRangesItem::Size(_) => {}
                ExportRangesItem::Data(leaf) => {
                    if tx.send(leaf.data).await.is_err() {
                        // The writer stopped (a chunk failed): its error says why.
                        break;
                    }
                }
                ExportRangesItem::Error(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        drop(tx);
        let written = writer
            .await
            .map_err(|e| Error::Attachment(format!("opening the file stopped: {e}")))?;
        if let Some(why) = failure {
            written?;
            return Err(Error::AttachmentDamaged(format!(
                "the stored blob cannot be read: {why}"
            )));
        }
        written
    }

    /// Remove every blob no entry in `keep` references, and keep those it does (including
    /// partly fetched ones); returns what was removed and kept.
    pub async fn gc(&self, keep: &BTreeSet<[u8; 32]>) -> Result<GcReport> {
        let _op = self.inner.ops.lock().await;
        let tags = self.inner.store.tags();
        let mut stale = Vec::new();
        let mut listed = tags
            .list_prefix(TAG_PREFIX)
            .await
            .map_err(|e| store_error("list its tags", e))?;
        while let Some(t) = listed.next().await {
            let t = t.map_err(|e| store_error("list its tags", e))?;
            if !keep.contains(t.hash.as_bytes()) {
                stale.push(t.name);
            }
        }
        for name in stale {
            tags.delete(name).await.map_err(|e| store_error("drop a tag", e))?;
        }
        for blob in keep {
            self.keep(blob).await?;
        }
        let before = self.list().await?;
        let doomed = before.iter().filter(|b| !keep.contains(*b)).count();
        if doomed > 0 {
            self.collect().await?;
        }
        let after = self.list().await?;
        Ok(GcReport {
            removed: before.len().saturating_sub(after.len()),
            kept: after.len(),
        })
    }

    /// Drop this device's copy of a blob (e.g. a damaged one) while keeping it wanted, so the
    /// next sync fetches it again.
    pub async fn forget(&self, blob: &[u8; 32]) -> Result<()> {
        let _op = self.inner.ops.lock().await;
        self.inner
            .store
            .tags()
            .delete(Self::tag_name(blob))
            .await
            .map_err(|e| store_error("drop a tag", e))?;
        let result = self.collect().await;
        let kept = self.keep(blob).await;
        result.and(kept)
    }

    /// Run one collection now and wait for it to finish.
    async fn collect(&self) -> Result<()> {
        let gate = &self.inner.gc;
        gate.ran_at.store(0, Ordering::SeqCst);
        gate.requested.store(true, Ordering::SeqCst);
        let wait = async {
            loop {
                let notified = gate.tick.notified();
                let ran = gate.ran_at.load(Ordering::SeqCst);
                // The collector asks the gate again only after the run it started has ended.
                if ran != 0 && gate.ticks.load(Ordering::SeqCst) > ran {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .map_err(|_| store_error("collect unreferenced blobs", "the collector did not run"))
    }
}

/// A channel of sealed chunks as the stream iroh-blobs imports.
struct Feed(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl n0_future::Stream for Feed {
    type Item = std::io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// What `attach` did.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Section of the entry.
    pub section: Section,
    /// The entry (new, or the one given).
    pub id: String,
    /// The reference written into it.
    pub attachment: Attachment,
    /// Whether an identical file was already stored, so its blob was reused.
    pub reused: bool,
}

/// How to attach a file.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// The file.
    pub path: PathBuf,
    /// Section of the entry.
    pub section: Section,
    /// Attach to this existing entry (id or unique prefix), replacing its attachment; otherwise
    /// a new entry is made from `fields`.
    pub to: Option<String>,
    /// Fields of the new entry (`title`, `kind`, … as `phr add` parses them).
    pub fields: serde_json::Map<String, Value>,
    /// MIME type; guessed from the extension when `None`.
    pub media_type: Option<String>,
}

/// Attach a file: seal it into the blob store (or reuse the blob of an identical file the
/// record already references), then write the reference into a new or existing entry in one
/// signed change. Writing the entry is the last step, so a failure leaves no entry pointing at
/// a blob that is not there (an orphaned blob is removed by the next collection).
pub async fn attach(
    replica: &Replica,
    blobs: &BlobStore,
    req: AttachRequest,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<Attached> {
    if !SECTIONS.contains(&req.section) {
        return Err(Error::Attachment(format!(
            "files attach to documents, insurance or notes, not {}",
            req.section
        )));
    }
    let meta = std::fs::metadata(&req.path).map_err(|e| read_error(&req.path, e))?;
    if !meta.is_file() {
        return Err(Error::Attachment(format!("{} is not a file", req.path.display())));
    }
    let media_type = match &req.media_type {
        Some(m) if !m.trim().is_empty() && m.len() <= 255 => m.trim().to_string(),
        Some(_) => return Err(Error::Attachment("--media-type must be 1 to 255 characters".into())),
        None => guess_media_type(&req.path).to_string(),
    };
    let (record, target) = {
        let device = replica.lock();
        let record = device.record();
        // Refuse before sealing anything: a holder's edit outside its grant would fail anyway.
        if let Some((label, scope)) = record.limits()
            && !scope
                .get(&req.section)
                .is_some_and(|r| r.covers(crate::capability::Right::Write))
        {
            return Err(Error::NotAllowed(format!(
                "the access granted to `{label}` does not allow attaching files to {}",
                req.section
            )));
        }
        let target = match &req.to {
            Some(id) => Some(record.resolve_id(req.section, id)?),
            None => None,
        };
        (record.id(), target)
    };
    let (path, rid) = (req.path.clone(), record);
    let (plain_hash, size) = tokio::task::spawn_blocking(move || digest_file(&path, &rid))
        .await
        .map_err(|e| Error::Io(format!("hashing the file stopped: {e}")))??;
    let existing = {
        let device = replica.lock();
        references(device.record())?
            .into_iter()
            .map(|r| r.attachment)
            .find(|a| a.plain_hash == plain_hash && a.size == size)
    };
    let (mut attachment, reused) = match existing {
        Some(a) => {
            blobs.keep(&a.blob).await?;
            progress(size);
            (a, true)
        }
        None => (
            blobs
                .seal_file(&req.path, &record, &media_type, Some(plain_hash), progress)
                .await?,
            false,
        ),
    };
    attachment.media_type = media_type;
    attachment.name = req.path.file_name().map(|n| n.to_string_lossy().into_owned());
    let value = serde_json::to_value(&attachment)
        .map_err(|e| Error::Attachment(format!("the reference does not encode: {e}")))?;
    let section = req.section;
    let id = match target {
        Some(id) => {
            let mut change = serde_json::Map::new();
            change.insert("attachment".into(), value);
            if section == Section::Documents && !req.fields.contains_key("media_type") {
                change.insert("media_type".into(), Value::String(attachment.media_type.clone()));
            }
            change.extend(req.fields);
            let id2 = id.clone();
            replica.write(move |r| r.edit(section, &id2, change))?;
            id
        }
        None => {
            let mut fields = req.fields;
            if section == Section::Documents {
                fields
                    .entry("title")
                    .or_insert_with(|| Value::String(attachment.display_name().to_string()));
                fields
                    .entry("media_type")
                    .or_insert_with(|| Value::String(attachment.media_type.clone()));
            }
            fields.insert("attachment".into(), value);
            replica.write(move |r| r.add(section, fields))?
        }
    };
    Ok(Attached {
        section,
        id,
        attachment,
        reused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(size: u64, chunk: u64) -> (Attachment, Vec<u8>, Vec<u8>) {
        let record = RecordId::from([7u8; 32]);
        let plain: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let key = [9u8; 32];
        let prefix = [3u8; NONCE_PREFIX];
        let mut sealer = Sealer::new(&key, prefix).unwrap();
        let mut blob = Vec::new();
        let pieces: Vec<&[u8]> = if plain.is_empty() {
            vec![&[]]
        } else {
            plain.chunks(chunk as usize).collect()
        };
        for (i, piece) in pieces.iter().enumerate() {
            let mut buf = piece.to_vec();
            sealer.seal(&mut buf, i + 1 == pieces.len()).unwrap();
            blob.extend_from_slice(&buf);
        }
        let mut h = plain_hasher(&record);
        h.update(&plain);
        let a = Attachment {
            format: 1,
            blob: *blake3::hash(&blob).as_bytes(),
            key,
            nonce: prefix,
            size,
            chunk,
            plain_hash: *h.finalize().as_bytes(),
            media_type: "application/pdf".into(),
            name: None,
        };
        (a, plain, blob)
    }

    fn open_all(a: &Attachment, blob: &[u8]) -> Result<Vec<u8>> {
        let mut opener = Opener::new(a)?;
        let mut out = Vec::new();
        for piece in blob.chunks(a.chunk as usize + TAG_LEN) {
            let mut buf = piece.to_vec();
            let n = opener.open(&mut buf)?;
            out.extend_from_slice(&buf[..n]);
        }
        if !opener.finished() {
            return Err(Error::AttachmentDamaged(format!("truncated after {}", opener.opened())));
        }
        Ok(out)
    }

    #[test]
    fn chunks_round_trip_and_sizes_add_up() {
        for size in [0u64, 1, 1023, 1024, 1025, 4096, 5000] {
            let (a, plain, blob) = sample(size, 1024);
            assert_eq!(blob.len() as u64, a.sealed_size(), "size {size}");
            assert_eq!(open_all(&a, &blob).unwrap(), plain, "size {size}");
        }
    }

    #[test]
    fn chunks_are_exactly_rustcrypto_xchacha20_poly1305() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let (a, plain, blob) = sample(2500, 1024);
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(&chacha20poly1305::Key::from(a.key));
        let mut expected = Vec::new();
        let pieces: Vec<&[u8]> = plain.chunks(1024).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let n = chacha20poly1305::XNonce::from(nonce(&a.nonce, i as u64, i + 1 == pieces.len()));
            expected.extend(cipher.encrypt(&n, Payload { msg: piece, aad: AAD }).unwrap());
        }
        assert_eq!(blob, expected);
    }

    #[test]
    fn reordered_truncated_or_flipped_chunks_fail() {
        let (a, _, blob) = sample(4096, 1024);
        let c = 1024 + TAG_LEN;
        let mut swapped = blob.clone();
        swapped[..c].copy_from_slice(&blob[c..2 * c]);
        swapped[c..2 * c].copy_from_slice(&blob[..c]);
        assert!(open_all(&a, &swapped).is_err(), "reordered");
        // Dropping the last chunk: the new last one was not sealed as last.
        assert!(open_all(&a, &blob[..3 * c]).is_err(), "truncated");
        let mut flipped = blob.clone();
        flipped[100] ^= 1;
        assert!(open_all(&a, &flipped).is_err(), "flipped");
        let mut wrong_key = a.clone();
        wrong_key.key[0] ^= 1;
        assert!(open_all(&wrong_key, &blob).is_err(), "wrong key");
    }

    #[test]
    fn references_round_trip_through_automerge_floats() {
        let (a, _, _) = sample(5000, 1024);
        let mut v = serde_json::to_value(&a).unwrap();
        // What reading back from Automerge gives: numbers as floats.
        v["size"] = serde_json::json!(5000.0);
        v["chunk"] = serde_json::json!(1024.0);
        v["format"] = serde_json::json!(1.0);
        let back: Attachment = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, a);
        v["chunk"] = serde_json::json!(1024.5);
        assert!(serde_json::from_value::<Attachment>(v).is_err());
        let mut big = a.clone();
        big.chunk = 1 << 30;
        assert!(big.validate().is_err(), "a huge chunk would make opening allocate it");
        assert!(
            !format!("{a:?}").contains(&hex::encode(a.key)),
            "debug output hides the key"
        );
    }

    #[test]
    fn media_types_are_guessed_from_the_extension() {
        assert_eq!(guess_media_type(Path::new("IEP 2024.PDF")), "application/pdf");
        assert_eq!(guess_media_type(Path::new("card.jpeg")), "image/jpeg");
        assert_eq!(guess_media_type(Path::new("noext")), "application/octet-stream");
    }
}
