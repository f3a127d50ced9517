//! Pairing a new device by a one-time ticket (text or QR): the new device proves it holds
//! the ticket's secret, and a device holding the root key certifies it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::EndpointAddr;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::proof::proofs_match;
use super::replica::Replica;
use super::wire;
use crate::endpoint::{NetConfig, WaitingRoom, bind, connect};
use crate::request::{first_request, read_postcard, write_postcard};
use phr_model::access::{Credential, Statement};
use phr_model::crypto::random_bytes;
use phr_model::error::{Error, NetworkProblem, Refusal, Result, RootAction, TicketProblem, WhichTicket};
use phr_model::identity::{DeviceCert, KeyPair, PublicKey, RecordId};

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
    /// What joining gives: a place among the patient's devices, or a grant of access.
    pub kind: TicketKind,
}

/// What a ticket offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketKind {
    /// Become one of the patient's devices.
    Device,
    /// Receive scoped access (shown to the person joining; the issuer's copy is what counts).
    Share {
        /// Who it is for.
        label: String,
        /// Rights per section.
        scope: phr_model::capability::Scope,
        /// Void after (unix seconds).
        expires: Option<i64>,
    },
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
            .ok_or(Error::Ticket(TicketProblem::NotATicket(WhichTicket::Pairing)))?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::Ticket(TicketProblem::Damaged(WhichTicket::Pairing)))?;
        postcard::from_bytes(&bytes).map_err(|_| Error::Ticket(TicketProblem::Damaged(WhichTicket::Pairing)))
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
#[allow(clippy::large_enum_variant)] // sent once per pairing; boxing would only add noise
enum JoinReply {
    Accepted {
        credential: Credential,
        statements: Vec<Statement>,
    },
    Refused {
        reason: String,
    },
}

#[derive(Debug)]
struct Issued {
    ticket: PairTicket,
    grant: Option<phr_model::capability::Grant>,
    used: bool,
    /// Who joined with it, and when (unix seconds).
    joined: Option<(Credential, i64)>,
}

/// Accepts pairing requests for the tickets this device issued.
#[derive(Debug)]
pub struct PairHandler {
    replica: Arc<Replica>,
    issued: Mutex<Vec<Issued>>,
    joined: Notify,
    last_joined: Mutex<Option<Credential>>,
    /// Anyone may knock (a joiner is a device the record has never seen), so a bounded number
    /// of connections wait for their request at once.
    waiting: WaitingRoom,
}

impl PairHandler {
    pub(crate) fn new(replica: Arc<Replica>) -> Self {
        PairHandler {
            replica,
            issued: Mutex::new(Vec::new()),
            joined: Notify::new(),
            waiting: WaitingRoom::new("pairing", "its request"),
            last_joined: Mutex::new(None),
        }
    }

    /// Issue a one-time ticket valid for `ttl`, pointing at `addr`, for a new device of the
    /// patient. Needs the root key.
    pub fn issue(&self, addr: EndpointAddr, ttl: Duration) -> Result<PairTicket> {
        self.issue_ticket(addr, ttl, None)
    }

    /// Issue a one-time ticket that grants scoped access to whoever uses it. The grant's
    /// audience is filled in with the key of the device that joins. Needs the root key.
    pub fn share(&self, addr: EndpointAddr, ttl: Duration, grant: phr_model::capability::Grant) -> Result<PairTicket> {
        self.issue_ticket(addr, ttl, Some(grant))
    }

