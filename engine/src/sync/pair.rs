//! Pairing a new device by a one-time ticket (text or QR): the new device proves it holds
//! the ticket's secret, and a device holding the root key certifies it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::EndpointAddr;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::net::{self, NetConfig};
use super::replica::Replica;
use super::wire;
use crate::access::Statement;
use crate::crypto::random_bytes;
use crate::error::{Error, Result};
use crate::identity::{DeviceCert, KeyPair, PublicKey, RecordId};

/// ALPN of the pairing protocol.
pub const PAIR_ALPN: &[u8] = b"phr/pair/1";

/// Prefix of a pairing ticket's text form.
const TICKET_PREFIX: &str = "PHRPAIR1";

/// What a new device needs to join: whom to call, and a one-time secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairTicket {
    /// Record to join.
    pub record: RecordId,
    /// Address of the issuing device.
    pub addr: EndpointAddr,
    /// One-time secret.
    pub secret: [u8; 16],
    /// Unix seconds after which the ticket is void.
    pub expires: i64,
}

impl PairTicket {
    /// Text form: upper-case base32, so a QR code can use its compact alphanumeric mode.
    pub fn to_text(&self) -> String {
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        format!("{TICKET_PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes))
    }

    /// Read a ticket from its text form.
    pub fn parse(text: &str) -> Result<PairTicket> {
        let t = text.trim();
        let body = t
            .strip_prefix(TICKET_PREFIX)
            .ok_or_else(|| Error::Ticket("this is not a phr pairing ticket".into()))?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::Ticket("the ticket text is damaged (check it was copied whole)".into()))?;
        postcard::from_bytes(&bytes)
            .map_err(|_| Error::Ticket("the ticket text is damaged (check it was copied whole)".into()))
    }

    fn proof(&self, joiner: &PublicKey, issuer: &PublicKey) -> [u8; 32] {
        let key = blake3::derive_key("phr pairing v1", &self.secret);
        let mut msg = joiner.0.to_vec();
        msg.extend_from_slice(&issuer.0);
        msg.extend_from_slice(&self.record.0);
        *blake3::keyed_hash(&key, &msg).as_bytes()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct JoinRequest {
    version: u32,
    record: RecordId,
    proof: [u8; 32],
    device_name: String,
}

#[derive(Debug, Serialize, Deserialize)]
enum JoinReply {
    Accepted {
        cert: DeviceCert,
        statements: Vec<Statement>,
    },
    Refused {
        reason: String,
    },
}

#[derive(Debug)]
struct Issued {
    ticket: PairTicket,
    used: bool,
}

/// Accepts pairing requests for the tickets this device issued.
#[derive(Debug)]
pub struct PairHandler {
    replica: Arc<Replica>,
    issued: Mutex<Vec<Issued>>,
    joined: Notify,
    last_joined: Mutex<Option<DeviceCert>>,
}

impl PairHandler {
    pub(crate) fn new(replica: Arc<Replica>) -> Self {
        PairHandler {
            replica,
            issued: Mutex::new(Vec::new()),
            joined: Notify::new(),
            last_joined: Mutex::new(None),
        }
    }

    /// Issue a one-time ticket valid for `ttl`, pointing at `addr`. Needs the root key.
    pub fn issue(&self, addr: EndpointAddr, ttl: Duration) -> Result<PairTicket> {
        if !self.replica.lock().has_root() {
            return Err(Error::NotAllowed(
                "only a device holding the patient's root key can add devices".into(),
            ));
        }
        let ticket = PairTicket {
            record: self.replica.record_id(),
            addr,
            secret: random_bytes(),
            expires: chrono::Utc::now().timestamp() + ttl.as_secs() as i64,
        };
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).push(Issued {
            ticket: ticket.clone(),
            used: false,
        });
        Ok(ticket)
    }

    /// Wait until a device joins with one of the issued tickets; returns its certificate.
    pub async fn wait_joined(&self) -> DeviceCert {
        loop {
            let notified = self.joined.notified();
            if let Some(c) = self.last_joined.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return c;
            }
            notified.await;
        }
    }

