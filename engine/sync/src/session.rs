//! One sync session over one iroh connection: handshake for a set of records, catch-up both
//! ways, then (if the dialer asked) live forwarding until either side leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use super::host::{Host, clocks_of};
use super::replica::Arrival;
use super::wire::{self, Hello, Msg, ReadError, Reassembly, Traffic};
use phr_model::error::{Error, Forgery, Result, SyncProblem};
use phr_model::identity::{PublicKey, RecordId};
use phr_model::section::Section;
use phr_store::exchange::{Batch, Received};

/// How long a peer may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for the peer to finish its side once we are done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most batches taken in together (one durable commit for all of them).
const GROUP: usize = 512;

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
    /// Sync only these records (default: every record both sides hold).
    pub records: Option<Vec<RecordId>>,
    /// Called after each batch is applied.
    pub progress: Option<ProgressFn>,
    /// Direct addresses this side listens on, told to the peer.
    pub addrs: Vec<std::net::SocketAddr>,
}

/// Called once the peer's hello is accepted: the accepting side counts sessions that have not
/// got that far, to bound what strangers can hold open.
pub(crate) type OnAdmitted = Box<dyn FnOnce() + Send>;

/// What a session did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionReport {
    /// The peer device.
    pub peer: Option<PublicKey>,
    /// Records synced.
    pub records: Vec<RecordId>,
    /// Records the peer would not sync, with why.
    pub refused: Vec<(RecordId, String)>,
    /// Changes sent, per section.
    pub sent: BTreeMap<Section, u32>,
    /// What arrived, per section.
    pub received: BTreeMap<Section, Received>,
    /// Rejections the peer reported for what we sent.
    pub rejected_by_peer: Vec<String>,
    /// Bytes on the wire.
    pub traffic: Traffic,
    /// The path the session ended on, as the dialer saw it: `direct` or `relay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'static str>,
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

    /// Total changes sent.
    pub fn sent_total(&self) -> u32 {
        self.sent.values().sum()
    }
}

fn sync_err(peer: &PublicKey, problem: SyncProblem) -> Error {
    Error::Sync {
        peer: peer.short(),
        problem,
    }
}

/// A connection's failure, in the network library's words.
fn connection(e: impl std::fmt::Display) -> SyncProblem {
    SyncProblem::Connection { cause: e.to_string() }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::internal("a sync task panicked or was cancelled"))?
}

/// Run a session as the side that dialed.
pub async fn dial<H: Host>(host: Arc<H>, conn: Connection, opts: SessionOptions) -> Result<SessionReport> {
    let peer = PublicKey(*conn.remote_id().as_bytes());
    let (send, recv) = conn.open_bi().await.map_err(|e| sync_err(&peer, connection(e)))?;
    let mut result = run(host, peer, send, recv, true, opts, None).await;
    if let Ok(r) = &mut result {
        r.path = Some(crate::endpoint::path_kind(&conn));
    }
    conn.close(0u32.into(), b"done");
    result
}

/// Run a session as the side that accepted; `opts.addrs` are this side's listening addresses.
pub(crate) async fn accept<H: Host>(
    host: Arc<H>,
    conn: Connection,
    opts: SessionOptions,
    on_admitted: OnAdmitted,
) -> Result<SessionReport> {
    let peer = PublicKey(*conn.remote_id().as_bytes());
    let (send, recv) = conn.accept_bi().await.map_err(|e| sync_err(&peer, connection(e)))?;
    let result = run(host, peer, send, recv, false, opts, Some(on_admitted)).await;
    // Let the dialer read our last frames; it closes the connection when it has them.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.closed()).await;
    result
}

async fn send(tx: &mpsc::Sender<Msg>, msg: Msg, peer: &PublicKey) -> Result<()> {
    tx.send(msg)
        .await
        .map_err(|_| sync_err(peer, SyncProblem::ClosedWhileSending))
}

