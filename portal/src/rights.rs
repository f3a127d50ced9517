//! What this home may show and change: everything on one of the patient's own devices; on a
//! caregiver's, school's or clinic's home, what its grant reads and the writes it allows.
//! The portal offers only these; the engine refuses anything else whoever asks.

use phr_engine::capability::{Right, Scope};
use phr_engine::{Device, Section};

/// The rights of the device serving the portal, read when a page is drawn.
#[derive(Debug, Clone)]
pub struct Rights {
    /// `None`: one of the patient's own devices (everything).
    scope: Option<Scope>,
    /// Whether this device holds the patient's root key (it may share, pair and revoke).
    owner: bool,
}

/// Sections the portal does not list: the activity log is a page of its own, later.
const UNLISTED: [Section; 1] = [Section::Audit];

impl Rights {
    /// The rights `device` holds now (a grant that expired or was revoked reads nothing).
    pub fn of(device: &Device) -> Rights {
        let now = chrono::Utc::now().timestamp();
        let scope = match device.access().credential(&device.device_id(), now) {
            Some(c) => c.scope().cloned(),
            None if device.has_root() => None,
            None => Some(Scope::new()),
        };
        Rights {
            scope,
            owner: device.has_root(),
        }
    }

    /// Whether this home may share the record, add and remove devices and take access away.
    pub fn shares(&self) -> bool {
        self.owner
    }

    /// Whether the activity log (the audit section) is shown.
    pub fn sees_activity(&self) -> bool {
        self.right(Section::Audit).is_some()
    }

    fn right(&self, s: Section) -> Option<Right> {
        match &self.scope {
            None => Some(Right::Write),
            Some(scope) => scope.get(&s).copied(),
        }
    }

    /// Whether this is one of the patient's own devices (not a grant holder's home).
    pub fn owns(&self) -> bool {
        self.scope.is_none()
    }

    /// Whether the portal shows `s`.
    pub fn reads(&self, s: Section) -> bool {
        !UNLISTED.contains(&s) && self.right(s).is_some()
    }

    /// The sections to list, in the record's order (the profile is the home page's).
    pub fn listed(&self) -> Vec<Section> {
        Section::ALL
            .into_iter()
            .filter(|s| *s != Section::Profile && self.reads(*s))
            .collect()
    }

    /// Whether new entries may be added to `s` with the full form.
    pub fn adds(&self, s: Section) -> bool {
        !matches!(s, Section::Profile | Section::Forms | Section::Audit) && self.right(s) == Some(Right::Write)
    }

    /// Whether only an appointment request may be added (`request` right).
    pub fn requests(&self, s: Section) -> bool {
        s == Section::Appointments && self.right(s) == Some(Right::Request)
    }

    /// Whether entries of `s` may be changed field by field (notes never are: they are amended).
    pub fn edits(&self, s: Section) -> bool {
        !matches!(s, Section::Notes | Section::Forms | Section::Audit) && self.right(s) == Some(Right::Write)
    }

    /// Whether session notes may be amended.
    pub fn amends(&self, s: Section) -> bool {
        s == Section::Notes && self.right(s) == Some(Right::Write)
    }

    /// Whether progress may be added to goals.
    pub fn logs_progress(&self, s: Section) -> bool {
        s == Section::Goals && matches!(self.right(s), Some(Right::Write | Right::Progress))
    }
}