    fn issue_ticket(
        &self,
        addr: EndpointAddr,
        ttl: Duration,
        grant: Option<phr_model::capability::Grant>,
    ) -> Result<PairTicket> {
        if !self.replica.lock().has_root() {
            return Err(Error::NotAllowed(Refusal::NeedsRootKey(RootAction::AddDevices)));
        }
        let kind = match &grant {
            None => TicketKind::Device,
            Some(g) => TicketKind::Share {
                label: g.label.clone(),
                scope: g.scope.clone(),
                expires: g.expires,
            },
        };
        let ticket = PairTicket {
            record: self.replica.record_id(),
            addr,
            secret: random_bytes(),
            expires: phr_model::duration::expiry(chrono::Utc::now().timestamp(), ttl)?,
            kind,
        };
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).push(Issued {
            ticket: ticket.clone(),
            grant,
            used: false,
            joined: None,
        });
        Ok(ticket)
    }

    /// Who joined with `ticket` (one this handler issued), and when (unix seconds); `None`
    /// while it is unused.
    pub fn joined(&self, ticket: &PairTicket) -> Option<(Credential, i64)> {
        let issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued
            .iter()
            .find(|i| i.ticket.secret == ticket.secret)
            .and_then(|i| i.joined.clone())
    }

    /// Wait until someone joins with one of the issued tickets; returns their credential.
    pub async fn wait_joined(&self) -> Credential {
        loop {
            let notified = self.joined.notified();
            if let Some(c) = self.last_joined.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return c;
            }
            notified.await;
        }
    }

    fn decide(&self, joiner: &PublicKey, req: &JoinRequest) -> std::result::Result<Credential, String> {
        if req.version != wire::VERSION {
            return Err(format!("pairing version {} is not supported", req.version));
        }
        let me = self.replica.device_id();
        let now = chrono::Utc::now().timestamp();
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let slot = issued
            .iter_mut()
            .find(|i| i.ticket.record == req.record && proofs_match(&i.ticket.proof(joiner, &me), &req.proof))
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
        let root = self
            .replica
            .lock()
            .root()
            .ok_or("this device no longer holds the root key")?
            .clone();
        let (credential, event) = match &slot.grant {
            None => (
                Credential::Device(DeviceCert::issue(&root, *joiner, name, now)),
                (
                    "join",
                    format!("device `{name}` ({}) joined the record", joiner.short()),
                ),
            ),
            Some(g) => {
                let grant = phr_model::capability::Grant {
                    audience: *joiner,
                    ..g.clone()
                };
                let cap = phr_model::capability::Capability::issue_root(&root, grant).map_err(|e| e.to_string())?;
                let sections: Vec<String> = cap.scope.iter().map(|(s, r)| format!("{s}={r}")).collect();
                let detail = format!(
                    "granted `{}` ({}) access: {}{}",
                    cap.label,
                    joiner.short(),
                    sections.join(", "),
                    cap.expires
                        .and_then(|e| chrono::DateTime::from_timestamp(e, 0))
                        .map(|t| format!(", until {}", t.format("%Y-%m-%d")))
                        .unwrap_or_default()
                );
                (Credential::Capability(cap), ("grant", detail))
            }
        };
        let subject = match &credential {
            Credential::Capability(c) => hex::encode(c.id),
            Credential::Device(c) => c.device.to_string(),
        };
        self.replica
            .write(|r| r.audit(event.0, &event.1, Some(&subject), &[]))
            .map_err(|e| e.to_string())?;
        self.replica
            .lock()
            .merge_statements(vec![credential.statement()])
            .map_err(|e| e.to_string())?;
        slot.used = true;
        slot.joined = Some((credential.clone(), now));
        Ok(credential)
    }
}

/// Issuing tickets that point at one running endpoint: what a front end other than the
/// command line (the portal) needs to pair a device or share access, and to see them used.
#[derive(Debug, Clone)]
pub struct Inviter {
    pairing: Arc<PairHandler>,
    addr: EndpointAddr,
}

impl Inviter {
    /// Tickets of `pairing` pointing at `addr`.
    pub fn new(pairing: Arc<PairHandler>, addr: EndpointAddr) -> Inviter {
        Inviter { pairing, addr }
    }

    /// A one-time ticket for a new device of the patient, valid for `ttl`.
    pub fn device(&self, ttl: Duration) -> Result<PairTicket> {
        self.pairing.issue(self.addr.clone(), ttl)
    }

    /// A one-time ticket granting `grant` to whoever uses it, valid for `ttl`.
    pub fn share(&self, ttl: Duration, grant: phr_model::capability::Grant) -> Result<PairTicket> {
        self.pairing.share(self.addr.clone(), ttl, grant)
    }

