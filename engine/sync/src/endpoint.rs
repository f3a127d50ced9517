//! iroh endpoints for phr: binding with or without relays and discovery, dialing peers with
//! timeouts, and the waiting room that bounds connections not yet admitted. Which protocols an
//! endpoint serves is [`crate::net`]'s (the service) and each protocol's own module's.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::endpoint::{ConnectOptions, Connection, PortmapperConfig, QuicTransportConfig, RelayMode, presets};
use iroh::{Endpoint, EndpointAddr, RelayConfig, RelayMap, RelayUrl, SecretKey};
use serde::{Deserialize, Serialize};

use phr_model::error::{Error, NetworkProblem, Result};
use phr_model::identity::{KeyPair, PublicKey};

/// Sessions an endpoint serves at once that have not yet passed hello, from all peers
/// together: what a flood of connections from fresh keys can hold open. Beyond it the oldest
/// waiting one is closed. Admitted sessions do not count; they are bounded per key.
pub const MAX_PENDING_SESSIONS: usize = 128;

/// QUIC close code for a session closed because its peer opened too many, or the endpoint
/// has too many waiting for hello.
pub const TOO_MANY_SESSIONS: u32 = 2;

/// How long a connection may go without hearing from its peer before it is given up as dead.
/// Keep-alives every 2 s keep a quiet session up; the margin rides out a peer that is busy
/// for a few seconds (a loaded phone, a slow disk) instead of failing its sync. The dial
/// timeout, by contrast, is how long to wait for a peer that may not be there at all.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Network settings of a device or node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetConfig {
    /// Local address to listen on (port 0 picks one).
    pub bind: SocketAddr,
    /// Use iroh's public relays to reach peers behind NATs (needs the internet).
    pub relays: bool,
    /// Publish and look up addresses through iroh's discovery (needs the internet).
    pub discovery: bool,
    /// Give up dialing a peer after this long.
    pub dial_timeout_secs: u64,
    /// The relay this device calls home (its clinic's, say): listed first, with iroh's public
    /// relays after it as the fallback when `relays` is on, alone when it is off.
    #[serde(default)]
    pub relay: Option<RelayUrl>,
}

impl NetConfig {
    /// Loopback only: no relays, no discovery. For tests and the demo.
    pub fn local() -> Self {
        NetConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            relays: false,
            discovery: false,
            dial_timeout_secs: 5,
            relay: None,
        }
    }

    /// Real deployments: all interfaces, relays and discovery on.
    pub fn internet() -> Self {
        NetConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            relays: true,
            discovery: true,
            dial_timeout_secs: 10,
            relay: None,
        }
    }

    fn dial_timeout(&self) -> Duration {
        Duration::from_secs(self.dial_timeout_secs.max(1))
    }

    /// Which relays the endpoint may use: the home relay first, the public ones as fallback.
    /// iroh calls home the one that answers fastest, keeping it unless another is much faster.
    pub fn relay_mode(&self) -> RelayMode {
        let Some(home) = &self.relay else {
            return if self.relays {
                RelayMode::Default
            } else {
                RelayMode::Disabled
            };
        };
        let home = Arc::new(home_relay(home));
        let public: Vec<Arc<RelayConfig>> = if self.relays {
            RelayMode::Default.relay_map().relays()
        } else {
            Vec::new()
        };
        RelayMode::Custom(std::iter::once(home).chain(public).collect::<RelayMap>())
    }
}

/// A home relay's settings: address discovery over QUIC (on the relay's default port) only
/// where it serves TLS, since that QUIC server needs a certificate; a plain-HTTP relay (a LAN's,
/// a test's) is not probed for it.
fn home_relay(url: &RelayUrl) -> RelayConfig {
    if url.scheme() == "https" {
        RelayConfig::from(url.clone())
    } else {
        RelayConfig::new(url.clone(), None)
    }
}

/// The iroh identity of a device key.
pub fn secret_key(key: &KeyPair) -> SecretKey {
    SecretKey::from_bytes(&key.secret_bytes())
}

/// Bind an endpoint for `key` as configured. Never waits for the internet.
pub async fn bind(key: &KeyPair, cfg: &NetConfig) -> Result<Endpoint> {
    let net = |cause: String| {
        Error::Network(NetworkProblem::Endpoint {
            bind: cfg.bind.to_string(),
            cause,
        })
    };
    let builder = if cfg.discovery {
        Endpoint::builder(presets::N0)
    } else {
        Endpoint::builder(presets::Minimal).clear_address_lookup()
    };
    let builder = builder
        .secret_key(secret_key(key))
        .relay_mode(cfg.relay_mode())
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind_addr(cfg.bind)
        .map_err(|e| net(e.to_string()))?;
    builder.bind().await.map_err(|e| net(e.to_string()))
}