/// Ask the host to admit the peer to each record, in one blocking call (a call per record
/// made a session over many records mostly thread hand-offs).
async fn admit_all<H: Host>(
    host: &Arc<H>,
    peer: PublicKey,
    hellos: &[wire::RecordHello],
) -> Result<Vec<(RecordId, std::result::Result<(), String>)>> {
    let (h, hellos) = (host.clone(), hellos.to_vec());
    blocking(move || Ok(hellos.iter().map(|rh| (rh.record, h.admit(&peer, rh))).collect())).await
}

/// Exchange hellos; returns the peer's hello and the records both sides agreed to sync.
async fn handshake<H: Host>(
    host: &Arc<H>,
    peer: PublicKey,
    send_stream: &mut SendStream,
    recv: &mut RecvStream,
    dialer: bool,
    opts: &SessionOptions,
    report: &mut SessionReport,
) -> Result<(Hello, BTreeSet<RecordId>)> {
    if dialer {
        handshake_as_dialer(host, peer, send_stream, recv, opts, report).await
    } else {
        handshake_as_acceptor(host, peer, send_stream, recv, opts, report).await
    }
}

/// The dialer's side of the handshake: say hello, read the answer, and admit the peer to the
/// records it answered with.
async fn handshake_as_dialer<H: Host>(
    host: &Arc<H>,
    peer: PublicKey,
    send_stream: &mut SendStream,
    recv: &mut RecvStream,
    opts: &SessionOptions,
    report: &mut SessionReport,
) -> Result<(Hello, BTreeSet<RecordId>)> {
    let answer = say_hello(host, peer, send_stream, recv, opts, report).await?;
    report.refused.extend(answer.refused.iter().cloned());
    let verdicts = admit_all(host, peer, &answer.records).await?;
    let (agreed, refused) = sort_verdicts(verdicts, &peer, "not syncing");
    report.refused.extend(refused);
    if agreed.is_empty() {
        return Err(give_up_as_dialer(host, peer, send_stream, report).await);
    }
    Ok((answer, agreed))
}

/// Send the dialer's hello and wait for the peer's, merging any membership statements the
/// peer sends first.
async fn say_hello<H: Host>(
    host: &Arc<H>,
    peer: PublicKey,
    send_stream: &mut SendStream,
    recv: &mut RecvStream,
    opts: &SessionOptions,
    report: &mut SessionReport,
) -> Result<Hello> {
    let (h, only) = (host.clone(), opts.records.clone());
    let records = blocking(move || h.offer(only.as_deref())).await?;
    let hello = Hello {
        version: wire::VERSION,
        records,
        refused: Vec::new(),
        live: opts.live,
        addrs: opts.addrs.clone(),
    };
    report.traffic.sent += wire::write_msg(send_stream, &Msg::Hello(hello)).await?;
    loop {
        let (msg, n) = read_or_fail(recv, &peer, HELLO_TIMEOUT).await?;
        report.traffic.received += n;
        match msg {
            Msg::Hello(h) => return Ok(h),
            // A peer refusing us first says why in statements (our removal or revocation),
            // so this side stops writing what nobody will accept.
            Msg::Access { record, statements } => {
                let h = host.clone();
                blocking(move || h.merge(&record, &peer, statements)).await?;
            }
            Msg::Refused { reason } => return Err(sync_err(&peer, SyncProblem::RefusedByPeer { reason })),
            _ => return Err(sync_err(&peer, SyncProblem::NoHello)),
        }
    }
}

/// No record is agreed on the dialer's side: tell the peer of the withdrawals behind the
/// refusals, and return the error the session ends with.
async fn give_up_as_dialer<H: Host>(
    host: &Arc<H>,
    peer: PublicKey,
    send_stream: &mut SendStream,
    report: &SessionReport,
) -> Error {
    let why = report
        .refused
        .first()
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| "the peer holds none of these records".into());
    let refused: Vec<RecordId> = report.refused.iter().map(|(r, _)| *r).collect();
    if tell_withdrawals(host, send_stream, &refused).await {
        // Closing at once could discard them in flight: wait until the peer has them.
        let _ = send_stream.finish();
        let _ = tokio::time::timeout(Duration::from_secs(2), send_stream.stopped()).await;
    }
    sync_err(&peer, SyncProblem::Refused { reason: why })
}

