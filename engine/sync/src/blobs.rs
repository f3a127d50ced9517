//! Attachment blobs between devices, over iroh-blobs (BLAKE3-verified streaming, ALPN
//! [`BLOBS_ALPN`]): serving a blob only to a peer that may read an entry referencing it, and
//! fetching the blobs this device's entries reference, resuming interrupted transfers.
//!
//! Serving is gated twice. A connection from a key that holds no live credential for the record
//! (a device certificate or an unrevoked, unexpired grant) is closed before iroh-blobs sees it.
//! Then every request is intercepted: a `get` of one blob is answered only if the peer may read
//! `documents`, `insurance` or `notes` now and an entry there references that blob; requests
//! for hash sequences, `get_many` and `push` are refused outright, and `observe` (which reveals
//! what this device holds) follows the same rule as `get`.

use std::path::PathBuf;
use std::sync::Arc;

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use iroh::{Endpoint, EndpointAddr};
use iroh_blobs::api::remote::GetProgressItem;
use iroh_blobs::provider::events::{
    AbortReason, ConnectMode, EventMask, EventSender, ObserveMode, ProviderMessage, RequestMode, ThrottleMode,
};
use iroh_blobs::{Hash, HashAndFormat};
use n0_future::StreamExt;
use serde::Serialize;

use super::replica::Replica;
use crate::endpoint::{NetConfig, connect};
use phr_model::attachment;
use phr_model::error::{BlobMissing, Error, Result, SyncProblem};
use phr_model::identity::PublicKey;
use phr_model::section::Section;
use phr_store::blob_store::{BlobStore, Held};
use phr_store::device::Device;

/// ALPN of the blob transfer protocol (iroh-blobs').
pub use iroh_blobs::ALPN as BLOBS_ALPN;

/// QUIC close code for a peer that is not a member of the record.
const REFUSED: u32 = 1;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A running device's blob store, opened on first use so that a device that never meets an
/// attachment never creates one.
#[derive(Debug)]
pub struct LazyBlobs {
    dir: PathBuf,
    cell: tokio::sync::OnceCell<BlobStore>,
}

impl LazyBlobs {
    /// The store that will live in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        LazyBlobs {
            dir,
            cell: tokio::sync::OnceCell::new(),
        }
    }

    /// The store, opened now if it is not yet.
    pub async fn get(&self) -> Result<BlobStore> {
        self.cell.get_or_try_init(|| BlobStore::open(&self.dir)).await.cloned()
    }
}

/// Whether `peer` may receive `blob` now: it holds a live credential for the record, and it may
/// read a section in which an entry references the blob.
pub fn may_serve(device: &Device, peer: &PublicKey, blob: &[u8; 32], now: i64) -> bool {
    serving(device, peer, blob, now).is_some()
}

/// The entry (section and title) through which `peer` may receive `blob` now, if any.
fn serving(device: &Device, peer: &PublicKey, blob: &[u8; 32], now: i64) -> Option<(Section, String)> {
    let access = device.access();
    access.credential(peer, now)?;
    attachment::SECTIONS
        .iter()
        .filter(|s| access.may_read(peer, **s, now))
        .find_map(|s| {
            let entries = device.record().list(*s).ok()?;
            entries.into_iter().find_map(|e| {
                attachment::of_fields(&e.fields).filter(|a| a.blob == *blob)?;
                let title = e.fields.get("title").and_then(|v| v.as_str()).unwrap_or(&e.id);
                Some((*s, title.to_string()))
            })
        })
}

/// Whether `peer` may have `hash`; a request for its content (`sends`, not one to observe which
/// parts are held) is written to the audit log.
async fn allowed(replica: &Arc<Replica>, peer: PublicKey, hash: Hash, sends: bool) -> bool {
    let replica = replica.clone();
    let blob = *hash.as_bytes();
    // Reading the record takes the device lock: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || {
        let Some((section, title)) = serving(&replica.lock(), &peer, &blob, now()) else {
            return false;
        };
        if !sends {
            return true;
        }
        // Who received which attachment is part of the record's accounting of disclosures.
        let detail = format!("sent attachment \"{title}\" to {}", replica.describe(&peer));
        if let Err(e) = replica.write(|r| r.audit("attachment", &detail, Some(&peer.to_string()), &[section])) {
            tracing::warn!("could not write the audit log: {e}");
        }
        true
    })
    .await
    .unwrap_or(false);
    if !ok {
        tracing::info!(peer = %peer.short(), blob = %hash.fmt_short(), "refused an attachment blob");
    }
    ok
}

