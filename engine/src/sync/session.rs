//! One sync session over one iroh connection: handshake, catch-up both ways, then (if asked)
//! live forwarding until either side leaves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use super::replica::Replica;
use super::wire::{self, Hello, Msg, ReadError, Reassembly, Traffic};
use crate::access::Statement;
use crate::error::{Error, Result};
use crate::exchange::{self, Received};
use crate::identity::PublicKey;
use crate::section::Section;

/// How long a peer may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for the peer to finish its side once we are done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Progress of a session, reported as batches arrive.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Section just applied.
    pub section: Section,
    /// Changes applied from it.
    pub applied: u32,
    /// Bytes received so far.
    pub bytes: u64,
}

/// Callback receiving progress.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How a session behaves.
#[derive(Clone, Default)]
pub struct SessionOptions {
    /// Stay connected after catching up, pushing changes both ways as they happen.
    pub live: bool,
    /// Called after each batch is applied.
    pub progress: Option<ProgressFn>,
}

/// What a session did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionReport {
    /// The peer device.
    pub peer: Option<PublicKey>,
    /// Changes sent, per section.
    pub sent: BTreeMap<Section, u32>,
    /// What arrived, per section.
    pub received: BTreeMap<Section, Received>,
    /// Rejections the peer reported for what we sent.
    pub rejected_by_peer: Vec<String>,
    /// Bytes on the wire.
    pub traffic: Traffic,
}

impl SessionReport {
    /// Total changes applied from the peer.
    pub fn applied(&self) -> u32 {
        self.received.values().map(|r| r.applied).sum()
    }

    /// Total changes rejected from the peer.
    pub fn rejected(&self) -> usize {
        self.received.values().map(|r| r.rejected.len()).sum()
    }
}

fn sync_err(peer: &PublicKey, reason: impl Into<String>) -> Error {
    Error::Sync {
        peer: peer.short(),
        reason: reason.into(),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(format!("a sync task failed: {e}")))?
}

/// Run a session as the side that dialed.
pub async fn dial(replica: Arc<Replica>, conn: Connection, opts: SessionOptions) -> Result<SessionReport> {
    let peer = PublicKey(*conn.remote_id().as_bytes());
    let (send, recv) = conn.open_bi().await.map_err(|e| sync_err(&peer, e.to_string()))?;
    let result = run(replica, peer, send, recv, true, opts).await;
    conn.close(0u32.into(), b"done");
    result
}

/// Run a session as the side that accepted.
pub async fn accept(replica: Arc<Replica>, conn: Connection) -> Result<SessionReport> {
    let peer = PublicKey(*conn.remote_id().as_bytes());
    let (send, recv) = conn.accept_bi().await.map_err(|e| sync_err(&peer, e.to_string()))?;
    let result = run(replica, peer, send, recv, false, SessionOptions::default()).await;
    // Let the dialer read our last frames; it closes the connection when it has them.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.closed()).await;
    result
}

fn my_hello(replica: &Replica, live: bool) -> Hello {
    let mut device = replica.lock();
    Hello {
        version: wire::VERSION,
        record: replica.record_id(),
        cert: device.cert().clone(),
        clocks: device.clocks(),
        live,
    }
}