/// The accepting side of the handshake: read the peer's hello, admit it to the records it
/// asked for, and answer with this side's hello for those.
async fn handshake_as_acceptor<H: Host>(
    host: &Arc<H>,
    peer: PublicKey,
    send_stream: &mut SendStream,
    recv: &mut RecvStream,
    opts: &SessionOptions,
    report: &mut SessionReport,
) -> Result<(Hello, BTreeSet<RecordId>)> {
    let asked = read_hello(peer, send_stream, recv, report).await?;
    let verdicts = admit_all(host, peer, &asked.records).await?;
    let (agreed, refused) = sort_verdicts(verdicts, &peer, "refusing");
    if agreed.is_empty() {
        let why = refused
            .first()
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| "no record was offered".into());
        let ids: Vec<RecordId> = refused.iter().map(|(r, _)| *r).collect();
        tell_withdrawals(host, send_stream, &ids).await;
        refuse(send_stream, &why).await;
        return Err(sync_err(&peer, SyncProblem::Refused { reason: why }));
    }
    let (h, only) = (host.clone(), agreed.iter().copied().collect::<Vec<_>>());
    let records = blocking(move || h.offer(Some(&only))).await?;
    let answer = Hello {
        version: wire::VERSION,
        records,
        refused: refused.clone(),
        live: asked.live,
        addrs: opts.addrs.clone(),
    };
    report.refused.extend(refused);
    report.traffic.sent += wire::write_msg(send_stream, &Msg::Hello(answer)).await?;
    Ok((asked, agreed))
}

/// Read the dialer's hello, refusing the peer if it starts otherwise or speaks another
/// protocol version.
async fn read_hello(
    peer: PublicKey,
    send_stream: &mut SendStream,
    recv: &mut RecvStream,
    report: &mut SessionReport,
) -> Result<Hello> {
    let (msg, n) = read_or_fail(recv, &peer, HELLO_TIMEOUT).await?;
    report.traffic.received += n;
    match msg {
        Msg::Hello(h) if h.version == wire::VERSION => Ok(h),
        Msg::Hello(h) => {
            let problem = SyncProblem::Version {
                theirs: h.version,
                ours: wire::VERSION,
            };
            refuse(send_stream, &problem.to_string()).await;
            Err(sync_err(&peer, problem))
        }
        _ => {
            refuse(send_stream, "expected hello").await;
            Err(sync_err(&peer, SyncProblem::NoOpeningHello))
        }
    }
}

/// Split the host's verdicts into the records agreed on and those refused (with why), logging
/// each refusal as `{doing} <record>: <why>`.
fn sort_verdicts(
    verdicts: Vec<(RecordId, std::result::Result<(), String>)>,
    peer: &PublicKey,
    doing: &str,
) -> (BTreeSet<RecordId>, Vec<(RecordId, String)>) {
    let mut agreed = BTreeSet::new();
    let mut refused = Vec::new();
    for (record, verdict) in verdicts {
        match verdict {
            Ok(()) => {
                agreed.insert(record);
            }
            Err(reason) => {
                tracing::warn!(peer = %peer.short(), "{doing} {}: {reason}", record.short());
                refused.push((record, reason));
            }
        }
    }
    (agreed, refused)
}

