//! Signed capability keys: who, besides the patient's own devices, may read or write which
//! sections of a record, until when, and whether they may pass a narrower grant on.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::crypto::random_bytes;
use crate::error::{Error, Forgery, Refusal, Result};
use crate::identity::{KeyPair, PublicKey, RecordId};
use crate::section::Section;

const CAPABILITY_DOMAIN: &[u8] = b"phr/capability/v1";
const REVOCATION_DOMAIN: &[u8] = b"phr/revocation/v1";
/// Longest delegation chain accepted (root grant plus this many re-grants).
pub const MAX_CHAIN: usize = 4;

/// What a holder may do with one section. Ordered: each right includes those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// See the section.
    Read,
    /// See it, and add dated progress to existing goals (goals only).
    Progress,
    /// See it, and add appointment requests (appointments only).
    Request,
    /// See it and change anything in it.
    Write,
}

impl Right {
    /// Whether `self` grants at least what `other` grants.
    pub fn covers(self, other: Right) -> bool {
        match (self, other) {
            (Right::Write, _) => true,
            (a, b) if a == b => true,
            (Right::Progress | Right::Request, Right::Read) => true,
            _ => false,
        }
    }

    /// Whether the right allows writing at all.
    pub fn writes(self) -> bool {
        self != Right::Read
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Right::Read => "read",
            Right::Progress => "progress",
            Right::Request => "request",
            Right::Write => "write",
        })
    }
}

impl FromStr for Right {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" | "r" => Ok(Right::Read),
            "progress" => Ok(Right::Progress),
            "request" => Ok(Right::Request),
            "write" | "w" => Ok(Right::Write),
            other => Err(Error::NotAllowed(Refusal::UnknownRight {
                given: other.to_string(),
            })),
        }
    }
}

/// Rights per section.
pub type Scope = BTreeMap<Section, Right>;

/// The people of a therapy practice, as starting points for a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// A parent, grandparent or sitter.
    Caregiver,
    /// A school team (IEP).
    School,
    /// A therapy clinic.
    Clinic,
}

impl FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "caregiver" => Ok(Preset::Caregiver),
            "school" => Ok(Preset::School),
            "clinic" => Ok(Preset::Clinic),
            other => Err(Error::NotAllowed(Refusal::UnknownPreset {
                given: other.to_string(),
            })),
        }
    }
}

impl Preset {
    /// The sections and rights the preset grants.
    pub fn scope(self) -> Scope {
        use Section::*;
        let mut s = Scope::new();
        match self {
            Preset::Caregiver => {
                for sec in Section::ALL {
                    if sec != Insurance {
                        s.insert(sec, Right::Read);
                    }
                }
                s.insert(CaregiverLog, Right::Write);
                s.insert(Messages, Right::Write);
                s.insert(Goals, Right::Progress);
                s.insert(Appointments, Right::Request);
            }
            Preset::School => {
                // The profile tells the school whose record it is: the child's name, date of
                // birth, school, guardians and their contacts (as the school already holds).
                // Immunizations only if the family adds them (`--sections`): a school may ask
                // for them, but the record does not offer them by default.
                for sec in [Profile, Goals, Notes, Documents] {
                    s.insert(sec, Right::Read);
                }
            }
            Preset::Clinic => {
                // What the clinic needs to know of the patient's chart, and what it records
                // itself: its sessions, its measurements, the procedures it does, its visits.
                for sec in [
                    Profile,
                    CareTeam,
                    Conditions,
                    Allergies,
                    Medications,
                    Immunizations,
                    Goals,
                    Documents,
                ] {
                    s.insert(sec, Right::Read);
                }
                for sec in [
                    Notes,
                    Labs,
                    Vitals,
                    Procedures,
                    Plans,
                    Appointments,
                    Encounters,
                    Forms,
                    Messages,
                ] {
                    s.insert(sec, Right::Write);
                }
            }
        }
        s
    }