fn verdict(ok: bool) -> std::result::Result<(), AbortReason> {
    if ok { Ok(()) } else { Err(AbortReason::Permission) }
}

/// Answers iroh-blobs' request events for one connection from `peer`.
fn gatekeeper(replica: Arc<Replica>, peer: PublicKey) -> EventSender {
    let mask = EventMask {
        // The peer was checked before the connection reached iroh-blobs.
        connected: ConnectMode::None,
        get: RequestMode::Intercept,
        // Several hashes in one request, or data pushed at us: phr never needs either.
        get_many: RequestMode::Disabled,
        push: RequestMode::Disabled,
        observe: ObserveMode::Intercept,
        throttle: ThrottleMode::None,
    };
    let (events, mut rx) = EventSender::channel(16, mask);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                ProviderMessage::GetRequestReceived(msg) => {
                    // Only a single blob: a hash-sequence request would also send children.
                    let ok = msg.request.ranges.is_blob() && allowed(&replica, peer, msg.request.hash, true).await;
                    msg.tx.send(verdict(ok)).await.ok();
                }
                ProviderMessage::ObserveRequestReceived(msg) => {
                    let ok = allowed(&replica, peer, msg.request.hash, false).await;
                    msg.tx.send(verdict(ok)).await.ok();
                }
                // Notifications (a connection closed) need no answer.
                _ => {}
            }
        }
    });
    events
}

/// The blob protocol of a device's endpoint.
#[derive(Debug)]
pub struct BlobsHandler {
    replica: Arc<Replica>,
    blobs: Arc<LazyBlobs>,
}

impl BlobsHandler {
    /// Serve `blobs` to peers of `replica`'s record, as the module docs describe.
    pub fn new(replica: Arc<Replica>, blobs: Arc<LazyBlobs>) -> Self {
        BlobsHandler { replica, blobs }
    }
}

impl ProtocolHandler for BlobsHandler {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = PublicKey(*conn.remote_id().as_bytes());
        let replica = self.replica.clone();
        let member = tokio::task::spawn_blocking(move || replica.lock().access().credential(&peer, now()).is_some())
            .await
            .unwrap_or(false);
        if !member {
            tracing::info!(peer = %peer.short(), "refused a blob connection from a stranger");
            conn.close(REFUSED.into(), b"not a member of this record");
            return Ok(());
        }
        let store = match self.blobs.get().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot serve attachments: {e}");
                conn.close(REFUSED.into(), b"attachments unavailable");
                return Ok(());
            }
        };
        let events = gatekeeper(self.replica.clone(), peer);
        let fs: &iroh_blobs::api::Store = store.fs();
        iroh_blobs::provider::handle_connection(conn, fs.clone(), events).await;
        Ok(())
    }
}

/// What fetching one blob did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Fetched {
    /// Payload bytes received in this transfer (resuming sends only what was missing).
    pub bytes: u64,
    /// Whether the blob was already whole here, so nothing was asked for.
    pub already: bool,
}

fn refused(peer: &EndpointAddr, blob: &[u8; 32], e: impl std::fmt::Display, permission: bool) -> Error {
    let what = hex::encode(&blob[..4]);
    Error::Sync {
        peer: peer.id.fmt_short().to_string(),
        problem: if permission {
            SyncProblem::AttachmentRefused { blob: what }
        } else {
            SyncProblem::AttachmentFailed {
                blob: what,
                cause: e.to_string(),
            }
        },
    }
}

