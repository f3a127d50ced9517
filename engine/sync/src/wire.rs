//! The sync protocol's framing and messages (specified in docs/PROTOCOL.md).

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use phr_model::access::Credential;
use phr_model::access::Statement;
use phr_model::error::{Error, NetworkProblem, Result};
use phr_model::identity::RecordId;
use phr_model::section::Section;
use phr_store::exchange::{Batch, Received, WireClock};

/// Protocol version carried in `Hello`.
pub const VERSION: u32 = 1;

/// Largest frame body accepted; a peer that announces more is disconnected.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Largest batch reassembled from parts (bounds memory per section in flight).
pub const MAX_BATCH: usize = 512 * 1024 * 1024;

/// One record a side offers to sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHello {
    /// Record.
    pub record: RecordId,
    /// The sender's credential for this record (its key must be the connection's key).
    pub credential: Credential,
    /// Per section, the sender's newest change of each author.
    pub clocks: Vec<(Section, WireClock)>,
}

/// First message on a sync stream, from each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version.
    pub version: u32,
    /// Records to sync (the answer lists those accepted).
    pub records: Vec<RecordHello>,
    /// Records the answering side will not sync, with why.
    pub refused: Vec<(RecordId, String)>,
    /// Whether the dialer stays connected for live updates.
    pub live: bool,
    /// Direct addresses the sender listens on, so the peer can dial it later.
    pub addrs: Vec<std::net::SocketAddr>,
}

/// Everything that travels on a sync stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Opening handshake.
    Hello(Hello),
    /// The peer will not sync, and why.
    Refused {
        /// Human-readable reason.
        reason: String,
    },
    /// All membership statements the sender knows for a record.
    Access {
        /// Record.
        record: RecordId,
        /// Root-signed statements.
        statements: Vec<Statement>,
    },
    /// Changes of one section.
    Batch(Batch),
    /// One piece of a batch too large for one frame: a postcard-encoded `Batch`, split.
    BatchPart {
        /// Record, so parts of different batches cannot mix.
        record: RecordId,
        /// Section, so parts of different sections cannot mix.
        section: Section,
        /// Bytes of this part.
        bytes: Vec<u8>,
        /// Whether this is the last part.
        last: bool,
    },
    /// Receipt for a batch: applied and durable, with any rejections.
    Ack {
        /// Record of the batch.
        record: RecordId,
        /// Section of the batch.
        section: Section,
        /// Outcome.
        received: Received,
    },
    /// The sender has sent everything the receiver lacked when the session began.
    CaughtUp,
}

/// Count of bytes moved, for reports and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Frame bytes written.
    pub sent: u64,
    /// Frame bytes read.
    pub received: u64,
}

/// Write one message as a frame; oversized batches go out as parts.
pub async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, msg: &Msg) -> Result<u64> {
    let body = postcard::to_stdvec(msg).map_err(|_| Error::internal("a message would not encode"))?;
    if body.len() <= MAX_FRAME {
        return write_frame(w, &body).await;
    }
    let Msg::Batch(batch) = msg else {
        // Only batches grow with the record; every other message is small by construction.
        return Err(Error::internal("a message other than a batch is too large to send"));
    };
    // Leave room for the part's own framing fields.
    let chunk = MAX_FRAME - 64;
    let mut total = 0;
    let pieces: Vec<&[u8]> = body.chunks(chunk).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let part = Msg::BatchPart {
            record: batch.record,
            section: batch.section,
            bytes: piece.to_vec(),
            last: i + 1 == pieces.len(),
        };
        let enc = postcard::to_stdvec(&part).map_err(|_| Error::internal("a message would not encode"))?;
        total += write_frame(w, &enc).await?;
    }
    Ok(total)
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<u64> {
    let len = u32::try_from(body.len()).map_err(|_| Error::internal("a frame over 4 GiB"))?;
    // A failed write is the connection's doing, not the disk's: say so, not "storage failure".
    let lost = |e: std::io::Error| Error::Network(NetworkProblem::Send { cause: with_cause(&e) });
    w.write_all(&len.to_be_bytes()).await.map_err(lost)?;
    w.write_all(body).await.map_err(lost)?;
    Ok(4 + body.len() as u64)
}

/// `e` with the causes beneath it ("connection lost: timed out"): QUIC names why a
/// connection ended (timed out, closed by the peer and its reason) only in the source chain.
pub(crate) fn with_cause(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// What went wrong reading from a peer.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the stream cleanly between frames.
    #[error("the peer closed the connection")]
    Closed,
    /// Anything else: named, so the peer can be told and the event logged.
    #[error("{0}")]
    Protocol(String),
}