    /// Default validity: schools' access always ends.
    pub fn default_days(self) -> Option<i64> {
        match self {
            Preset::School => Some(365),
            Preset::Caregiver | Preset::Clinic => None,
        }
    }
}

/// Parse `notes=write,goals=read` or `notes,goals` (read) into a scope.
pub fn parse_scope(text: &str) -> Result<Scope> {
    let mut s = Scope::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (sec, right) = match part.split_once('=') {
            Some((a, b)) => (a, b.parse()?),
            None => (part, Right::Read),
        };
        let sec: Section = sec.parse()?;
        check_right_fits(sec, right)?;
        s.insert(sec, right);
    }
    Ok(s)
}

fn check_right_fits(section: Section, right: Right) -> Result<()> {
    match right {
        Right::Progress if section != Section::Goals => Err(Error::NotAllowed(Refusal::RightOutOfPlace {
            right,
            only: Section::Goals,
        })),
        Right::Request if section != Section::Appointments => Err(Error::NotAllowed(Refusal::RightOutOfPlace {
            right,
            only: Section::Appointments,
        })),
        _ => Ok(()),
    }
}

/// A signed grant of access to a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// Unique id.
    pub id: [u8; 16],
    /// Record it opens.
    pub record: RecordId,
    /// Who signed it: the record's root key, or the holder of `parent`.
    pub issuer: PublicKey,
    /// Whose key it empowers.
    pub audience: PublicKey,
    /// Who the holder is, in words ("Grandma", "Lincoln Elementary IEP team").
    pub label: String,
    /// Rights per section; absent sections are invisible to the holder.
    pub scope: Scope,
    /// Whether the holder may grant narrower capabilities to others.
    pub delegate: bool,
    /// Unix seconds from which it is valid.
    pub not_before: i64,
    /// Unix seconds after which it is void.
    pub expires: Option<i64>,
    /// The capability this one was delegated from.
    #[serde(default, deserialize_with = "bounded_parent")]
    pub parent: Option<Box<Capability>>,
    /// Issuer's signature over everything above (the parent by its id and signature).
    #[serde(with = "crate::identity::hex_bytes")]
    pub signature: [u8; 64],
}

thread_local! {
    /// How many `parent` fields the capability being decoded on this thread is nested in.
    static PARENT_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Decode a `parent`, refusing a chain nested deeper than [`MAX_CHAIN`] allows: a hostile
/// encoding of thousands of nested parents would otherwise exhaust the stack (decoding, then
/// dropping) before [`Capability::check_chain`] could refuse it.
fn bounded_parent<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Box<Capability>>, D::Error> {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            PARENT_DEPTH.with(|n| n.set(n.get().saturating_sub(1)));
        }
    }
    let depth = PARENT_DEPTH.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let _leave = Leave;
    // The outermost grant's `parent` is depth 1; the root of a longest valid chain has its
    // (empty) `parent` at depth MAX_CHAIN + 1.
    if depth > MAX_CHAIN + 1 {
        return Err(serde::de::Error::custom(format!(
            "delegation chain longer than {MAX_CHAIN}"
        )));
    }
    Option::<Box<Capability>>::deserialize(d)
}

/// What to grant.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Holder's key.
    pub audience: PublicKey,
    /// Holder, in words.
    pub label: String,
    /// Rights.
    pub scope: Scope,
    /// May re-grant.
    pub delegate: bool,
    /// Valid from.
    pub not_before: i64,
    /// Void after.
    pub expires: Option<i64>,
}

impl Capability {
    /// Grant from the record's root key.
    pub fn issue_root(root: &KeyPair, grant: Grant) -> Result<Capability> {
        Self::issue(root, root.public(), None, grant)
    }

    /// Grant onwards from a capability the signer holds; may only narrow it.
    pub fn delegate(holder: &KeyPair, parent: &Capability, grant: Grant) -> Result<Capability> {
        if parent.audience != holder.public() {
            return Err(Error::NotAllowed(Refusal::NotHolder));
        }
        let cap = Self::issue(holder, parent.record, Some(Box::new(parent.clone())), grant)?;
        cap.check_chain()?;
        Ok(cap)
    }