/// Fetch one blob from `addr` into `blobs`, continuing from whatever part of it is already
/// here. `expected` is the blob's size as its reference gives it: a peer sending more is cut
/// off (the hash only fixes the content, and whoever wrote the reference chose both).
/// `progress` gets the bytes received so far in this transfer.
pub async fn fetch_blob(
    endpoint: &Endpoint,
    cfg: &NetConfig,
    addr: EndpointAddr,
    blobs: &BlobStore,
    blob: &[u8; 32],
    expected: Option<u64>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Fetched> {
    // Tag first: a partial transfer is kept through garbage collection, ready to resume.
    blobs.keep(blob).await?;
    if matches!(blobs.held(blob).await?, Held::Complete(_)) {
        return Ok(Fetched {
            bytes: 0,
            already: true,
        });
    }
    let conn = connect(endpoint, addr.clone(), BLOBS_ALPN, cfg).await?;
    let mut items = blobs
        .fs()
        .remote()
        .fetch(conn.clone(), HashAndFormat::raw(Hash::from_bytes(*blob)))
        .stream();
    let mut outcome = Err(refused(&addr, blob, "the transfer ended early", false));
    while let Some(item) = items.next().await {
        match item {
            GetProgressItem::Progress(n) if expected.is_some_and(|max| n > max) => {
                outcome = Err(refused(
                    &addr,
                    blob,
                    "it sent more than the entry says the file has",
                    false,
                ));
                break;
            }
            GetProgressItem::Progress(n) => progress(n),
            GetProgressItem::Done(stats) => {
                outcome = Ok(Fetched {
                    bytes: stats.payload_bytes_read,
                    already: false,
                });
            }
            GetProgressItem::Error(e) => {
                let permission = e.iroh_error_code() == Some(iroh_blobs::protocol::ERR_PERMISSION);
                outcome = Err(refused(&addr, blob, e, permission));
            }
        }
    }
    conn.close(0u32.into(), b"done");
    let fetched = outcome?;
    match blobs.held(blob).await? {
        Held::Complete(_) => Ok(fetched),
        Held::Partial(n) => Err(Error::AttachmentMissing(BlobMissing::PeerHasPart {
            peer: addr.id.fmt_short().to_string(),
            held: n,
            blob: hex::encode(&blob[..4]),
        })),
        Held::Missing => Err(refused(&addr, blob, "it does not hold it", false)),
    }
}

/// Progress of fetching a device's attachments, for a progress bar.
#[derive(Debug, Clone)]
pub struct FetchProgress {
    /// The file being fetched.
    pub name: String,
    /// Its position among the files to fetch (from 1).
    pub index: usize,
    /// How many files are being fetched.
    pub count: usize,
    /// Bytes of this file's blob here so far (including what an earlier transfer left).
    pub done: u64,
    /// Size of this file's blob.
    pub total: u64,
}

/// What fetching a device's attachments did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchReport {
    /// Blobs fetched now.
    pub fetched: usize,
    /// Payload bytes received.
    pub bytes: u64,
    /// Blobs that were already here.
    pub already: usize,
    /// Files no peer could send, with the last reason.
    pub missing: Vec<String>,
}

/// Fetch every blob the record's entries reference that this device does not hold whole,
/// trying `peers` in order for each.
pub async fn fetch_missing(
    endpoint: &Endpoint,
    cfg: &NetConfig,
    replica: &Replica,
    blobs: &BlobStore,
    peers: &[EndpointAddr],
    progress: &mut (dyn FnMut(&FetchProgress) + Send),
) -> Result<FetchReport> {
    let refs = {
        let device = replica.lock();
        phr_model::attached::references(device.record())?
    };
    let mut report = FetchReport::default();
    let mut wanted = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in refs {
        if !seen.insert(r.attachment.blob) {
            continue;
        }
        match blobs.held(&r.attachment.blob).await? {
            Held::Complete(_) => report.already += 1,
            Held::Partial(n) => wanted.push((r.attachment, n)),
            Held::Missing => wanted.push((r.attachment, 0)),
        }
    }
    let count = wanted.len();
    for (i, (a, mut base)) in wanted.into_iter().enumerate() {
        let mut last_error = String::from("no peer to ask");
        let mut got = false;
        for peer in peers {
            let mut state = FetchProgress {
                name: a.display_name().to_string(),
                index: i + 1,
                count,
                done: base,
                total: a.sealed_size(),
            };
            progress(&state);
            let mut each = |n: u64| {
                state.done = (base + n).min(state.total);
                progress(&state);
            };
            let expected = Some(a.sealed_size());
            match fetch_blob(endpoint, cfg, peer.clone(), blobs, &a.blob, expected, &mut each).await {
                Ok(f) => {
                    report.fetched += usize::from(!f.already);
                    report.already += usize::from(f.already);
                    report.bytes += f.bytes;
                    got = true;
                    break;
                }
                Err(e) => {
                    tracing::info!("attachment {} from {}: {e}", a.short(), peer.id.fmt_short());
                    last_error = e.to_string();
                    // What arrived before the failure stays: the next peer continues from it.
                    if let Held::Partial(n) = blobs.held(&a.blob).await? {
                        base = n;
                    }
                }
            }
        }
        if !got {
            report.missing.push(format!("{}: {last_error}", a.display_name()));
        }
    }
    Ok(report)
}