/// Dial `addr` on `alpn`, failing after the configured dial timeout instead of QUIC's 30 s.
pub async fn connect(endpoint: &Endpoint, addr: EndpointAddr, alpn: &[u8], cfg: &NetConfig) -> Result<Connection> {
    let who = addr.id.fmt_short().to_string();
    let unreachable = |cause: String| {
        Error::Network(NetworkProblem::Unreachable {
            who: who.clone(),
            cause,
        })
    };
    let transport = QuicTransportConfig::builder()
        .max_idle_timeout(Some(
            IDLE_TIMEOUT.try_into().map_err(|_| unreachable("bad timeout".into()))?,
        ))
        .keep_alive_interval(Duration::from_secs(2))
        .build();
    let attempt = async {
        let connecting = endpoint
            .connect_with_opts(addr, alpn, ConnectOptions::new().with_transport_config(transport))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        connecting.await.map_err(|e| unreachable(e.to_string()))
    };
    match tokio::time::timeout(cfg.dial_timeout() + Duration::from_secs(1), attempt).await {
        Ok(r) => r,
        Err(_) => Err(unreachable("timed out".into())),
    }
}

/// How a connection reaches its peer now, in iroh's own terms: `direct` (a UDP path to the
/// peer's address, hole punched or not), `relay` (through a relay server), or `none` when no
/// path is selected (the connection is closing).
pub fn path_kind(conn: &Connection) -> &'static str {
    let paths = conn.paths();
    match paths.iter().find(|p| p.is_selected()) {
        Some(p) if p.is_ip() => "direct",
        Some(p) if p.is_relay() => "relay",
        _ => "none",
    }
}

/// Connections from peers not yet known to be members, oldest first: when a new one finds all
/// [`MAX_PENDING_SESSIONS`] places taken, the oldest is closed to make room. A flood of fresh
/// keys can then hold only so many connections, and an honest peer, whose first message takes
/// milliseconds, is crowded out only by a flood faster than that. Sync sessions wait here for
/// hello; pairing and clinic connections for their request.
#[derive(Clone)]
pub struct WaitingRoom {
    /// Which connections these are and what they wait for, as logged: "sync", "hello".
    what: (&'static str, &'static str),
    inner: Arc<Mutex<Arrivals>>,
}

impl std::fmt::Debug for WaitingRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.inner.lock().map(|p| p.conns.len()).unwrap_or_default();
        f.debug_struct("WaitingRoom")
            .field("what", &self.what.0)
            .field("waiting", &waiting)
            .finish()
    }
}

/// Connections in order of arrival, each under an id, for the bounds that close the oldest
/// when a new one finds every place taken.
#[derive(Default)]
pub(crate) struct Arrivals {
    pub(crate) conns: std::collections::VecDeque<(u64, Connection)>,
}

/// Ids unique in the process, not per [`Arrivals`]: a peer's list is dropped when it empties,
/// and a session pushed out of an earlier list must not, when it ends, remove a newer one.
static NEXT_ARRIVAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Arrivals {
    /// Add `conn` where at most `cap` may be; returns its id and the oldest connection it
    /// pushed out, for the caller to close.
    pub(crate) fn push(&mut self, conn: &Connection, cap: usize) -> (u64, Option<Connection>) {
        let out = if self.conns.len() >= cap {
            self.conns.pop_front().map(|(_, c)| c)
        } else {
            None
        };
        let id = NEXT_ARRIVAL.fetch_add(1, Ordering::Relaxed);
        self.conns.push_back((id, conn.clone()));
        (id, out)
    }

    /// Forget connection `id` (however often called).
    pub(crate) fn remove(&mut self, id: u64) {
        self.conns.retain(|(i, _)| *i != id);
    }
}

/// One connection's place in a [`WaitingRoom`] until it is released or dropped.
pub struct PendingSlot {
    id: u64,
    pending: Arc<Mutex<Arrivals>>,
}

impl WaitingRoom {
    /// An empty room for connections of protocol `what` waiting for `until`.
    pub fn new(what: &'static str, until: &'static str) -> Self {
        WaitingRoom {
            what: (what, until),
            inner: Arc::default(),
        }
    }

    /// Take a place for `conn`, closing the oldest waiting connection if none is free.
    pub fn take(&self, conn: &Connection) -> Arc<PendingSlot> {
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (id, pushed_out) = p.push(conn, MAX_PENDING_SESSIONS);
        if let Some(oldest) = pushed_out {
            let peer = PublicKey(*oldest.remote_id().as_bytes());
            let (what, until) = self.what;
            tracing::warn!(
                peer = %peer.short(),
                "closed a {what} connection still waiting for {until}: crowded out by newer connections"
            );
            oldest.close(
                TOO_MANY_SESSIONS.into(),
                b"too many connections are starting; try again shortly",
            );
        }
        Arc::new(PendingSlot {
            id,
            pending: self.inner.clone(),
        })
    }
}

impl PendingSlot {
    /// Leave the waiting room (however often called).
    pub fn release(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.remove(self.id);
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.release();
    }
}
