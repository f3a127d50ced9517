//! The blob store of a home (`HOME/blobs/`): attachments' sealed blobs, content-addressed by
//! iroh-blobs, kept while an entry references them and collected when none does. Sealing a file
//! into it and opening a blob out of it run the chunk cipher of
//! [`phr_model::crypto::chunk_cipher`]; what a blob is and how an entry references it is
//! [`phr_model::attachment`].

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
use phr_model::attachment::{Attachment, CHUNK_SIZE, FORMAT, plain_hasher};
use phr_model::crypto::chunk_cipher::{NONCE_PREFIX, Opener, Sealer, TAG_LEN};
use phr_model::error::{AttachmentProblem, BlobDamage, BlobMissing, Error, Result};
use phr_model::identity::RecordId;

/// Directory of the blob store inside a home.
pub const BLOB_DIR: &str = "blobs";
/// Tags in the blob store are named by this prefix and the blob hash: a tag keeps its blob
/// (whole or partly fetched) through garbage collection.
const TAG_PREFIX: &str = "phr/attachment/";

/// How often the blob store's collector looks whether a collection was asked for.
const GC_POLL: Duration = Duration::from_millis(100);

/// The blob's hash as iroh-blobs names it.
pub fn blob_hash(a: &Attachment) -> Hash {
    Hash::from_bytes(a.blob)
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

/// The error for a file that cannot be read, naming it.
pub fn read_error(path: &Path, e: std::io::Error) -> Error {
    Error::FileUnreadable {
        path: path.to_path_buf(),
        source: e,
    }
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

/// The attachment store failed at `action`; `cause` is the blob library's own report.
#[derive(Debug, thiserror::Error)]
#[error("the attachment store could not {action}: {cause}")]
pub struct BlobStoreFailure {
    /// What the store was doing.
    pub action: &'static str,
    /// What the blob library said.
    pub cause: String,
}

fn store_error(action: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Io(Box::new(BlobStoreFailure {
        action,
        cause: e.to_string(),
    }))
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
        let key: [u8; 32] = phr_model::crypto::random_bytes();
        let prefix: [u8; NONCE_PREFIX] = phr_model::crypto::random_bytes();
        let chunk = CHUNK_SIZE as usize;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
        let record = *record;
        let source_path = path.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || -> Result<([u8; 32], u64)> {
            let mut file = std::io::BufReader::with_capacity(chunk, file);
            let mut sealer = Sealer::new(&key, prefix)?;
            let mut hasher = plain_hasher(&record);
            let mut size = 0u64;
            // Read one chunk ahead: a chunk is the last one exactly when the next read is empty.
            let mut cur = vec![0u8; chunk];
            let mut n = fill(&mut file, &mut cur).map_err(|e| read_error(&source_path, e))?;
            loop {
                let mut next = vec![0u8; chunk];
                let m = if n == chunk {
                    fill(&mut file, &mut next).map_err(|e| read_error(&source_path, e))?
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
                    return Err(store_error("take the sealed file", "it stopped taking data"));
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
            .map_err(|_| Error::internal("the task sealing a file stopped"))??;
        let (plain_hash, size) = sealed;
        let tt = match (tag, failure) {
            (Some(tt), _) => tt,
            (None, Some(why)) => return Err(store_error("store the sealed file", why)),
            (None, None) => return Err(store_error("store the sealed file", "the import ended early")),
        };
        if expect.is_some_and(|h| h != plain_hash) {
            return Err(Error::Attachment(AttachmentProblem::ChangedWhileAttaching {
                path: path.to_path_buf(),
            }));
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
        a.validate()
            .map_err(|p| Error::AttachmentDamaged(BlobDamage::Description(p)))?;
        if out.exists() {
            return Err(Error::Attachment(AttachmentProblem::OutputExists {
                path: out.to_path_buf(),
            }));
        }
        match self.held(&a.blob).await? {
            Held::Complete(n) if n == a.sealed_size() => {}
            Held::Complete(n) => {
                return Err(Error::AttachmentDamaged(BlobDamage::WrongSize {
                    held: n,
                    expected: a.sealed_size(),
                }));
            }
            Held::Partial(n) => {
                return Err(Error::AttachmentMissing(BlobMissing::Part {
                    name: a.display_name().to_string(),
                    held: n,
                    size: a.sealed_size(),
                }));
            }
            Held::Missing => {
                return Err(Error::AttachmentMissing(BlobMissing::Nothing {
                    name: a.display_name().to_string(),
                }));
            }
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
            hex::encode(phr_model::crypto::random_bytes::<6>())
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&temp).map_err(|source| Error::FileUnwritable {
            path: temp.clone(),
            source,
        })?;
        let result = self.decrypt_into(a, record, file, out, progress).await;
        let result = result.and_then(|()| {
            std::fs::rename(&temp, out).map_err(|source| Error::FileUnwritable {
                path: out.to_path_buf(),
                source,
            })
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
        out_path: &Path,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<()> {
        let out_path = out_path.to_path_buf();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let a2 = a.clone();
        let record = *record;
        let writer = tokio::task::spawn_blocking(move || -> Result<()> {
            let a = a2;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            let mut opener = Opener::new(&a.key, &a.nonce, a.chunks())?;
            let mut hasher = plain_hasher(&record);
            let sealed_chunk = a.chunk as usize + TAG_LEN;
            let mut buf: Vec<u8> = Vec::with_capacity(sealed_chunk);
            let mut written = 0u64;
            let write_err = |source: std::io::Error| Error::FileUnwritable {
                path: out_path.clone(),
                source,
            };
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
                return Err(Error::AttachmentDamaged(BlobDamage::Truncated {
                    opened: opener.opened(),
                    chunks: a.chunks(),
                }));
            }
            if *hasher.finalize().as_bytes() != a.plain_hash {
                return Err(Error::AttachmentDamaged(BlobDamage::NotTheFile));
            }
            let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
            file.sync_all().map_err(write_err)?;
            Ok(())
        });
        let len = a.sealed_size();
        let mut items = self.inner.store.blobs().export_ranges(blob_hash(a), 0..len).stream();
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
            .map_err(|_| Error::internal("the task opening a file stopped"))?;
        if let Some(why) = failure {
            written?;
            return Err(Error::AttachmentDamaged(BlobDamage::Unreadable { cause: why }));
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
