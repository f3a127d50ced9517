//! The sync service: an endpoint with the sync, pairing and blob handlers mounted, sessions
//! bounded per peer key, live connections kept up with backoff, and the addresses of peers.
//! Binding and dialing are [`crate::endpoint`]'s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr};
use tokio::sync::broadcast;

use super::blobs::{BLOBS_ALPN, BlobsHandler, FetchProgress, FetchReport, LazyBlobs};
use super::host::Host;
use super::pair::{self, PairHandler};
use super::replica::Replica;
use super::session::{self, SessionOptions, SessionReport};
use phr_model::error::{Error, NetworkProblem, Result, shown};
use phr_model::identity::PublicKey;

use crate::endpoint::{Arrivals, TOO_MANY_SESSIONS, WaitingRoom};
pub use crate::endpoint::{IDLE_TIMEOUT, MAX_PENDING_SESSIONS, NetConfig, bind, connect, secret_key};

/// ALPN of the sync protocol.
pub const SYNC_ALPN: &[u8] = b"phr/sync/1";

/// Most sync sessions one peer key may have open with an endpoint at once; a newer one closes
/// the oldest (a device needs one or two, a flood from one key gets no more).
pub const MAX_SESSIONS_PER_PEER: usize = 8;

/// A finished sync session, for whoever watches the service.
#[derive(Debug, Clone)]
pub struct SessionEvent {
    /// The peer.
    pub peer: PublicKey,
    /// Whether it completed.
    pub ok: bool,
    /// Changes sent.
    pub sent: u32,
    /// Changes applied from the peer.
    pub applied: u32,
    /// One line for a log.
    pub detail: String,
}

fn event_of(peer: PublicKey, r: &Result<SessionReport>) -> SessionEvent {
    match r {
        Ok(rep) => SessionEvent {
            peer,
            ok: true,
            sent: rep.sent_total(),
            applied: rep.applied(),
            detail: format!(
                "synced: received {}, sent {}, rejected {}",
                rep.applied(),
                rep.sent_total(),
                rep.rejected()
            ),
        },
        Err(e) => SessionEvent {
            peer,
            ok: false,
            sent: 0,
            applied: 0,
            detail: e.to_string(),
        },
    }
}

struct SyncHandler<H: Host> {
    host: Arc<H>,
    events: broadcast::Sender<SessionEvent>,
    addrs: Vec<SocketAddr>,
    active: Arc<AtomicUsize>,
    per_peer: Arc<Mutex<PerPeer>>,
    pending: WaitingRoom,
}

/// The sync sessions each peer key has open, oldest first, to replace the oldest when a
/// key opens one too many.
type PerPeer = HashMap<PublicKey, Arrivals>;

/// Holds one of a peer's [`MAX_SESSIONS_PER_PEER`] session slots until dropped.
struct PeerSlot {
    peer: PublicKey,
    id: u64,
    per_peer: Arc<Mutex<PerPeer>>,
}

impl PeerSlot {
    /// Take a slot for `peer`'s connection `conn`, closing the peer's oldest session if it
    /// has no slot left. Newest wins because a device that crashed and came back is still
    /// holding its old sessions here until QUIC notices they are dead; refusing its new ones
    /// would lock out an honest device, while a flood from one key stays at the cap either way.
    fn take(per_peer: &Arc<Mutex<PerPeer>>, peer: PublicKey, conn: &Connection) -> Self {
        let mut p = per_peer.lock().unwrap_or_else(|p| p.into_inner());
        let (id, pushed_out) = p.entry(peer).or_default().push(conn, MAX_SESSIONS_PER_PEER);
        if let Some(oldest) = pushed_out {
            tracing::warn!(
                peer = %peer.short(),
                "closed this peer's oldest sync session: it opened more than {MAX_SESSIONS_PER_PEER} at once"
            );
            oldest.close(
                TOO_MANY_SESSIONS.into(),
                b"replaced by a newer sync session from this device",
            );
        }
        PeerSlot {
            peer,
            id,
            per_peer: per_peer.clone(),
        }
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut p = self.per_peer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = p.get_mut(&self.peer) {
            open.remove(self.id);
            if open.conns.is_empty() {
                p.remove(&self.peer);
            }
        }
    }
}