/// Read one frame and decode it. Enforces [`MAX_FRAME`] before allocating.
pub async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> std::result::Result<(Msg, u64), ReadError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(ReadError::Closed),
        Err(e) => {
            // QUIC's own words usually start with "connection lost"; say it once.
            let why = with_cause(&e);
            let why = why.strip_prefix("connection lost: ").unwrap_or(&why);
            return Err(ReadError::Protocol(format!("connection lost: {why}")));
        }
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(ReadError::Protocol(format!(
            "the peer sent a frame of {n} bytes, over the {MAX_FRAME} byte limit"
        )));
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)
        .await
        .map_err(|e| ReadError::Protocol(format!("the peer's frame was cut short: {}", with_cause(&e))))?;
    let msg = postcard::from_bytes(&body)
        .map_err(|e| ReadError::Protocol(format!("the peer sent a malformed message: {e}")))?;
    Ok((msg, 4 + n as u64))
}

/// Reassembles `BatchPart`s into a `Batch`, bounded by [`MAX_BATCH`].
#[derive(Default)]
pub struct Reassembly {
    section: Option<(RecordId, Section)>,
    buf: Vec<u8>,
}

impl Reassembly {
    /// Add a part; returns the batch when the last part arrives.
    pub fn push(
        &mut self,
        record: RecordId,
        section: Section,
        bytes: Vec<u8>,
        last: bool,
    ) -> std::result::Result<Option<Batch>, ReadError> {
        let section_id = (record, section);
        if self.section.is_some_and(|s| s != section_id) {
            return Err(ReadError::Protocol("the peer interleaved parts of two batches".into()));
        }
        self.section = Some(section_id);
        if self.buf.len() + bytes.len() > MAX_BATCH {
            return Err(ReadError::Protocol(format!(
                "the peer's batch exceeds {MAX_BATCH} bytes"
            )));
        }
        self.buf.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let body = std::mem::take(&mut self.buf);
        self.section = None;
        match postcard::from_bytes::<Msg>(&body) {
            Ok(Msg::Batch(b)) if b.section == section && b.record == record => Ok(Some(b)),
            _ => Err(ReadError::Protocol("the peer's batch parts do not form a batch".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_store::exchange::Encoding;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_batches_split() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let big = Batch {
            record: phr_model::identity::KeyPair::generate().public(),
            section: Section::Notes,
            encoding: Encoding::Bundle,
            payload: vec![7u8; MAX_FRAME + 1000],
            head_sigs: vec![],
            count: 1,
        };
        let expected = big.clone();
        let writer = tokio::spawn(async move {
            write_msg(&mut a, &Msg::CaughtUp).await.unwrap();
            write_msg(&mut a, &Msg::Batch(big)).await.unwrap();
        });
        let (m, _) = read_msg(&mut b).await.unwrap();
        assert_eq!(m, Msg::CaughtUp);
        let mut re = Reassembly::default();
        let got = loop {
            match read_msg(&mut b).await.unwrap().0 {
                Msg::BatchPart {
                    record,
                    section,
                    bytes,
                    last,
                } => {
                    if let Some(batch) = re.push(record, section, bytes, last).unwrap() {
                        break batch;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(got, expected);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn an_oversized_frame_header_is_refused_before_allocating() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        let err = read_msg(&mut b).await.unwrap_err().to_string();
        assert!(err.contains("over the"), "{err}");
    }

    #[tokio::test]
    async fn garbage_is_a_named_error() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&5u32.to_be_bytes()).await.unwrap();
        a.write_all(&[0xff; 5]).await.unwrap();
        let err = read_msg(&mut b).await.unwrap_err().to_string();
        assert!(err.contains("malformed"), "{err}");
    }

    /// A stream whose connection went away the way QUIC reports it: the reason is a source.
    struct Lost;

    #[derive(Debug, thiserror::Error)]
    #[error("connection lost")]
    struct ConnectionLost(#[source] TimedOut);

    #[derive(Debug, thiserror::Error)]
    #[error("timed out")]
    struct TimedOut;

    impl AsyncRead for Lost {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Err(std::io::Error::other(ConnectionLost(TimedOut))))
        }
    }

    #[tokio::test]
    async fn a_lost_connection_says_why() {
        let err = read_msg(&mut Lost).await.unwrap_err().to_string();
        assert_eq!(err, "connection lost: timed out");
    }
}
