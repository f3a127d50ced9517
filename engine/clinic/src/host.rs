//! A clinic hosting patients' records: its name, the clinicians it vouches for, the
//! invitations patients accept, and writing into a hosted record as a named clinician.
//!
//! A clinic holds, per record, a capability the patient granted it (the `clinic` preset,
//! delegable). Each clinician has a key of their own, kept sealed in the clinic's store; the
//! first time a clinician writes into a record the clinic delegates its grant to that key,
//! so every change names the clinician who made it and every patient device can check the
//! chain patient → clinic → clinician. Removing a clinician revokes those delegations with
//! a cutoff: what they wrote stays valid, nothing after.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ticket::ClinicTicket;
use phr_model::access::{AccessSet, Statement};
use phr_model::capability::{Capability, Grant, Revocation, Scope};
use phr_model::crypto::{KdfParams, random_bytes};
use phr_model::error::{Damage, Error, Refusal, Result, Stored};
use phr_model::identity::{KeyPair, PublicKey, RecordId};
use phr_model::record::Record;
use phr_model::section::Section;
use phr_store::library::Library;
use phr_sync::LibraryHost;
use phr_sync::proof::proofs_match;

const CLINIC_NAME: &str = "clinic_name";
const STAFF_PREFIX: &str = "staff/";
const INVITE_PREFIX: &str = "invite/";
/// The fewest characters of a record id that name a hosted record (64 bits of it).
pub const MIN_RECORD_PREFIX: usize = 16;
/// `delegated/<clinician>/<record>`: which records hold a grant to a clinician, so removing
/// one revokes exactly those without loading every record.
const DELEGATED_PREFIX: &str = "delegated/";

/// A clinician (or other staff member) the clinic vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    /// Their signing key: every change they write carries it.
    pub key: PublicKey,
    /// Name as patients see it.
    pub name: String,
    /// Role or discipline ("SLP", "BCBA", "front desk").
    pub role: String,
    /// Sections they may write, within the clinic's grant (empty: all the clinic may write).
    pub sections: Vec<Section>,
    /// When they were added (unix seconds).
    pub added: i64,
    /// When they were removed, if they were.
    pub removed: Option<i64>,
}

