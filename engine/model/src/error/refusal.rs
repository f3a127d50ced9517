//! Why the record's rules refused an operation (`Error::NotAllowed`): one kind per rule, with the
//! values it concerns. The engine words each as a plain statement of what the rule is; the
//! binaries add what a person can do about it.

use crate::capability::Right;
use crate::section::Section;

/// What a root key is needed for (`Refusal::NeedsRootKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootAction {
    /// Pair a new device or share access through a ticket.
    AddDevices,
    /// Export the recovery kit.
    ExportRecoveryKit,
    /// Remove one of the record's devices.
    RemoveDevices,
    /// Grant access to someone.
    ShareAccess,
    /// Revoke a grant.
    RevokeAccess,
}

/// A refusal by the record's (or the clinic's) rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Nobody writes the audit log; phr keeps it.
    #[error("the audit log is written by phr itself")]
    AuditLogIsKept,
    /// A grant's limits do not cover the change.
    #[error("the access granted to `{label}` does not allow that in {section}; it may write: {}", writable_list(.writable))]
    OutsideGrant {
        /// The grant's label.
        label: String,
        /// Section of the change.
        section: Section,
        /// Sections the grant may write, with their rights.
        writable: Vec<(Section, Right)>,
    },
    /// A grant's limits do not allow attaching files to the section.
    #[error("the access granted to `{label}` does not allow attaching files to {section}")]
    AttachOutsideGrant {
        /// The grant's label.
        label: String,
        /// Section of the entry.
        section: Section,
    },
    /// The record has its patient profile already; it is edited, not added again.
    #[error("the record already has its patient profile; it can be edited, not added again")]
    ProfileExists,
    /// Clinical notes are never rewritten; corrections are amendments.
    #[error("clinical notes are never rewritten: a correction is added as an amendment")]
    NoteRewrite,
    /// A note pushed again with an id the record already holds.
    #[error("note {id} is already in the record and notes are never rewritten")]
    NoteExists {
        /// The note's id.
        id: String,
    },
    /// A field phr keeps itself.
    #[error("`{field}` is kept by phr and cannot be set")]
    KeptField {
        /// The field given.
        field: String,
    },
    /// A choice between concurrent values of a field that has none.
    #[error(
        "`{field}` of {section} entry {id} was not changed on several devices at once: there is nothing to choose between"
    )]
    NoConflict {
        /// Section of the entry.
        section: Section,
        /// The entry.
        id: String,
        /// The field named.
        field: String,
    },
    /// A word that names no right.
    #[error("`{given}` is not a right: use read, write, progress (goals) or request (appointments)")]
    UnknownRight {
        /// What was given.
        given: String,
    },
    /// A word that names no preset.
    #[error("`{given}` is not a preset: use caregiver, school or clinic")]
    UnknownPreset {
        /// What was given.
        given: String,
    },
    /// A word that names no report audience.
    #[error("`{given}` is not a report audience: use iep, specialist or insurer")]
    UnknownAudience {
        /// What was given.
        given: String,
    },
    /// A right that exists in one section only, asked for in another.
    #[error("the {right} right exists only for {only}")]
    RightOutOfPlace {
        /// The right.
        right: Right,
        /// The one section it exists in.
        only: Section,
    },
    /// Only a capability's holder may delegate it.
    #[error("only the holder of a capability can delegate it")]
    NotHolder,
    /// An action that needs the patient's root key, on a device without it.
    #[error("{}", root_action(*.0))]
    NeedsRootKey(RootAction),
    /// A device asked to remove itself.
    #[error("a device cannot remove itself")]
    RemoveSelf,
    /// A device that is not one of the record's.
    #[error("device {device} is not part of this record")]
    NotOurDevice {
        /// The device's short key.
        device: String,
    },
    /// No grant has this id.
    #[error("no grant matches `{given}`")]
    NoSuchGrant {
        /// The id prefix given.
        given: String,
    },
    /// An id prefix that matches several grants.
    #[error("`{given}` matches several grants; give more of the id")]
    AmbiguousGrant {
        /// The id prefix given.
        given: String,
    },
    /// A clinic or staff name of the wrong length.
    #[error("{what} must be 1 to {max} characters")]
    NameLength {
        /// Whose name: "the clinic's name" or "a staff member's name".
        what: &'static str,
        /// The most characters allowed.
        max: usize,
    },
    /// A staff name already in use.
    #[error("`{name}` is already on the staff list; names must be unique so notes are attributable")]
    StaffNameTaken {
        /// The name.
        name: String,
    },
    /// A section a clinic's staff may not be given.
    #[error("a clinic may not write {section}; staff sections must be among: {}", section_list(.writable))]
    ClinicCannotWrite {
        /// The section asked for.
        section: Section,
        /// The sections a clinic may write.
        writable: Vec<Section>,
    },
    /// No invitation has this id.
    #[error("no invitation `{id}`")]
    NoSuchInvite {
        /// The id given.
        id: String,
    },
    /// A key that is not on the clinic's staff.
    #[error("{key} is not on this clinic's staff")]
    NotStaff {
        /// The short key.
        key: String,
    },
    /// A staff member who was removed.
    #[error("`{name}` was removed from the staff")]
    StaffRemoved {
        /// The member's name.
        name: String,
    },
    /// A patient who revoked (or never granted) the clinic's access.
    #[error("patient {record} has revoked or not granted `{clinic}` access")]
    NoClinicAccess {
        /// The record's short id.
        record: String,
        /// The clinic's name.
        clinic: String,
    },
    /// A record that has not granted this node access.
    #[error("record {record} has not granted this node access")]
    NotGranted {
        /// The record's short id.
        record: String,
    },
    /// A record this node does not hold.
    #[error("this node does not hold record {record}")]
    NotHeld {
        /// The record's short id.
        record: String,
    },
    /// A batch from a peer that reached into another record.
    #[error("a batch for record {record} reached another record")]
    ForeignBatch {
        /// The record's short id.
        record: String,
    },
}

fn root_action(action: RootAction) -> &'static str {
    match action {
        RootAction::AddDevices => "only a device holding the patient's root key can add devices or share access",
        RootAction::ExportRecoveryKit => {
            "this device does not hold the patient's root key, so it cannot export a recovery kit"
        }
        RootAction::RemoveDevices => "only a device holding the patient's root key can remove devices",
        RootAction::ShareAccess => "only a device holding the patient's root key can share access",
        RootAction::RevokeAccess => "only a device holding the patient's root key can revoke access",
    }
}

fn writable_list(writable: &[(Section, Right)]) -> String {
    if writable.is_empty() {
        return "nothing".to_string();
    }
    let shown: Vec<String> = writable
        .iter()
        .map(|(s, r)| match r {
            Right::Write => s.to_string(),
            other => format!("{s} ({other})"),
        })
        .collect();
    shown.join(", ")
}

fn section_list(sections: &[Section]) -> String {
    sections.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
}