    fn issue(signer: &KeyPair, record: RecordId, parent: Option<Box<Capability>>, grant: Grant) -> Result<Capability> {
        for (s, r) in &grant.scope {
            check_right_fits(*s, *r)?;
        }
        let mut cap = Capability {
            id: random_bytes(),
            record,
            issuer: signer.public(),
            audience: grant.audience,
            label: grant.label,
            scope: grant.scope,
            delegate: grant.delegate,
            not_before: grant.not_before,
            expires: grant.expires,
            parent,
            signature: [0; 64],
        };
        cap.signature = signer.sign(&cap.message());
        Ok(cap)
    }

    fn message(&self) -> Vec<u8> {
        let mut m = CAPABILITY_DOMAIN.to_vec();
        m.extend_from_slice(&self.id);
        m.extend_from_slice(&self.record.0);
        m.extend_from_slice(&self.issuer.0);
        m.extend_from_slice(&self.audience.0);
        m.extend_from_slice(&(self.label.len() as u32).to_le_bytes());
        m.extend_from_slice(self.label.as_bytes());
        for (s, r) in &self.scope {
            m.push(s.code());
            m.push(*r as u8);
        }
        m.push(0xff);
        m.push(u8::from(self.delegate));
        m.extend_from_slice(&self.not_before.to_le_bytes());
        m.extend_from_slice(&self.expires.unwrap_or(i64::MAX).to_le_bytes());
        match &self.parent {
            Some(p) => {
                m.push(1);
                m.extend_from_slice(&p.id);
                m.extend_from_slice(&p.signature);
            }
            None => m.push(0),
        }
        m
    }

    /// Check signatures and attenuation along the whole chain (not time or revocation).
    pub fn check_chain(&self) -> Result<()> {
        let mut depth = 0;
        let mut cur = self;
        let mut seen: Vec<[u8; 16]> = Vec::new();
        loop {
            depth += 1;
            if depth > MAX_CHAIN + 1 {
                return Err(Error::BadSignature(Forgery::ChainTooLong { max: MAX_CHAIN }));
            }
            // Every grant has its own id: a link reusing one above it would be revoked only
            // together with it, so refuse it outright.
            if seen.contains(&cur.id) {
                return Err(Error::BadSignature(Forgery::ReusedId));
            }
            seen.push(cur.id);
            cur.issuer.verify(&cur.message(), &cur.signature).map_err(|_| {
                Error::BadSignature(Forgery::Capability {
                    label: cur.label.clone(),
                })
            })?;
            for (s, r) in &cur.scope {
                check_right_fits(*s, *r)?;
            }
            match &cur.parent {
                None => {
                    if cur.issuer != cur.record {
                        return Err(Error::BadSignature(Forgery::NotFromOwner {
                            label: cur.label.clone(),
                        }));
                    }
                    return Ok(());
                }
                Some(p) => {
                    if p.record != cur.record {
                        return Err(Error::BadSignature(Forgery::ChangesRecord));
                    }
                    if p.audience != cur.issuer {
                        return Err(Error::BadSignature(Forgery::NotTheHolder));
                    }
                    if !p.delegate {
                        return Err(Error::BadSignature(Forgery::MayNotDelegate { label: p.label.clone() }));
                    }
                    for (s, r) in &cur.scope {
                        if !p.scope.get(s).is_some_and(|pr| pr.covers(*r)) {
                            return Err(Error::BadSignature(Forgery::Widens { section: *s, right: *r }));
                        }
                    }
                    if cur.not_before < p.not_before {
                        return Err(Error::BadSignature(Forgery::StartsEarly));
                    }
                    match (p.expires, cur.expires) {
                        (Some(pe), Some(ce)) if ce > pe => {
                            return Err(Error::BadSignature(Forgery::Outlives));
                        }
                        (Some(_), None) => {
                            return Err(Error::BadSignature(Forgery::Outlives));
                        }
                        _ => {}
                    }
                    cur = p;
                }
            }
        }
    }

