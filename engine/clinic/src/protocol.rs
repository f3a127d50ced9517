//! Connecting a patient's record to a clinic: the clinic's invitation ticket, the node's
//! handler for `phr/clinic/1`, and the patient device's side, which grants the clinic
//! access and hands it the record's membership so the node starts hosting the record. The
//! grant becomes part of the record only once the node has accepted the invitation.

use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use serde::{Deserialize, Serialize};

use crate::host::Clinic;
pub use crate::ticket::ClinicTicket;
use phr_model::access::Statement;
use phr_model::capability::{Capability, Grant, Preset};
use phr_model::error::{Error, NetworkProblem, Result, TicketProblem, WhichTicket};
use phr_model::identity::{PublicKey, RecordId};
use phr_sync::endpoint::{self, NetConfig, WaitingRoom};
use phr_sync::replica::Replica;
use phr_sync::request::{first_request, read_postcard, write_postcard};
use phr_sync::wire;

/// ALPN of the clinic-connect protocol.
pub const CLINIC_ALPN: &[u8] = b"phr/clinic/1";

#[derive(Debug, Serialize, Deserialize)]
struct ConnectRequest {
    version: u32,
    record: RecordId,
    proof: [u8; 32],
    statements: Vec<Statement>,
}

#[derive(Debug, Serialize, Deserialize)]
enum ConnectReply {
    Accepted { clinic: String },
    Refused { reason: String },
}

/// The node's handler: takes in records of patients who use an invitation.
#[derive(Debug)]
pub struct ConnectHandler {
    clinic: Arc<Clinic>,
    /// Anyone may knock (an invitation is for a device the clinic has never seen), so a bounded
    /// number of connections wait for their request at once.
    waiting: WaitingRoom,
}

impl ConnectHandler {
    /// Serve invitations of `clinic`.
    pub fn new(clinic: Arc<Clinic>) -> Self {
        ConnectHandler {
            clinic,
            waiting: WaitingRoom::new("clinic", "its request"),
        }
    }
}

impl ProtocolHandler for ConnectHandler {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let device = PublicKey(*conn.remote_id().as_bytes());
        let Some((mut send, request)) = first_request::<ConnectRequest>(&conn, &self.waiting).await? else {
            return Ok(());
        };
        let reply = match request {
            Some(Ok(req)) if req.version != wire::VERSION => ConnectReply::Refused {
                reason: format!("protocol version {} is not supported", req.version),
            },
            Some(Ok(req)) => {
                let clinic = self.clinic.clone();
                let verdict = tokio::task::spawn_blocking(move || {
                    clinic.accept_patient(&device, req.record, &req.proof, req.statements)
                })
                .await
                .unwrap_or_else(|e| Err(format!("the clinic failed to take the record in: {e}")));
                match verdict {
                    Ok(()) => ConnectReply::Accepted {
                        clinic: self.clinic.name().to_string(),
                    },
                    Err(reason) => {
                        tracing::warn!(device = %device.short(), "clinic connection refused: {reason}");
                        ConnectReply::Refused { reason }
                    }
                }
            }
            Some(Err(e)) => ConnectReply::Refused { reason: e.to_string() },
            None => ConnectReply::Refused {
                reason: "no request arrived in time".into(),
            },
        };
        let _ = write_postcard(&mut send, &reply).await;
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
        Ok(())
    }
}

/// What connecting a record to a clinic did.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The clinic's name, as its node gives it.
    pub clinic: String,
    /// The clinic's grant in the record.
    pub grant: Capability,
    /// Whether the grant was made by this connection (else the record held it already).
    pub fresh: bool,
}

/// The clinic's grant to hand its node: a live, delegable grant the record already holds, or
/// a new one (the `clinic` preset, delegable so the clinic can vouch for its clinicians),
/// signed but not yet part of the record. Returns it and whether it is new.
fn clinic_grant(replica: &Replica, ticket: &ClinicTicket) -> Result<(Capability, bool)> {
    let device = replica.lock();
    let now = chrono::Utc::now().timestamp();
    let existing = device
        .access()
        .grants()
        .into_iter()
        .find(|(c, r)| c.audience == ticket.clinic && r.is_none() && c.delegate && c.chain_valid_at(now))
        .map(|(c, _)| c);
    if let Some(c) = existing {
        return Ok((c, false));
    }
    let cap = device.sign_grant(Grant {
        audience: ticket.clinic,
        label: ticket.name.clone(),
        scope: Preset::Clinic.scope(),
        delegate: true,
        not_before: now,
        expires: None,
    })?;
    Ok((cap, true))
}

/// Add a new clinic grant to the record, once the clinic has accepted the invitation, and
/// tell live peers.
fn keep_grant(replica: &Replica, clinic: &str, cap: &Capability) -> Result<()> {
    replica.lock().commit_grant(cap).map_err(|e| Error::GrantNotKept {
        clinic: clinic.to_string(),
        source: Box::new(e),
    })?;
    replica.publish_access(None, vec![Statement::Capability(cap.clone())]);
    Ok(())
}

/// The patient's side: grant the clinic access, prove the invitation over `endpoint` and hand
/// the clinic the record's membership with its grant. A new grant becomes part of the record
/// only once the clinic's node has accepted the invitation: a refused connection grants nothing.
pub async fn connect(
    endpoint: &iroh::Endpoint,
    replica: &Replica,
    ticket: &ClinicTicket,
    cfg: &NetConfig,
) -> Result<Connected> {
    if chrono::Utc::now().timestamp() > ticket.expires {
        return Err(Error::Ticket(TicketProblem::Expired(WhichTicket::ClinicInvitation)));
    }
    let (grant, fresh) = clinic_grant(replica, ticket)?;
    let (record, me, mut statements) = {
        let d = replica.lock();
        (
            d.record().id(),
            d.device_id(),
            d.access().statements().cloned().collect::<Vec<_>>(),
        )
    };
    if fresh {
        statements.push(Statement::Capability(grant.clone()));
    }
    let conn = endpoint::connect(endpoint, ticket.addr.clone(), CLINIC_ALPN, cfg).await?;
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| Error::Network(NetworkProblem::Connection { cause: e.to_string() }))?;
    let req = ConnectRequest {
        version: wire::VERSION,
        record,
        proof: ClinicTicket::proof_for(&ticket.secret, &me, &ticket.clinic, &record),
        statements,
    };
    write_postcard(&mut send, &req).await?;
    let _ = send.finish();
    let reply: ConnectReply = read_postcard(&mut recv).await?;
    conn.close(0u32.into(), b"done");
    let clinic = match reply {
        ConnectReply::Accepted { clinic } => clinic,
        ConnectReply::Refused { reason } => return Err(Error::Ticket(TicketProblem::Refused { reason })),
    };
    if fresh {
        keep_grant(replica, &clinic, &grant)?;
    }
    Ok(Connected { clinic, grant, fresh })
}