/// Counts a session as active until dropped, however the session ends.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(active: &Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(active.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<H: Host> std::fmt::Debug for SyncHandler<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncHandler")
    }
}

impl<H: Host> ProtocolHandler for SyncHandler<H> {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = PublicKey(*conn.remote_id().as_bytes());
        let _slot = PeerSlot::take(&self.per_peer, peer, &conn);
        let pending = self.pending.take(&conn);
        let _active = ActiveGuard::new(&self.active);
        let admitted = pending.clone();
        let opts = SessionOptions {
            addrs: self.addrs.clone(),
            ..SessionOptions::default()
        };
        let result = session::accept(self.host.clone(), conn, opts, Box::new(move || admitted.release())).await;
        drop(pending);
        if let Ok(r) = &result {
            let h = self.host.clone();
            let r = r.clone();
            let _ = tokio::task::spawn_blocking(move || h.record_session(&peer, &r)).await;
        }
        match &result {
            Ok(r) => {
                // Duplicates are changes the peer sent that this side already held: a replay
                // is dropped, not applied twice, and shows here.
                let duplicates: u32 = r.received.values().map(|x| x.duplicates).sum();
                tracing::info!(peer = %peer.short(), applied = r.applied(), rejected = r.rejected(), duplicates, "sync session ended")
            }
            Err(e) => tracing::warn!(peer = %peer.short(), "sync session failed: {e}"),
        }
        let _ = self.events.send(event_of(peer, &result));
        Ok(())
    }
}

/// A running endpoint serving any [`Host`]: accepts sync, dials peers.
pub struct HostService<H: Host> {
    router: Router,
    host: Arc<H>,
    cfg: NetConfig,
    events: broadcast::Sender<SessionEvent>,
    active: Arc<AtomicUsize>,
}

impl<H: Host> HostService<H> {
    /// Bind and start accepting sync; `more` may register further protocols.
    pub async fn start_with(
        host: Arc<H>,
        cfg: NetConfig,
        more: impl FnOnce(iroh::protocol::RouterBuilder) -> iroh::protocol::RouterBuilder,
    ) -> Result<Self> {
        let endpoint = bind(&host.key(), &cfg).await?;
        let (events, _) = broadcast::channel(1024);
        let addrs: Vec<SocketAddr> = endpoint.addr().ip_addrs().copied().collect();
        let active = Arc::new(AtomicUsize::new(0));
        let builder = Router::builder(endpoint).accept(
            SYNC_ALPN,
            SyncHandler {
                host: host.clone(),
                events: events.clone(),
                addrs,
                active: active.clone(),
                per_peer: Arc::default(),
                pending: WaitingRoom::new("sync", "hello"),
            },
        );
        let router = more(builder).spawn();
        Ok(HostService {
            router,
            host,
            cfg,
            events,
            active,
        })
    }

    /// Bind and start accepting sync.
    pub async fn start(host: Arc<H>, cfg: NetConfig) -> Result<Self> {
        Self::start_with(host, cfg, |b| b).await
    }

    /// This endpoint's address, to give to peers: with its home relay from the start, before
    /// the endpoint has reached it, so a ticket made at once still names the relay.
    pub fn addr(&self) -> EndpointAddr {
        let addr = self.router.endpoint().addr();
        match &self.cfg.relay {
            Some(home) if !addr.relay_urls().any(|u| u == home) => addr.with_relay_url(home.clone()),
            _ => addr,
        }
    }