    /// Every capability id in the chain, this one first.
    pub fn chain_ids(&self) -> Vec<[u8; 16]> {
        let mut out = vec![self.id];
        let mut cur = self;
        while let Some(p) = &cur.parent {
            out.push(p.id);
            cur = p;
        }
        out
    }

    /// Whether `t` (unix seconds) lies in the validity window.
    pub fn valid_at(&self, t: i64) -> bool {
        t >= self.not_before && self.expires.is_none_or(|e| t <= e)
    }

    /// Whether `t` lies in the validity window of this grant and of every grant above it.
    pub fn chain_valid_at(&self, t: i64) -> bool {
        let mut cur = Some(self);
        while let Some(c) = cur {
            if !c.valid_at(t) {
                return false;
            }
            cur = c.parent.as_deref();
        }
        true
    }

    /// The right granted on a section, if any.
    pub fn right(&self, section: Section) -> Option<Right> {
        self.scope.get(&section).copied()
    }

    /// Short id for display.
    pub fn short_id(&self) -> String {
        hex::encode(&self.id[..4])
    }

    /// Compact binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Text form (upper-case base32, QR-friendly): `PHRCAP1…`.
    pub fn to_text(&self) -> String {
        format!("PHRCAP1{}", data_encoding::BASE32_NOPAD.encode(&self.to_bytes()))
    }

    /// Read the text form; checks the chain like [`Capability::from_bytes`].
    pub fn from_text(text: &str) -> Result<Capability> {
        let body = text
            .trim()
            .strip_prefix("PHRCAP1")
            .ok_or(Error::BadSignature(Forgery::NotACapability))?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::BadSignature(Forgery::CapabilityText))?;
        Self::from_bytes(&bytes)
    }

    /// Read the binary form; checks the chain's signatures and attenuation.
    pub fn from_bytes(bytes: &[u8]) -> Result<Capability> {
        let cap: Capability = postcard::from_bytes(bytes).map_err(|_| Error::BadSignature(Forgery::CapabilityBytes))?;
        cap.check_chain()?;
        Ok(cap)
    }
}

/// The root's (or a grant's issuer's) statement that a capability is withdrawn.
///
/// `cutoff` names, per section, the last of the holder's changes that stays valid: the same
/// rule on every device, wherever the revocation arrives, so all replicas decide alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Record.
    pub record: RecordId,
    /// Capability withdrawn (and every capability delegated from it).
    pub capability: [u8; 16],
    /// Key that signed: the root, or the issuer of the capability.
    pub by: PublicKey,
    /// For each affected holder and section, the holder's last change that stays valid.
    pub cutoff: Vec<(PublicKey, Section, u64)>,
    /// Unix seconds.
    pub revoked_at: i64,
    /// Signature by `by`.
    #[serde(with = "crate::identity::hex_bytes")]
    pub signature: [u8; 64],
}

impl Revocation {
    /// Sign a revocation.
    pub fn issue(
        signer: &KeyPair,
        record: RecordId,
        capability: [u8; 16],
        cutoff: Vec<(PublicKey, Section, u64)>,
        revoked_at: i64,
    ) -> Revocation {
        let mut r = Revocation {
            record,
            capability,
            by: signer.public(),
            cutoff,
            revoked_at,
            signature: [0; 64],
        };
        r.signature = signer.sign(&r.message());
        r
    }

    fn message(&self) -> Vec<u8> {
        let mut m = REVOCATION_DOMAIN.to_vec();
        m.extend_from_slice(&self.record.0);
        m.extend_from_slice(&self.capability);
        m.extend_from_slice(&self.by.0);
        m.extend_from_slice(&self.revoked_at.to_le_bytes());
        for (k, s, seq) in &self.cutoff {
            m.extend_from_slice(&k.0);
            m.push(s.code());
            m.extend_from_slice(&seq.to_le_bytes());
        }
        m
    }