async fn run<H: Host>(
    host: Arc<H>,
    peer: PublicKey,
    mut send_stream: SendStream,
    recv: RecvStream,
    dialer: bool,
    opts: SessionOptions,
    on_admitted: Option<OnAdmitted>,
) -> Result<SessionReport> {
    let mut report = SessionReport {
        peer: Some(peer),
        ..SessionReport::default()
    };
    let mut recv = recv;
    let (peer_hello, agreed) = handshake(&host, peer, &mut send_stream, &mut recv, dialer, &opts, &mut report).await?;
    if let Some(admitted) = on_admitted {
        admitted();
    }
    report.records = agreed.iter().copied().collect();
    remember_addrs(&host, peer, &peer_hello).await?;
    let live = peer_hello.live || opts.live;

    // Subscribe before computing what to send, so nothing written meanwhile is missed
    // (anything sent twice is recognised and dropped by the receiver).
    let mut feed = host.subscribe(&report.records);

    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        while let Some(msg) = rx.recv().await {
            sent += wire::write_msg(&mut send_stream, &msg).await?;
        }
        let _ = send_stream.finish();
        Ok::<u64, Error>(sent)
    });
    // Reading in its own task keeps frames whole however the main loop is interrupted.
    let (in_tx, mut inbox) = mpsc::channel::<Read>(GROUP);
    let reader = tokio::spawn(async move {
        loop {
            let r = wire::read_msg(&mut recv).await;
            let stop = r.is_err();
            if in_tx.send(r).await.is_err() || stop {
                return;
            }
        }
    });

    let outcome = Exchange {
        host: &host,
        peer,
        peer_hello: &peer_hello,
        agreed: &agreed,
        live,
        opts: &opts,
        tx: &tx,
        inbox: &mut inbox,
        feed: &mut feed,
        report: &mut report,
        awaiting_acks: 0,
        peer_caught_up: false,
        parts: Reassembly::default(),
        pending: None,
    }
    .run()
    .await;
    drop(tx);
    match writer.await {
        Ok(Ok(n)) => report.traffic.sent += n,
        Ok(Err(e)) if outcome.is_ok() => return Err(e),
        _ => {}
    }
    if let Err(e) = outcome {
        reader.abort();
        return Err(e);
    }
    // Wait for the peer to finish its side, so our last frames (acks) are read before close.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain(&mut inbox, &mut report)).await;
    reader.abort();
    Ok(report)
}