    /// The underlying endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.router.endpoint()
    }

    fn my_addrs(&self) -> Vec<SocketAddr> {
        self.endpoint().addr().ip_addrs().copied().collect()
    }

    /// Sync sessions in progress that peers opened with this endpoint.
    pub fn active_sessions(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// The host.
    pub fn host(&self) -> &Arc<H> {
        &self.host
    }

    /// Finished sessions, accepted or dialed, from now on.
    pub fn session_events(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// Sync once with a peer, until both sides have everything, then disconnect.
    pub async fn sync_once(&self, addr: EndpointAddr, opts: SessionOptions) -> Result<SessionReport> {
        self.host.remember(&addr);
        let peer = PublicKey(*addr.id.as_bytes());
        let conn = connect(self.endpoint(), addr, SYNC_ALPN, &self.cfg).await?;
        let opts = SessionOptions {
            live: false,
            addrs: self.my_addrs(),
            ..opts
        };
        let result = session::dial(self.host.clone(), conn, opts).await;
        if let Ok(r) = &result {
            let (h, r) = (self.host.clone(), r.clone());
            let _ = tokio::task::spawn_blocking(move || h.record_session(&peer, &r)).await;
        }
        let _ = self.events.send(event_of(peer, &result));
        result
    }

    /// Stay in live sync with a peer: reconnect with exponential backoff whenever the
    /// connection drops, until the returned task is aborted.
    pub fn keep_live(&self, addr: EndpointAddr) -> tokio::task::JoinHandle<()> {
        self.host.remember(&addr);
        let (endpoint, host, cfg) = (self.endpoint().clone(), self.host.clone(), self.cfg.clone());
        let events = self.events.clone();
        let my_addrs = self.my_addrs();
        let peer = PublicKey(*addr.id.as_bytes());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            loop {
                match connect(&endpoint, addr.clone(), SYNC_ALPN, &cfg).await {
                    Ok(conn) => {
                        backoff = Duration::from_millis(250);
                        let opts = SessionOptions {
                            live: true,
                            addrs: my_addrs.clone(),
                            ..SessionOptions::default()
                        };
                        let path = crate::endpoint::path_kind(&conn);
                        tracing::info!(peer = %addr.id.fmt_short(), path, "live sync connected");
                        let _ = events.send(SessionEvent {
                            peer,
                            ok: true,
                            sent: 0,
                            applied: 0,
                            detail: format!("connected, live ({path})"),
                        });
                        let result = session::dial(host.clone(), conn, opts).await;
                        match &result {
                            Ok(_) => tracing::info!(peer = %addr.id.fmt_short(), "live sync ended"),
                            Err(e) => tracing::warn!(peer = %addr.id.fmt_short(), "live sync dropped: {e}"),
                        }
                        let _ = events.send(event_of(peer, &result));
                    }
                    Err(e) => tracing::info!(peer = %addr.id.fmt_short(), "{e}; retrying in {backoff:?}"),
                }
                if endpoint.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        })
    }

    /// Stop accepting, finish or cut sessions, close the endpoint.
    pub async fn shutdown(self) {
        if let Err(e) = self.router.shutdown().await {
            tracing::warn!("endpoint shutdown: {e}");
        }
    }
}

/// A patient device's endpoint: sync, pairing of new devices, and attachment blobs.
pub struct Service {
    inner: HostService<Replica>,
    pairing: Arc<PairHandler>,
    blobs: Arc<LazyBlobs>,
    cfg: NetConfig,
}

impl Service {
    /// Bind and start accepting sync, pairing and blob requests.
    pub async fn start(replica: Arc<Replica>, cfg: NetConfig) -> Result<Service> {
        let pairing = Arc::new(PairHandler::new(replica.clone()));
        let p = pairing.clone();
        let dir = replica.lock().home().join(phr_store::blob_store::BLOB_DIR);
        let blobs = Arc::new(LazyBlobs::new(dir));
        let serve = BlobsHandler::new(replica.clone(), blobs.clone());
        let inner = HostService::start_with(replica, cfg.clone(), move |b| {
            b.accept(pair::PAIR_ALPN, p).accept(BLOBS_ALPN, serve)
        })
        .await?;
        Ok(Service {
            inner,
            pairing,
            blobs,
            cfg,
        })
    }