/// Check the peer's hello; on success its certificate joins our membership set.
fn admit(replica: &Replica, peer: &PublicKey, hello: &Hello) -> std::result::Result<(), String> {
    if hello.version != wire::VERSION {
        return Err(format!("protocol version {} is not supported (this device speaks {})", hello.version, wire::VERSION));
    }
    if hello.record != replica.record_id() {
        return Err(format!("this device does not hold record {}", hello.record.short()));
    }
    if hello.cert.device != *peer || hello.cert.record != hello.record {
        return Err("the device certificate is not for this device and record".into());
    }
    hello.cert.verify().map_err(|e| e.to_string())?;
    let mut device = replica.lock();
    if device.access().removal(peer).is_some() {
        return Err(format!("device {} was removed from this record", peer.short()));
    }
    device
        .merge_statements(vec![Statement::Device(hello.cert.clone())])
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn send(tx: &mpsc::Sender<Msg>, msg: Msg, peer: &PublicKey) -> Result<()> {
    tx.send(msg).await.map_err(|_| sync_err(peer, "the connection closed while sending"))
}

async fn run(
    replica: Arc<Replica>,
    peer: PublicKey,
    mut send_stream: SendStream,
    mut recv: RecvStream,
    dialer: bool,
    opts: SessionOptions,
) -> Result<SessionReport> {
    let mut report = SessionReport {
        peer: Some(peer),
        ..SessionReport::default()
    };
    let hello = {
        let r = replica.clone();
        blocking(move || Ok(my_hello(&r, opts.live))).await?
    };

    // Handshake. The dialer speaks first; either side may refuse with a reason.
    let peer_hello = if dialer {
        report.traffic.sent += wire::write_msg(&mut send_stream, &Msg::Hello(hello.clone())).await?;
        let (msg, n) = read_or_fail(&mut recv, &peer, HELLO_TIMEOUT).await?;
        report.traffic.received += n;
        match msg {
            Msg::Hello(h) => h,
            Msg::Refused { reason } => return Err(sync_err(&peer, format!("refused: {reason}"))),
            _ => return Err(sync_err(&peer, "the peer did not start with hello")),
        }
    } else {
        let (msg, n) = read_or_fail(&mut recv, &peer, HELLO_TIMEOUT).await?;
        report.traffic.received += n;
        match msg {
            Msg::Hello(h) => h,
            _ => {
                refuse(&mut send_stream, "expected hello").await;
                return Err(sync_err(&peer, "the peer did not start with hello"));
            }
        }
    };
    let admitted = {
        let (r, h) = (replica.clone(), peer_hello.clone());
        blocking(move || Ok(admit(&r, &peer, &h))).await?
    };
    if let Err(reason) = admitted {
        tracing::warn!(peer = %peer.short(), "refusing sync: {reason}");
        refuse(&mut send_stream, &reason).await;
        return Err(sync_err(&peer, format!("refused: {reason}")));
    }
    if !dialer {
        report.traffic.sent += wire::write_msg(&mut send_stream, &Msg::Hello(hello)).await?;
    }
    let live = if dialer { opts.live } else { peer_hello.live };

    // Subscribe before computing what to send, so nothing written meanwhile is missed
    // (anything sent twice is recognised and dropped by the receiver).
    let mut feed = replica.subscribe();

    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        while let Some(msg) = rx.recv().await {
            sent += wire::write_msg(&mut send_stream, &msg).await?;
        }
        let _ = send_stream.finish();
        Ok::<u64, Error>(sent)
    });

    let statements: Vec<Statement> = replica.lock().access().statements().cloned().collect();
    send(&tx, Msg::Access { statements }, &peer).await?;
    let peer_clocks: BTreeMap<Section, _> = peer_hello
        .clocks
        .iter()
        .map(|(s, c)| (*s, exchange::from_wire(c)))
        .collect();
    let mut awaiting_acks = 0usize;
    for section in Section::ALL {
        let peer_clock = peer_clocks.get(&section).cloned().unwrap_or_default();
        let r = replica.clone();
        let batch = blocking(move || r.lock().outgoing(section, &peer_clock)).await?;
        if let Some(b) = batch {
            *report.sent.entry(section).or_default() += b.count;
            awaiting_acks += 1;
            send(&tx, Msg::Batch(b), &peer).await?;
        }
    }
    send(&tx, Msg::CaughtUp, &peer).await?;

    let mut peer_caught_up = false;
    let mut parts = Reassembly::default();
    let outcome: Result<()> = loop {
        if !live && peer_caught_up && awaiting_acks == 0 {
            break Ok(());
        }
        tokio::select! {
            read = wire::read_msg(&mut recv) => {
                let (msg, n) = match read {
                    Ok(x) => x,
                    Err(ReadError::Closed) if live => break Ok(()),
                    Err(ReadError::Closed) => break Err(sync_err(&peer, "the peer left before the sync finished")),
                    Err(ReadError::Protocol(why)) => {
                        tracing::warn!(peer = %peer.short(), "protocol violation: {why}");
                        break Err(sync_err(&peer, why));
                    }
                };
                report.traffic.received += n;
                let batch = match msg {
                    Msg::Batch(b) => Some(b),
                    Msg::BatchPart { section, bytes, last } => match parts.push(section, bytes, last) {
                        Ok(b) => b,
                        Err(e) => break Err(sync_err(&peer, e.to_string())),
                    },
                    Msg::Access { statements } => {
                        let r = replica.clone();
                        let still_member = blocking(move || {
                            let mut d = r.lock();
                            for st in statements {
                                // A forged statement is logged and skipped; the rest still count.
                                if let Err(e) = d.merge_statements(vec![st]) {
                                    tracing::warn!(peer = %peer.short(), "ignored a membership statement: {e}");
                                }
                            }
                            Ok(d.access().is_member(&peer))
                        }).await?;
                        if !still_member {
                            let _ = tx.send(Msg::Refused { reason: "this device was removed from the record".into() }).await;
                            break Err(sync_err(&peer, "the peer's device was removed from the record"));
                        }
                        None
                    }
                    Msg::Ack { section, received } => {
                        awaiting_acks = awaiting_acks.saturating_sub(1);
                        for r in &received.rejected {
                            tracing::warn!(peer = %peer.short(), %section, "peer rejected: {r}");
                        }
                        report.rejected_by_peer.extend(received.rejected);
                        None
                    }
                    Msg::CaughtUp => {
                        peer_caught_up = true;
                        None
                    }
                    Msg::Refused { reason } => break Err(sync_err(&peer, format!("refused: {reason}"))),
                    Msg::Hello(_) => break Err(sync_err(&peer, "the peer said hello twice")),
                };
                if let Some(batch) = batch {
                    let section = batch.section;
                    let r = replica.clone();
                    let got = blocking(move || r.lock().incoming(batch)).await;
                    let mut got = match got {
                        Ok(g) => g,
                        Err(e) => {
                            tracing::warn!(peer = %peer.short(), %section, "could not take a batch: {e}");
                            let _ = tx.send(Msg::Refused { reason: e.to_string() }).await;
                            break Err(sync_err(&peer, e.to_string()));
                        }
                    };
                    if let Some(fwd) = got.forward.take() {
                        replica.publish(Some(peer), fwd);
                    }
                    if let Some(p) = &opts.progress {
                        p(&Progress { section, applied: got.applied, bytes: report.traffic.received });
                    }
                    let entry = report.received.entry(section).or_default();
                    entry.applied += got.applied;
                    entry.duplicates += got.duplicates;
                    entry.rejected.extend(got.rejected.iter().cloned());
                    send(&tx, Msg::Ack { section, received: got }, &peer).await?;
                }
            }
            entered = feed.recv(), if live => {
                match entered {
                    Ok(e) if e.from != Some(peer) => {
                        awaiting_acks += 1;
                        *report.sent.entry(e.batch.section).or_default() += e.batch.count;
                        send(&tx, Msg::Batch(e.batch.clone()), &peer).await?;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        break Err(sync_err(&peer, format!("fell {n} batches behind; reconnect to catch up")));
                    }
                    Err(broadcast::error::RecvError::Closed) => break Ok(()),
                }
            }
        }
    };
    drop(tx);
    match writer.await {
        Ok(Ok(n)) => report.traffic.sent += n,
        Ok(Err(e)) if outcome.is_ok() => return Err(e),
        _ => {}
    }
    outcome?;
    // Wait for the peer to finish its side, so our last frames (acks) are read before close.
    let drain = async {
        loop {
            match wire::read_msg(&mut recv).await {
                Ok((Msg::Ack { received, .. }, n)) => {
                    report.traffic.received += n;
                    report.rejected_by_peer.extend(received.rejected);
                }
                Ok((_, n)) => report.traffic.received += n,
                Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
    Ok(report)
}

async fn read_or_fail(recv: &mut RecvStream, peer: &PublicKey, limit: Duration) -> Result<(Msg, u64)> {
    match tokio::time::timeout(limit, wire::read_msg(recv)).await {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(e)) => Err(sync_err(peer, e.to_string())),
        Err(_) => Err(sync_err(peer, "the peer did not answer in time")),
    }
}

async fn refuse(send: &mut SendStream, reason: &str) {
    let _ = wire::write_msg(send, &Msg::Refused { reason: reason.to_string() }).await;
    let _ = send.finish();
}