    fn decide(&self, joiner: &PublicKey, req: &JoinRequest) -> std::result::Result<DeviceCert, String> {
        if req.version != wire::VERSION {
            return Err(format!("pairing version {} is not supported", req.version));
        }
        let me = self.replica.device_id();
        let now = chrono::Utc::now().timestamp();
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let slot = issued
            .iter_mut()
            .find(|i| i.ticket.record == req.record && i.ticket.proof(joiner, &me) == req.proof)
            .ok_or("the ticket is not one this device issued (forged, or for another device)")?;
        if slot.used {
            return Err("this pairing ticket was already used; ask for a new one".into());
        }
        if now > slot.ticket.expires {
            return Err("this pairing ticket has expired; ask for a new one".into());
        }
        let name = req.device_name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err("the device name must be 1 to 100 characters".into());
        }
        let mut device = self.replica.lock();
        let root = device.root().ok_or("this device no longer holds the root key")?.clone();
        let cert = DeviceCert::issue(&root, *joiner, name, now);
        device
            .merge_statements(vec![Statement::Device(cert.clone())])
            .map_err(|e| e.to_string())?;
        slot.used = true;
        Ok(cert)
    }
}

impl ProtocolHandler for PairHandler {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let joiner = PublicKey(*conn.remote_id().as_bytes());
        let (mut send, mut recv) = conn.accept_bi().await?;
        let reply = match tokio::time::timeout(Duration::from_secs(15), read_json::<JoinRequest>(&mut recv)).await {
            Ok(Ok(req)) => match self.decide(&joiner, &req) {
                Ok(cert) => {
                    let statements = self.replica.lock().access().statements().cloned().collect();
                    *self.last_joined.lock().unwrap_or_else(|p| p.into_inner()) = Some(cert.clone());
                    self.joined.notify_waiters();
                    tracing::info!(device = %joiner.short(), name = %cert.name, "device paired");
                    JoinReply::Accepted { cert, statements }
                }
                Err(reason) => {
                    tracing::warn!(device = %joiner.short(), "pairing refused: {reason}");
                    JoinReply::Refused { reason }
                }
            },
            Ok(Err(e)) => JoinReply::Refused { reason: e.to_string() },
            Err(_) => JoinReply::Refused {
                reason: "no pairing request arrived in time".into(),
            },
        };
        let _ = write_json(&mut send, &reply).await;
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
        Ok(())
    }
}

async fn write_json<T: Serialize>(send: &mut iroh::endpoint::SendStream, v: &T) -> Result<()> {
    let body = postcard::to_stdvec(v).map_err(|e| Error::Io(e.to_string()))?;
    send.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .map_err(|e| Error::Network(e.to_string()))?;
    send.write_all(&body).await.map_err(|e| Error::Network(e.to_string()))?;
    Ok(())
}

async fn read_json<T: for<'de> Deserialize<'de>>(recv: &mut iroh::endpoint::RecvStream) -> Result<T> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len)
        .await
        .map_err(|e| Error::Network(format!("pairing message cut short: {e}")))?;
    let n = u32::from_be_bytes(len) as usize;
    if n > 1024 * 1024 {
        return Err(Error::Network("pairing message too large".into()));
    }
    let mut body = vec![0u8; n];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| Error::Network(format!("pairing message cut short: {e}")))?;
    postcard::from_bytes(&body).map_err(|_| Error::Network("malformed pairing message".into()))
}

/// Use a ticket: prove the secret to the issuer and receive this device's certificate and the
/// record's membership statements.
pub async fn join(
    ticket: &PairTicket,
    key: &KeyPair,
    device_name: &str,
    cfg: &NetConfig,
) -> Result<(DeviceCert, Vec<Statement>)> {
    if chrono::Utc::now().timestamp() > ticket.expires {
        return Err(Error::Ticket(
            "this pairing ticket has expired; ask for a new one".into(),
        ));
    }
    let endpoint = net::bind(key, cfg).await?;
    let result = async {
        let conn = net::connect(&endpoint, ticket.addr.clone(), PAIR_ALPN, cfg).await?;
        let issuer = PublicKey(*conn.remote_id().as_bytes());
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| Error::Network(e.to_string()))?;
        let req = JoinRequest {
            version: wire::VERSION,
            record: ticket.record,
            proof: ticket.proof(&key.public(), &issuer),
            device_name: device_name.to_string(),
        };
        write_json(&mut send, &req).await?;
        let _ = send.finish();
        let reply: JoinReply = read_json(&mut recv).await?;
        conn.close(0u32.into(), b"done");
        match reply {
            JoinReply::Accepted { cert, statements } => {
                if cert.device != key.public() || cert.record != ticket.record {
                    return Err(Error::Ticket("the issuer sent a certificate for someone else".into()));
                }
                cert.verify()?;
                Ok((cert, statements))
            }
            JoinReply::Refused { reason } => Err(Error::Ticket(reason)),
        }
    }
    .await;
    endpoint.close().await;
    result
}