impl StaffMember {
    /// How the clinician is named in a patient's record.
    pub fn label(&self, clinic: &str) -> String {
        if self.role.is_empty() {
            format!("{} — {clinic}", self.name)
        } else {
            format!("{}, {} — {clinic}", self.name, self.role)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StaffSecret {
    member: StaffMember,
    secret: [u8; 32],
}

/// An invitation to connect a record to the clinic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Short id, for listing and withdrawing.
    pub id: String,
    /// Secret the patient's device proves it holds.
    secret: [u8; 16],
    /// Unix seconds after which it is void.
    pub expires: i64,
    /// How many more patients may use it (`None`: any number until it expires).
    pub uses_left: Option<u32>,
    /// Who it was made for, if said.
    pub label: Option<String>,
}

/// A record the clinic hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostedRecord {
    /// The record (the patient's root key).
    pub record: RecordId,
    /// The patient's name, once their profile has arrived.
    pub name: Option<String>,
    /// When the patient connected (RFC 3339).
    pub added: Option<String>,
}

/// A clinic: a library of hosted records plus its staff and invitations.
pub struct Clinic {
    host: Arc<LibraryHost>,
    key: PublicKey,
    name: String,
    staff: Mutex<BTreeMap<PublicKey, (StaffMember, KeyPair)>>,
}

impl std::fmt::Debug for Clinic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clinic").field("name", &self.name).finish()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Clinic {
    /// Create a clinic's store with a new identity.
    pub fn create(path: &Path, passphrase: &str, name: &str, kdf: KdfParams) -> Result<Clinic> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(Error::NotAllowed(Refusal::NameLength {
                what: "the clinic's name",
                max: 200,
            }));
        }
        let library = Library::create(path, passphrase, KeyPair::generate(), kdf)?;
        library.store().put_secret(CLINIC_NAME, name.as_bytes())?;
        Ok(Clinic {
            key: library.key().public(),
            host: LibraryHost::new(library),
            name: name.to_string(),
            staff: Mutex::new(BTreeMap::new()),
        })
    }

    /// Open a clinic's store.
    pub fn open(path: &Path, passphrase: &str) -> Result<Clinic> {
        let library = Library::open(path, passphrase)?;
        let name = library
            .store()
            .secret(CLINIC_NAME)?
            .and_then(|n| String::from_utf8(n).ok())
            .ok_or(Error::NoClinic)?;
        let mut staff = BTreeMap::new();
        for (_, raw) in library.store().secrets_with_prefix(STAFF_PREFIX)? {
            let s: StaffSecret =
                postcard::from_bytes(&raw).map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::StaffMember)))?;
            staff.insert(s.member.key, (s.member, KeyPair::from_secret(s.secret)));
        }
        Ok(Clinic {
            key: library.key().public(),
            host: LibraryHost::new(library),
            name,
            staff: Mutex::new(staff),
        })
    }

    /// The clinic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The clinic's key (its node's identity).
    pub fn key(&self) -> PublicKey {
        self.key
    }

    /// The hosted records, for sync sessions.
    pub fn host(&self) -> &Arc<LibraryHost> {
        &self.host
    }

    fn staff_lock(&self) -> MutexGuard<'_, BTreeMap<PublicKey, (StaffMember, KeyPair)>> {
        self.staff.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save_staff(&self, member: &StaffMember, key: &KeyPair) -> Result<()> {
        let raw = postcard::to_stdvec(&StaffSecret {
            member: member.clone(),
            secret: key.secret_bytes(),
        })
        .map_err(|_| Error::internal("a staff secret would not encode"))?;
        self.host
            .lock()
            .store()
            .put_secret(&format!("{STAFF_PREFIX}{}", member.key), &raw)
    }

    /// Vouch for a new clinician: give them a key the clinic keeps and writes with for them.
    pub fn add_staff(&self, name: &str, role: &str, sections: Vec<Section>) -> Result<StaffMember> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(Error::NotAllowed(Refusal::NameLength {
                what: "a staff member's name",
                max: 100,
            }));
        }
        if self
            .staff_lock()
            .values()
            .any(|(m, _)| m.removed.is_none() && m.name.eq_ignore_ascii_case(name))
        {
            return Err(Error::NotAllowed(Refusal::StaffNameTaken { name: name.to_string() }));
        }
        let writable = phr_model::capability::Preset::Clinic.scope();
        for s in &sections {
            if !writable.get(s).is_some_and(|r| r.writes()) {
                return Err(Error::NotAllowed(Refusal::ClinicCannotWrite {
                    section: *s,
                    writable: writable.iter().filter(|(_, r)| r.writes()).map(|(s, _)| *s).collect(),
                }));
            }
        }
        let key = KeyPair::generate();
        let member = StaffMember {
            key: key.public(),
            name: name.to_string(),
            role: role.trim().to_string(),
            sections,
            added: now(),
            removed: None,
        };
        self.save_staff(&member, &key)?;
        self.staff_lock().insert(member.key, (member.clone(), key));
        tracing::info!(staff = %member.name, key = %member.key.short(), "staff member added");
        Ok(member)
    }

    /// Every staff member, current and removed.
    pub fn staff(&self) -> Vec<StaffMember> {
        let mut all: Vec<StaffMember> = self.staff_lock().values().map(|(m, _)| m.clone()).collect();
        all.sort_by(|a, b| (a.removed.is_some(), &a.name).cmp(&(b.removed.is_some(), &b.name)));
        all
    }

    /// A current staff member by exact name (ASCII letter case aside; names are unique that
    /// way) or full key. Never by a prefix: a stray letter must not sign as somebody.
    pub fn find_staff(&self, who: &str) -> Result<StaffMember> {
        let who = who.trim();
        let key = who.parse::<PublicKey>().ok();
        let staff = self.staff_lock();
        staff
            .values()
            .map(|(m, _)| m)
            .filter(|m| m.removed.is_none())
            .find(|m| m.name.eq_ignore_ascii_case(who) || Some(m.key) == key)
            .cloned()
            .ok_or_else(|| Error::NoSuchStaff {
                given: phr_model::error::shown(who),
            })
    }

    /// Remove a clinician: what they wrote stays valid; from now on every patient device
    /// refuses their changes. Returns them and how many records' grants were revoked.
    pub fn remove_staff(&self, who: &str) -> Result<(StaffMember, usize)> {
        let member = self.find_staff(who)?;
        let prefix = format!("{DELEGATED_PREFIX}{}/", member.key);
        let records: Vec<RecordId> = {
            let lib = self.host.lock();
            lib.store()
                .secrets_with_prefix(&prefix)?
                .into_iter()
                .filter_map(|(name, _)| name.strip_prefix(&prefix).and_then(|r| r.parse().ok()))
                .collect()
        };
        let mut revoked = 0;
        for record in records {
            let statements = {
                let mut lib = self.host.lock();
                let key = lib.key().clone();
                let loaded = lib.get(&record)?;
                let grants: Vec<Capability> = loaded
                    .access
                    .grants()
                    .into_iter()
                    .filter(|(c, r)| c.audience == member.key && c.issuer == key.public() && r.is_none())
                    .map(|(c, _)| c)
                    .collect();
                let mut out = Vec::new();
                for cap in grants {
                    let cutoff = Section::SYNCED
                        .iter()
                        .map(|s| {
                            let seq = loaded.record.clock(*s).get(&member.key).map(|(n, _)| *n).unwrap_or(0);
                            (member.key, *s, seq)
                        })
                        .collect();
                    out.push(Statement::Revocation(Revocation::issue(
                        &key,
                        record,
                        cap.id,
                        cutoff,
                        now(),
                    )));
                }
                let me = key.public();
                lib.merge(&record, &me, out.clone())?;
                out
            };
            if !statements.is_empty() {
                revoked += 1;
                self.host.publish_access(None, record, statements);
            }
        }
        let mut removed = member.clone();
        removed.removed = Some(now());
        let key = self
            .staff_lock()
            .get(&member.key)
            .map(|(_, k)| k.clone())
            .ok_or_else(|| Error::internal("a staff member went missing"))?;
        self.save_staff(&removed, &key)?;
        self.staff_lock().insert(removed.key, (removed.clone(), key));
        tracing::info!(staff = %removed.name, records = revoked, "staff member removed");
        Ok((removed, revoked))
    }

    /// Make an invitation for patients to connect their record, reachable at `addr`; returns
    /// its id (for listing and withdrawing) and the ticket.
    pub fn invite(
        &self,
        addr: iroh::EndpointAddr,
        ttl: Duration,
        uses: Option<u32>,
        label: Option<String>,
    ) -> Result<(String, ClinicTicket)> {
        let invite = Invite {
            id: hex::encode(random_bytes::<4>()),
            secret: random_bytes(),
            expires: phr_model::duration::expiry(now(), ttl)?,
            uses_left: uses,
            label,
        };
        self.save_invite(&invite)?;
        let ticket = ClinicTicket {
            clinic: self.key(),
            name: self.name.clone(),
            addr,
            secret: invite.secret,
            expires: invite.expires,
        };
        Ok((invite.id, ticket))
    }

    /// Withdraw an invitation nobody has used up yet (a ticket handed to the wrong person, a
    /// poster taken down): its secret is forgotten, so no device can prove it any more.
    pub fn withdraw_invite(&self, id: &str) -> Result<Invite> {
        let name = format!("{INVITE_PREFIX}{id}");
        let lib = self.host.lock();
        let raw = lib
            .store()
            .secret(&name)?
            .ok_or_else(|| Error::NotAllowed(Refusal::NoSuchInvite { id: id.to_string() }))?;
        let invite: Invite =
            postcard::from_bytes(&raw).map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::Invitation)))?;
        lib.store().delete_secret(&name)?;
        tracing::info!(invite = %invite.id, "invitation withdrawn");
        Ok(invite)
    }

    fn save_invite(&self, invite: &Invite) -> Result<()> {
        let raw = postcard::to_stdvec(invite).map_err(|_| Error::internal("an invitation would not encode"))?;
        self.host
            .lock()
            .store()
            .put_secret(&format!("{INVITE_PREFIX}{}", invite.id), &raw)
    }

    /// Invitations still usable.
    pub fn invites(&self) -> Result<Vec<Invite>> {
        let raw = self.host.lock().store().secrets_with_prefix(INVITE_PREFIX)?;
        let mut out = Vec::new();
        for (_, v) in raw {
            let i: Invite =
                postcard::from_bytes(&v).map_err(|_| Error::Corrupt(Damage::Unreadable(Stored::Invitation)))?;
            if i.expires >= now() && i.uses_left != Some(0) {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Take in a patient's record: the device proved an invitation's secret and brought the
    /// record's membership, which must grant this clinic access and certify the device.
    pub(crate) fn accept_patient(
        &self,
        device: &PublicKey,
        record: RecordId,
        proof: &[u8; 32],
        statements: Vec<Statement>,
    ) -> std::result::Result<(), String> {
        let me = self.key();
        let raw = self
            .host
            .lock()
            .store()
            .secrets_with_prefix(INVITE_PREFIX)
            .map_err(|e| e.to_string())?;
        let mut invite = raw
            .into_iter()
            .filter_map(|(_, v)| postcard::from_bytes::<Invite>(&v).ok())
            .find(|i| proofs_match(&ClinicTicket::proof_for(&i.secret, device, &me, &record), proof))
            .ok_or("the invitation is not one this clinic holds: forged, for another clinic, or withdrawn")?;
        if invite.expires < now() {
            return Err("this invitation has expired; ask the clinic for a new one".into());
        }
        if invite.uses_left == Some(0) {
            return Err("this invitation was already used; ask the clinic for a new one".into());
        }
        // Check what the patient brought before storing anything.
        let mut access = AccessSet::default();
        for st in phr_model::access::in_order(statements.clone()) {
            access.insert(&record, st).map_err(|e| e.to_string())?;
        }
        if !matches!(
            access.credential(device, now()),
            Some(phr_model::access::Credential::Device(_))
        ) {
            return Err("the connecting device is not one of the record's own devices".into());
        }
        if self.clinic_grant(&access).is_none() {
            return Err(format!(
                "the record grants `{}` no delegable access; connect with `phr clinic connect`",
                self.name
            ));
        }
        {
            let mut lib = self.host.lock();
            let held = lib.holds(&record).map_err(|e| e.to_string())?;
            if held {
                lib.merge(&record, device, statements).map_err(|e| e.to_string())?;
            } else {
                lib.add_record(record, statements).map_err(|e| e.to_string())?;
            }
        }
        if let Some(n) = invite.uses_left.as_mut() {
            *n -= 1;
        }
        self.save_invite(&invite).map_err(|e| e.to_string())?;
        tracing::info!(record = %record.short(), device = %device.short(), invite = %invite.id, "patient connected");
        Ok(())
    }

    /// The clinic's live, delegable grant in a record's membership.
    fn clinic_grant(&self, access: &AccessSet) -> Option<Capability> {
        let me = self.key();
        let t = now();
        access
            .grants()
            .into_iter()
            .filter(|(c, r)| c.audience == me && r.is_none() && c.delegate && c.chain_valid_at(t))
            .map(|(c, _)| c)
            .max_by_key(|c| c.scope.len())
    }

    /// Every hosted record, with the patient's name where known.
    pub fn patients(&self) -> Result<Vec<HostedRecord>> {
        let lib = self.host.lock();
        let mut out = Vec::new();
        for (record, info) in lib.store().records()? {
            let info: serde_json::Value = serde_json::from_slice(&info).unwrap_or_default();
            out.push(HostedRecord {
                record,
                name: info.get("name").and_then(|v| v.as_str()).map(str::to_string),
                added: info.get("added").and_then(|v| v.as_str()).map(str::to_string),
            });
        }
        Ok(out)
    }

    /// A hosted record by its full id, or by a prefix of at least [`MIN_RECORD_PREFIX`]
    /// characters that no other hosted record shares. Shorter prefixes are refused: one
    /// character must never be enough to write into somebody's record.
    pub fn resolve_record(&self, id: &str) -> Result<RecordId> {
        let id = id.trim().to_ascii_lowercase();
        let given = || phr_model::error::shown(&id);
        if !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::NoSuchRecord { given: given() });
        }
        if id.len() < MIN_RECORD_PREFIX {
            return Err(Error::RecordIdTooShort {
                given: given(),
                min: MIN_RECORD_PREFIX,
            });
        }
        if let Ok(full) = id.parse::<RecordId>() {
            let held = self.host.lock().holds(&full)?;
            return if held {
                Ok(full)
            } else {
                Err(Error::NoSuchRecord { given: given() })
            };
        }
        let all = self.host.lock().records()?;
        let mut found = all.into_iter().filter(|r| r.to_string().starts_with(&id));
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(one),
            (None, _) => Err(Error::NoSuchRecord { given: given() }),
            (Some(_), Some(_)) => Err(Error::AmbiguousRecord { given: given() }),
        }
    }

    /// Read a hosted record.
    pub fn read<T>(&self, record: &RecordId, f: impl FnOnce(&Record, &AccessSet) -> Result<T>) -> Result<T> {
        let mut lib = self.host.lock();
        let loaded = lib.get(record)?;
        f(&loaded.record, &loaded.access)
    }

    /// Write into a hosted record as a clinician (or, with `None`, as the clinic itself),
    /// durably, and push the changes to connected devices of the patient.
    pub fn write<T>(
        &self,
        record: &RecordId,
        staff: Option<&PublicKey>,
        edit: impl FnOnce(&mut Record) -> Result<T>,
    ) -> Result<T> {
        let (author, label, scope, fresh) = self.credentials_for(record, staff)?;
        if let Some(st) = fresh {
            // Patient devices must hold the clinician's grant before the first change it signs.
            self.host.publish_access(None, *record, vec![st]);
        }
        self.host.write_as(record, &author, (label, scope), edit)
    }

    /// The key, label and scope to write with, delegating the clinic's grant to the
    /// clinician in this record first if needed (returned, to announce).
    fn credentials_for(
        &self,
        record: &RecordId,
        staff: Option<&PublicKey>,
    ) -> Result<(KeyPair, String, Scope, Option<Statement>)> {
        let (member, key) = match staff {
            Some(s) => {
                let staff = self.staff_lock();
                let (m, k) = staff
                    .get(s)
                    .ok_or_else(|| Error::NotAllowed(Refusal::NotStaff { key: s.short() }))?;
                if m.removed.is_some() {
                    return Err(Error::NotAllowed(Refusal::StaffRemoved { name: m.name.clone() }));
                }
                (Some(m.clone()), k.clone())
            }
            None => (None, self.host.lock().key().clone()),
        };
        let mut lib = self.host.lock();
        let me = lib.key().clone();
        let loaded = lib.get(record)?;
        let grant = self.clinic_grant(&loaded.access).ok_or_else(|| {
            Error::NotAllowed(Refusal::NoClinicAccess {
                record: record.short(),
                clinic: self.name.clone(),
            })
        })?;
        let Some(member) = member else {
            return Ok((key, grant.label.clone(), grant.scope, None));
        };
        let t = now();
        let existing = loaded
            .access
            .grants()
            .into_iter()
            .filter(|(c, r)| c.audience == member.key && r.is_none() && c.chain_valid_at(t))
            .map(|(c, _)| c)
            .max_by_key(|c| c.scope.len());
        if let Some(c) = existing {
            return Ok((key, c.label.clone(), c.scope, None));
        }
        let scope: Scope = grant
            .scope
            .iter()
            .filter(|(s, r)| member.sections.is_empty() || member.sections.contains(s) || !r.writes())
            .map(|(s, r)| (*s, *r))
            .collect();
        let label = member.label(&self.name);
        let cap = Capability::delegate(
            &me,
            &grant,
            Grant {
                audience: member.key,
                label: label.clone(),
                scope: scope.clone(),
                delegate: false,
                not_before: grant.not_before,
                expires: grant.expires,
            },
        )?;
        let st = Statement::Capability(cap);
        lib.merge(record, &me.public(), vec![st.clone()])?;
        lib.store()
            .put_secret(&format!("{DELEGATED_PREFIX}{}/{record}", member.key), &[])?;
        Ok((key, label, scope, Some(st)))
    }
}