    /// The device's attachment blob store, opened on first use.
    pub async fn blobs(&self) -> Result<phr_store::blob_store::BlobStore> {
        self.blobs.get().await
    }

    /// Fetch the attachments this device's entries reference and it does not hold whole yet,
    /// from `peers` (in order), continuing interrupted transfers.
    pub async fn fetch_attachments(
        &self,
        peers: &[EndpointAddr],
        progress: &mut (dyn FnMut(&FetchProgress) + Send),
    ) -> Result<FetchReport> {
        let blobs = self.blobs().await?;
        super::blobs::fetch_missing(self.endpoint(), &self.cfg, self.replica(), &blobs, peers, progress).await
    }

    /// The network settings it runs with.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// This endpoint's address, to give to peers.
    pub fn addr(&self) -> EndpointAddr {
        self.inner.addr()
    }

    /// The underlying endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.inner.endpoint()
    }

    /// The shared device.
    pub fn replica(&self) -> &Arc<Replica> {
        self.inner.host()
    }

    /// Pairing tickets issued by this service.
    pub fn pairing(&self) -> &Arc<PairHandler> {
        &self.pairing
    }

    /// Issuing pairing and share tickets that point at this endpoint (for the portal).
    pub fn inviter(&self) -> pair::Inviter {
        pair::Inviter::new(self.pairing.clone(), self.addr())
    }

    /// Finished sessions, accepted or dialed, from now on.
    pub fn session_events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.session_events()
    }

    /// Sync once with a peer, until both sides have everything, then disconnect.
    pub async fn sync_once(&self, addr: EndpointAddr, opts: SessionOptions) -> Result<SessionReport> {
        self.inner.sync_once(addr, opts).await
    }

    /// Stay in live sync with a peer, reconnecting with backoff.
    pub fn keep_live(&self, addr: EndpointAddr) -> tokio::task::JoinHandle<()> {
        self.inner.keep_live(addr)
    }

    /// Stop accepting, finish or cut sessions, close the endpoint.
    pub async fn shutdown(self) {
        self.inner.shutdown().await
    }
}

/// Known peers of the device that are still members of the record, with their last known
/// addresses. A removed device, or the holder of a revoked or expired grant, is left out:
/// it would refuse to sync, or be refused, and only cost a dial timeout.
pub fn known_peers(replica: &Replica) -> Result<Vec<EndpointAddr>> {
    let device = replica.lock();
    let mut out = Vec::new();
    for (peer, info) in device.store().peers(&device.record().id())? {
        if !device.access().is_member(&peer) {
            continue;
        }
        match serde_json::from_slice::<EndpointAddr>(&info) {
            Ok(a) => out.push(a),
            Err(e) => tracing::warn!("skipping an unreadable stored peer address: {e}"),
        }
    }
    Ok(out)
}

/// Parse a peer address given on the command line: JSON `EndpointAddr`, or `KEY@IP:PORT`.
pub fn parse_addr(s: &str) -> Result<EndpointAddr> {
    let s = s.trim();
    if s.starts_with('{') {
        return serde_json::from_str(s).map_err(|_| Error::Network(NetworkProblem::NotAnAddress { given: shown(s) }));
    }
    let (key, sock) = s
        .split_once('@')
        .ok_or_else(|| Error::Network(NetworkProblem::NotAnAddress { given: shown(s) }))?;
    let id: iroh::PublicKey = key
        .parse()
        .map_err(|_| Error::Network(NetworkProblem::NotADeviceKey { given: shown(key) }))?;
    let sock: SocketAddr = sock
        .parse()
        .map_err(|_| Error::Network(NetworkProblem::NotASocket { given: shown(sock) }))?;
    Ok(EndpointAddr::new(id).with_ip_addr(sock))
}

/// Format an address as `KEY@IP:PORT` (first direct address), or JSON if it has none.
pub fn format_addr(addr: &EndpointAddr) -> String {
    match addr.ip_addrs().next() {
        Some(ip) => format!("{}@{ip}", addr.id),
        None => serde_json::to_string(addr).unwrap_or_default(),
    }
}