    /// Who joined with `ticket`, and when.
    pub fn joined(&self, ticket: &PairTicket) -> Option<(Credential, i64)> {
        self.pairing.joined(ticket)
    }

    /// Wait for the next join with any ticket.
    pub async fn wait_joined(&self) -> Credential {
        self.pairing.wait_joined().await
    }
}

impl ProtocolHandler for PairHandler {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let joiner = PublicKey(*conn.remote_id().as_bytes());
        let Some((mut send, request)) = first_request::<JoinRequest>(&conn, &self.waiting).await? else {
            return Ok(());
        };
        let reply = match request {
            Some(Ok(req)) => match self.decide(&joiner, &req) {
                Ok(credential) => {
                    let statements = self.replica.lock().access().statements().cloned().collect();
                    *self.last_joined.lock().unwrap_or_else(|p| p.into_inner()) = Some(credential.clone());
                    self.joined.notify_waiters();
                    tracing::info!(device = %joiner.short(), name = %credential.name(), "joined");
                    JoinReply::Accepted { credential, statements }
                }
                Err(reason) => {
                    tracing::warn!(device = %joiner.short(), "pairing refused: {reason}");
                    JoinReply::Refused { reason }
                }
            },
            Some(Err(e)) => JoinReply::Refused { reason: e.to_string() },
            None => JoinReply::Refused {
                reason: "no pairing request arrived in time".into(),
            },
        };
        let _ = write_postcard(&mut send, &reply).await;
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
        Ok(())
    }
}

/// Use a device ticket: prove the secret and receive this device's certificate and the
/// record's membership statements.
pub async fn join(
    ticket: &PairTicket,
    key: &KeyPair,
    device_name: &str,
    cfg: &NetConfig,
) -> Result<(DeviceCert, Vec<Statement>)> {
    // Say so before using the ticket up: a share ticket is for `join_any`.
    if matches!(ticket.kind, TicketKind::Share { .. }) {
        return Err(Error::Ticket(TicketProblem::SharesAccess));
    }
    match join_any(ticket, key, device_name, cfg).await? {
        (Credential::Device(cert), statements) => Ok((cert, statements)),
        (Credential::Capability(_), _) => Err(Error::Ticket(TicketProblem::SharesAccess)),
    }
}

/// Use any ticket: prove the secret and receive a credential (a device certificate, or a
/// capability for a share ticket) and the record's membership statements.
pub async fn join_any(
    ticket: &PairTicket,
    key: &KeyPair,
    device_name: &str,
    cfg: &NetConfig,
) -> Result<(Credential, Vec<Statement>)> {
    if chrono::Utc::now().timestamp() > ticket.expires {
        return Err(Error::Ticket(TicketProblem::Expired(WhichTicket::Pairing)));
    }
    let endpoint = bind(key, cfg).await?;
    let result = async {
        let conn = connect(&endpoint, ticket.addr.clone(), PAIR_ALPN, cfg).await?;
        let issuer = PublicKey(*conn.remote_id().as_bytes());
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| Error::Network(NetworkProblem::Connection { cause: e.to_string() }))?;
        let req = JoinRequest {
            version: wire::VERSION,
            record: ticket.record,
            proof: ticket.proof(&key.public(), &issuer),
            device_name: device_name.to_string(),
        };
        write_postcard(&mut send, &req).await?;
        let _ = send.finish();
        let reply: JoinReply = read_postcard(&mut recv).await?;
        conn.close(0u32.into(), b"done");
        match reply {
            JoinReply::Accepted { credential, statements } => {
                if credential.holder() != key.public() || credential.record() != ticket.record {
                    return Err(Error::Ticket(TicketProblem::ForeignCredential));
                }
                credential.verify()?;
                Ok((credential, statements))
            }
            JoinReply::Refused { reason } => Err(Error::Ticket(TicketProblem::Refused { reason })),
        }
    }
    .await;
    endpoint.close().await;
    result
}