    /// The holder's last valid change of a section (0: none stays valid).
    pub fn cutoff_for(&self, holder: &PublicKey, section: Section) -> u64 {
        self.cutoff
            .iter()
            .find(|(k, s, _)| k == holder && *s == section)
            .map(|(_, _, n)| *n)
            .unwrap_or(0)
    }

    /// Check the signature (who may revoke is checked against the capability by the caller).
    pub fn verify(&self) -> Result<()> {
        self.by
            .verify(&self.message(), &self.signature)
            .map_err(|_| Error::BadSignature(Forgery::Revocation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(audience: PublicKey, scope: Scope, delegate: bool, expires: Option<i64>) -> Grant {
        Grant {
            audience,
            label: "test".into(),
            scope,
            delegate,
            not_before: 0,
            expires,
        }
    }

    #[test]
    fn a_root_grant_verifies_and_a_forged_one_does_not() {
        let root = KeyPair::generate();
        let gran = KeyPair::generate();
        let cap = Capability::issue_root(&root, grant(gran.public(), Preset::Caregiver.scope(), false, None)).unwrap();
        cap.check_chain().unwrap();
        assert_eq!(Capability::from_bytes(&cap.to_bytes()).unwrap(), cap);
        assert_eq!(Capability::from_text(&cap.to_text()).unwrap(), cap);
        assert!(Capability::from_text("PHRCAP1AAAA").is_err());
        let mut widened = cap.clone();
        widened.scope.insert(Section::Insurance, Right::Read);
        assert!(widened.check_chain().is_err());
        let stranger = KeyPair::generate();
        let mut fake =
            Capability::issue_root(&stranger, grant(gran.public(), Preset::Caregiver.scope(), false, None)).unwrap();
        fake.record = root.public();
        assert!(fake.check_chain().is_err());
    }

    #[test]
    fn delegation_can_only_narrow() {
        let root = KeyPair::generate();
        let clinic = KeyPair::generate();
        let therapist = KeyPair::generate();
        let cap =
            Capability::issue_root(&root, grant(clinic.public(), Preset::Clinic.scope(), true, Some(1000))).unwrap();
        let narrow: Scope = [(Section::Notes, Right::Write), (Section::Goals, Right::Read)].into();
        Capability::delegate(&clinic, &cap, grant(therapist.public(), narrow, false, Some(900)))
            .unwrap()
            .check_chain()
            .unwrap();
        let wider: Scope = [(Section::Insurance, Right::Read)].into();
        assert!(Capability::delegate(&clinic, &cap, grant(therapist.public(), wider, false, Some(900))).is_err());
        let upgrade: Scope = [(Section::Goals, Right::Write)].into();
        assert!(Capability::delegate(&clinic, &cap, grant(therapist.public(), upgrade, false, Some(900))).is_err());
        let longer: Scope = [(Section::Notes, Right::Write)].into();
        assert!(
            Capability::delegate(
                &clinic,
                &cap,
                grant(therapist.public(), longer.clone(), false, Some(2000))
            )
            .is_err()
        );
        assert!(Capability::delegate(&clinic, &cap, grant(therapist.public(), longer, false, None)).is_err());
        let no_delegate =
            Capability::issue_root(&root, grant(clinic.public(), Preset::Clinic.scope(), false, None)).unwrap();
        let small: Scope = [(Section::Notes, Right::Read)].into();
        assert!(Capability::delegate(&clinic, &no_delegate, grant(therapist.public(), small, false, None)).is_err());
    }

    #[test]
    fn scopes_parse_and_rights_fit_their_sections() {
        let s = parse_scope("notes=write, goals, appointments=request").unwrap();
        assert_eq!(s[&Section::Notes], Right::Write);
        assert_eq!(s[&Section::Goals], Right::Read);
        assert!(parse_scope("notes=progress").is_err());
        assert!(parse_scope("billing=read").is_err());
    }
}
