//! A clinic's invitation, as the clinic's node makes it and a patient's device reads it (text
//! for a QR code), and the proof a device that holds one sends.

use iroh::EndpointAddr;
use serde::{Deserialize, Serialize};

use phr_model::error::{Error, Result, TicketProblem, WhichTicket};
use phr_model::identity::{PublicKey, RecordId};

const TICKET_PREFIX: &str = "PHRCLINIC1";

/// A clinic's invitation: whom to call, under which name, and a secret to prove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicTicket {
    /// The clinic node's key.
    pub clinic: PublicKey,
    /// The clinic's name, shown to the patient before granting anything.
    pub name: String,
    /// Where the node listens.
    pub addr: EndpointAddr,
    /// Invitation secret.
    pub secret: [u8; 16],
    /// Unix seconds after which the invitation is void.
    pub expires: i64,
}

impl ClinicTicket {
    /// Text form (upper-case base32, compact in a QR code).
    pub fn to_text(&self) -> String {
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        format!("{TICKET_PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes))
    }

    /// Read a ticket from its text form.
    pub fn parse(text: &str) -> Result<ClinicTicket> {
        let damaged = || Error::Ticket(TicketProblem::Damaged(WhichTicket::ClinicInvitation));
        let body = text
            .trim()
            .strip_prefix(TICKET_PREFIX)
            .ok_or(Error::Ticket(TicketProblem::NotATicket(WhichTicket::ClinicInvitation)))?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| damaged())?;
        let t: ClinicTicket = postcard::from_bytes(&bytes).map_err(|_| damaged())?;
        if *t.addr.id.as_bytes() != t.clinic.0 {
            return Err(damaged());
        }
        Ok(t)
    }

    /// The proof a device gives that it holds an invitation's secret, bound to the device,
    /// the clinic and the record, so it cannot be replayed for anything else.
    pub(crate) fn proof_for(secret: &[u8; 16], device: &PublicKey, clinic: &PublicKey, record: &RecordId) -> [u8; 32] {
        let key = blake3::derive_key("phr clinic invitation v1", secret);
        let mut msg = device.0.to_vec();
        msg.extend_from_slice(&clinic.0);
        msg.extend_from_slice(&record.0);
        *blake3::keyed_hash(&key, &msg).as_bytes()
    }
}
