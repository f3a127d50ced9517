//! The templates of who may see the record: sharing, devices, the activity log, and the
//! confirmations before a sensitive act.

use askama::Template;

use super::{Choice, Link, Page};

/// Someone with access (a grant holder, a device), as listed.
pub struct Holder {
    pub title: String,
    pub detail: String,
    /// More lines (the sections shared).
    pub lines: Vec<String>,
    /// What can be done about it (take access away, remove).
    pub act: Option<Link>,
}

/// Who has access: the people the record is shared with, or the patient's devices.
#[derive(Template)]
#[template(path = "sharing.html")]
pub struct SharingPage {
    pub page: Page,
    pub intro: String,
    pub add: Option<Link>,
    pub heading: String,
    pub empty: String,
    pub rows: Vec<Holder>,
}

/// A ticket offered: its QR code and text, and whether it was used.
#[derive(Template)]
#[template(path = "offer.html")]
pub struct OfferPage {
    pub page: Page,
    pub status: String,
    /// Whether it can still be used (the code is shown).
    pub open: bool,
    pub how: String,
    pub qr: String,
    pub qr_alt: String,
    pub ticket_heading: String,
    pub ticket_hint: String,
    pub ticket: String,
    pub back: Link,
}

/// A sensitive act, said in words, with its button.
#[derive(Template)]
#[template(path = "act.html")]
pub struct ActPage {
    pub page: Page,
    pub lines: Vec<String>,
    pub action: String,
    pub button: String,
    /// Whether it takes something away (the button says so by its look too).
    pub danger: bool,
    pub cancel: String,
}

/// One event of the activity log.
pub struct Event {
    pub what: String,
    pub when: String,
    pub who: String,
    pub detail: String,
}

/// The activity log, with its filters.
#[derive(Template)]
#[template(path = "activity.html")]
pub struct ActivityPage {
    pub page: Page,
    pub who: Vec<Choice>,
    pub what: Vec<Choice>,
    pub count: String,
    pub events: Vec<Event>,
}