/// Remember the direct addresses the peer said it listens on, if it gave any.
async fn remember_addrs<H: Host>(host: &Arc<H>, peer: PublicKey, peer_hello: &Hello) -> Result<()> {
    if !peer_hello.addrs.is_empty() {
        let id = iroh::PublicKey::from_bytes(&peer.0)
            .map_err(|_| Error::BadSignature(Forgery::NotAKey { key: peer.short() }))?;
        let addr = iroh::EndpointAddr::from_parts(id, peer_hello.addrs.iter().map(|a| iroh::TransportAddr::Ip(*a)));
        let h = host.clone();
        blocking(move || {
            h.remember(&addr);
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Read what the peer still sends until it finishes its side, counting its bytes and the
/// rejections its acks report.
async fn drain(inbox: &mut mpsc::Receiver<Read>, report: &mut SessionReport) {
    while let Some(r) = inbox.recv().await {
        match r {
            Ok((Msg::Ack { received, .. }, n)) => {
                report.traffic.received += n;
                report.rejected_by_peer.extend(received.rejected);
            }
            Ok((_, n)) => report.traffic.received += n,
            Err(_) => break,
        }
    }
}

/// A frame from the reader task: a message and its size on the wire, or why reading stopped.
type Read = std::result::Result<(Msg, u64), ReadError>;

/// What the catch-up and live exchange of a session works with, and the state it keeps.
struct Exchange<'a, H: Host> {
    host: &'a Arc<H>,
    peer: PublicKey,
    /// The peer's hello: its clocks say what it lacks.
    peer_hello: &'a Hello,
    /// The records both sides agreed to sync.
    agreed: &'a BTreeSet<RecordId>,
    /// Stay connected after catching up.
    live: bool,
    opts: &'a SessionOptions,
    /// Queue to the writer task.
    tx: &'a mpsc::Sender<Msg>,
    /// Frames from the reader task.
    inbox: &'a mut mpsc::Receiver<Read>,
    /// What this side takes in or writes while the session is live.
    feed: &'a mut broadcast::Receiver<Arc<crate::replica::Entered>>,
    report: &'a mut SessionReport,
    /// Batches sent that the peer has not acknowledged yet.
    awaiting_acks: usize,
    /// Whether the peer said it sent everything we lacked.
    peer_caught_up: bool,
    /// Batches arriving in parts.
    parts: Reassembly,
    /// A frame read ahead while gathering batches, handled next.
    pending: Option<Read>,
}

impl<H: Host> Exchange<'_, H> {
    /// Catch the peer up, then take in what it sends (and, when live, forward what happens
    /// here) until both sides are done or either leaves.
    async fn run(mut self) -> Result<()> {
        self.catch_up().await?;
        loop {
            if !self.live && self.peer_caught_up && self.awaiting_acks == 0 {
                return Ok(());
            }
            let read = match self.pending.take() {
                Some(m) => m,
                None => tokio::select! {
                    m = self.inbox.recv() => m.unwrap_or(Err(ReadError::Closed)),
                    entered = self.feed.recv(), if self.live => {
                        if !self.relay(entered).await? {
                            return Ok(());
                        }
                        continue;
                    }
                },
            };
            let Some((msg, n)) = self.opened(read).await? else {
                return Ok(());
            };
            self.report.traffic.received += n;
            let batches = self.gather(msg).await?;
            if !batches.is_empty() {
                self.take_in(batches).await?;
                continue;
            }
            let msg = match self.pending.take() {
                Some(Ok((msg, _))) => msg,
                Some(Err(e)) => {
                    self.pending = Some(Err(e));
                    continue;
                }
                None => continue,
            };
            self.handle(msg).await?;
        }
    }

    /// Send what the peer lacks, then say so.
    ///
    /// Membership first: the peer needs it to judge the changes that follow. Then what the
    /// peer lacks, record by record and section by section, each batch queued as soon as it is
    /// ready. All of it in one blocking call: a call per record and section made a session over
    /// many small records mostly thread hand-offs.
    async fn catch_up(&mut self) -> Result<()> {
        let (h, out, peer) = (self.host.clone(), self.tx.clone(), self.peer);
        let records: Vec<RecordId> = self.agreed.iter().copied().collect();
        let wanted: Vec<_> = self
            .peer_hello
            .records
            .iter()
            .filter(|rh| self.agreed.contains(&rh.record))
            .map(|rh| (rh.record, clocks_of(rh)))
            .collect();
        let (sent, batches) = blocking(move || {
            let queue = |msg: Msg| {
                out.blocking_send(msg)
                    .map_err(|_| sync_err(&peer, SyncProblem::ClosedWhileSending))
            };
            for record in records {
                let statements = h.statements(&record)?;
                queue(Msg::Access { record, statements })?;
            }
            let mut sent: BTreeMap<Section, u32> = BTreeMap::new();
            let mut batches = 0usize;
            for (record, clocks) in wanted {
                for section in Section::SYNCED {
                    let clock = clocks.get(&section).cloned().unwrap_or_default();
                    if let Some(b) = h.outgoing(&record, &peer, section, &clock)? {
                        *sent.entry(section).or_default() += b.count;
                        h.sent(b.count);
                        batches += 1;
                        queue(Msg::Batch(b))?;
                    }
                }
            }
            Ok((sent, batches))
        })
        .await?;
        self.awaiting_acks = batches;
        for (section, n) in sent {
            *self.report.sent.entry(section).or_default() += n;
        }
        send(self.tx, Msg::CaughtUp, &self.peer).await
    }

    /// Forward to the peer what this side took in or wrote while live (unless it came from
    /// the peer). Returns whether the session goes on.
    async fn relay(
        &mut self,
        entered: std::result::Result<Arc<crate::replica::Entered>, broadcast::error::RecvError>,
    ) -> Result<bool> {
        let peer = self.peer;
        match entered {
            Ok(e) if e.from != Some(peer) => match &e.what {
                Arrival::Changes(b)
                    if self.agreed.contains(&b.record) && self.host.may_read(&b.record, &peer, b.section) =>
                {
                    self.awaiting_acks += 1;
                    *self.report.sent.entry(b.section).or_default() += b.count;
                    self.host.sent(b.count);
                    send(self.tx, Msg::Batch(b.clone()), &peer).await?;
                }
                Arrival::Access { record, statements } if self.agreed.contains(record) => {
                    let msg = Msg::Access {
                        record: *record,
                        statements: statements.clone(),
                    };
                    send(self.tx, msg, &peer).await?;
                }
                _ => {}
            },
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                return Err(sync_err(&peer, SyncProblem::Lagged { batches: n }));
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(false),
        }
        Ok(true)
    }

    /// The message a frame holds; `None` when the peer left a live session (which ends it
    /// without error). A protocol violation is told to the peer and ends the session.
    async fn opened(&mut self, read: Read) -> Result<Option<(Msg, u64)>> {
        match read {
            Ok(x) => Ok(Some(x)),
            Err(ReadError::Closed) if self.live => Ok(None),
            Err(ReadError::Closed) => Err(sync_err(&self.peer, SyncProblem::LeftEarly)),
            Err(ReadError::Protocol(why)) => {
                tracing::warn!(peer = %self.peer.short(), "protocol violation: {why}");
                let _ = self.tx.send(Msg::Refused { reason: why.clone() }).await;
                Err(sync_err(&self.peer, SyncProblem::Protocol { violation: why }))
            }
        }
    }

    /// Gather every batch already waiting, starting with `msg`, so they are taken in with one
    /// durable commit. The first message that is no batch is left in `pending`.
    async fn gather(&mut self, msg: Msg) -> Result<Vec<Batch>> {
        let peer = self.peer;
        let mut batches: Vec<Batch> = Vec::new();
        let mut msg = Some(msg);
        while let Some(m) = msg.take() {
            let batch = match m {
                Msg::Batch(b) => Some(b),
                Msg::BatchPart {
                    record,
                    section,
                    bytes,
                    last,
                } => self.parts.push(record, section, bytes, last).map_err(|e| {
                    sync_err(
                        &peer,
                        SyncProblem::Protocol {
                            violation: e.to_string(),
                        },
                    )
                })?,
                other => {
                    self.pending = Some(Ok((other, 0)));
                    break;
                }
            };
            if let Some(b) = batch {
                if !self.agreed.contains(&b.record) {
                    let problem = SyncProblem::OutsideSession {
                        record: b.record.short(),
                    };
                    let reason = problem.to_string();
                    let _ = self.tx.send(Msg::Refused { reason }).await;
                    return Err(sync_err(&peer, problem));
                }
                batches.push(b);
            }
            if batches.len() < GROUP
                && let Ok(r) = self.inbox.try_recv()
            {
                match r {
                    Ok((m, n)) => {
                        self.report.traffic.received += n;
                        msg = Some(m);
                    }
                    Err(e) => self.pending = Some(Err(e)),
                }
            }
        }
        Ok(batches)
    }

    /// Take gathered batches in (one durable commit), forward what was applied to other
    /// sessions, report progress and acknowledge each batch to the peer.
    async fn take_in(&mut self, batches: Vec<Batch>) -> Result<()> {
        let peer = self.peer;
        let keys: Vec<(RecordId, Section)> = batches.iter().map(|b| (b.record, b.section)).collect();
        let h = self.host.clone();
        let results = match blocking(move || h.incoming(batches)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(peer = %peer.short(), "could not take changes in: {e}");
                let _ = self.tx.send(Msg::Refused { reason: e.to_string() }).await;
                return Err(sync_err(&peer, SyncProblem::TakeIn(Box::new(e))));
            }
        };
        for ((record, section), mut got) in keys.into_iter().zip(results) {
            if let Some(fwd) = got.forward.take() {
                self.host.publish(Some(peer), fwd);
            }
            if let Some(p) = &self.opts.progress {
                p(&Progress {
                    section,
                    applied: got.applied,
                    bytes: self.report.traffic.received,
                });
            }
            let entry = self.report.received.entry(section).or_default();
            entry.applied += got.applied;
            entry.duplicates += got.duplicates;
            entry.rejected.extend(got.rejected.iter().cloned());
            send(
                self.tx,
                Msg::Ack {
                    record,
                    section,
                    received: got,
                },
                &peer,
            )
            .await?;
        }
        Ok(())
    }

    /// Handle a message that is no batch: membership, an acknowledgement, the peer being
    /// caught up, or its refusal.
    async fn handle(&mut self, msg: Msg) -> Result<()> {
        let peer = self.peer;
        match msg {
            Msg::Access { record, statements } => {
                if !self.agreed.contains(&record) {
                    return Ok(());
                }
                let h = self.host.clone();
                let still_member = blocking(move || h.merge(&record, &peer, statements)).await?;
                if !still_member {
                    // A removed device and a revoked or expired grant both end here.
                    let why = "this device was removed from the record, or its access was revoked";
                    let _ = self.tx.send(Msg::Refused { reason: why.into() }).await;
                    return Err(sync_err(&peer, SyncProblem::Removed));
                }
            }
            Msg::Ack { section, received, .. } => {
                self.awaiting_acks = self.awaiting_acks.saturating_sub(1);
                for r in &received.rejected {
                    tracing::warn!(peer = %peer.short(), %section, "peer rejected: {r}");
                }
                self.report.rejected_by_peer.extend(received.rejected);
            }
            Msg::CaughtUp => self.peer_caught_up = true,
            Msg::Refused { reason } => return Err(sync_err(&peer, SyncProblem::RefusedByPeer { reason })),
            Msg::Hello(_) => return Err(sync_err(&peer, SyncProblem::HelloTwice)),
            Msg::Batch(_) | Msg::BatchPart { .. } => {}
        }
        Ok(())
    }
}

/// Send a refused peer the removals and revocations of the records it was refused for, so
/// it learns that it was cut off (and applies the cutoffs to its own copy) instead of
/// writing on as if nothing happened. Membership statements carry no record content.
async fn tell_withdrawals<H: Host>(host: &Arc<H>, send: &mut SendStream, records: &[RecordId]) -> bool {
    let mut told = false;
    for record in records {
        let h = host.clone();
        let record = *record;
        let Ok(all) = blocking(move || h.statements(&record)).await else {
            continue;
        };
        let statements: Vec<_> = all
            .into_iter()
            .filter(|st| {
                st.record() == record
                    && matches!(
                        st,
                        phr_model::access::Statement::Removal(_) | phr_model::access::Statement::Revocation(_)
                    )
            })
            .collect();
        if !statements.is_empty() {
            told |= wire::write_msg(send, &Msg::Access { record, statements }).await.is_ok();
        }
    }
    told
}

async fn read_or_fail(recv: &mut RecvStream, peer: &PublicKey, limit: Duration) -> Result<(Msg, u64)> {
    match tokio::time::timeout(limit, wire::read_msg(recv)).await {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(e)) => Err(sync_err(
            peer,
            SyncProblem::Protocol {
                violation: e.to_string(),
            },
        )),
        Err(_) => Err(sync_err(peer, SyncProblem::Timeout)),
    }
}

async fn refuse(send: &mut SendStream, reason: &str) {
    let _ = wire::write_msg(
        send,
        &Msg::Refused {
            reason: reason.to_string(),
        },
    )
    .await;
    let _ = send.finish();
}
