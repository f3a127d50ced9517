//! The pages' templates (askama: compiled into the binary, checked when it is built, every
//! value HTML-escaped) and the data each is drawn from. Every word comes through
//! [`Page::t`], from the messages of `i18n/`.

use askama::Template;

use crate::i18n::Messages;

pub mod access;

/// What every page has: its language, title, the navigation of a signed-in person and the
/// form token their forms carry.
pub struct Page {
    pub m: &'static Messages,
    pub lang: &'static str,
    pub title: String,
    pub signed_in: bool,
    pub csrf: String,
    pub nav: Vec<Link>,
    /// For a signed-in person: how long the session lasts without use (the warning's
    /// countdown, `static/idle.js`), and when it ends if nothing is done, in words.
    pub idle_seconds: u64,
    pub session_ends: String,
}

impl Page {
    /// A message without variables.
    pub fn t(&self, id: &str) -> String {
        self.m.get(id)
    }
}

/// A link (or button-like link) with its words.
pub struct Link {
    pub href: String,
    pub label: String,
    /// Whether it is the page being shown (navigation).
    pub current: bool,
}

/// A line of a list: what it is, a few more words, where it leads.
pub struct Line {
    pub href: String,
    pub title: String,
    pub detail: String,
}

/// A notice page: signed out, an error, a refused request.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub page: Page,
    pub text: String,
    pub link: Option<Link>,
}

/// One part of the home page.
pub struct HomeBlock {
    pub id: &'static str,
    pub heading: String,
    pub empty: String,
    pub lines: Vec<Line>,
    pub all_href: String,
}

/// The home page.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub page: Page,
    pub blocks: Vec<HomeBlock>,
    /// Documents, reports, import / export.
    pub places: Vec<Link>,
    /// Fields changed on two devices at once, to settle.
    pub conflicts: Option<Link>,
}

/// A section's entries.
#[derive(Template)]
#[template(path = "list.html")]
pub struct ListPage {
    pub page: Page,
    pub count: String,
    pub add: Option<Link>,
    pub rows: Vec<Line>,
}

/// A field of an entry as shown.
pub struct Shown {
    pub label: String,
    pub value: String,
}

/// A correction to a session note.
pub struct Amendment {
    pub text: String,
    pub reason: String,
    pub by: String,
}

/// A change in an entry's history.
pub struct Change {
    pub what: String,
    pub who: String,
    pub when: String,
}

/// A goal's own parts of its page.
pub struct GoalParts {
    /// The progress chart, an `<svg>` drawn by `phr-report` (its words escaped there).
    pub chart: Option<String>,
    pub milestones: Vec<Line>,
    /// Where the short "add progress" form posts, where this home may add progress.
    pub quick: Option<String>,
    pub today: String,
    pub unit: String,
}

/// One entry with its history.
#[derive(Template)]
#[template(path = "entry.html")]
pub struct EntryPage {
    pub page: Page,
    pub notice: Option<String>,
    pub actions: Vec<Link>,
    pub fields: Vec<Shown>,
    pub author: String,
    pub created: String,
    pub updated: String,
    pub amendments: Vec<Amendment>,
    pub progress: Vec<Line>,
    pub history: Vec<Change>,
    pub back: String,
    /// The attached file to download: its link and words (name, size, kind).
    pub file: Option<Line>,
    pub goal: Option<GoalParts>,
}

/// An option of a choice.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One input of a form, with its words and, after a refused save, its error.
pub struct Input {
    pub name: String,
    pub label: String,
    pub hint: String,
    pub required: bool,
    /// `text`, `date`, `datetime-local`, `textarea` or `select`.
    pub input: &'static str,
    pub inputmode: &'static str,
    pub value: String,
    pub options: Vec<Choice>,
    pub error: Option<String>,
    /// The ids of its hint and error, for `aria-describedby`.
    pub described_by: String,
}

/// A form: add, change, correct, record progress.
#[derive(Template)]
#[template(path = "form.html")]
pub struct FormPage {
    pub page: Page,
    pub intro: Option<String>,
    pub action: String,
    pub cancel: String,
    pub fields: Vec<Input>,
    pub general: Option<String>,
    pub has_errors: bool,
}

/// The way to export, shown above a form (the import / export page).
pub struct ExportForm {
    pub heading: String,
    pub text: String,
    pub action: String,
    pub button: String,
}

/// A form whose answer is a file to save (a report), or that sends one (a document, a FHIR
/// bundle: `upload`, sent as multipart with its progress shown where JavaScript runs).
#[derive(Template)]
#[template(path = "file_form.html")]
pub struct FilePage {
    pub page: Page,
    pub intro: Option<String>,
    pub action: String,
    pub cancel: String,
    pub fields: Vec<Input>,
    pub general: Option<String>,
    pub has_errors: bool,
    pub submit: String,
    pub upload: bool,
    pub export: Option<ExportForm>,
    pub form_heading: String,
}

/// A section's counts in an import's summary.
pub struct ImportRow {
    pub section: String,
    pub created: String,
    pub updated: String,
    pub unchanged: String,
}

/// What a FHIR import did (or would do).
#[derive(Template)]
#[template(path = "imported.html")]
pub struct ImportedPage {
    pub page: Page,
    pub outcome: String,
    pub about: String,
    pub rows: Vec<ImportRow>,
    pub kept: Option<String>,
    pub unmapped: Vec<Line>,
}

/// One value of a conflicting field, and who wrote it when.
pub struct Side {
    pub value: String,
    pub by: String,
}

/// A field changed on several devices at once.
pub struct ConflictShown {
    pub heading: String,
    /// The entry's page.
    pub href: String,
    pub section: String,
    pub entry: String,
    pub field: String,
    /// Whether this home may keep one of the values.
    pub may_pick: bool,
    pub sides: Vec<Side>,
}

/// The conflicts page.
#[derive(Template)]
#[template(path = "conflicts.html")]
pub struct ConflictsPage {
    pub page: Page,
    /// Why a choice was not kept.
    pub problem: Option<String>,
    pub conflicts: Vec<ConflictShown>,
}

/// The threads of messages, newest first, and the form to start one.
#[derive(Template)]
#[template(path = "threads.html")]
pub struct ThreadsPage {
    pub page: Page,
    pub rows: Vec<Line>,
    /// Whether this home may write messages.
    pub may_write: bool,
    /// The new thread's subject and first message.
    pub fields: Vec<Input>,
    pub has_errors: bool,
}

/// One message of a thread.
pub struct Said {
    pub from: String,
    pub when: String,
    pub body: String,
}

/// One thread's messages, oldest first, and the reply form.
#[derive(Template)]
#[template(path = "thread.html")]
pub struct ThreadPage {
    pub page: Page,
    pub said: Vec<Said>,
    pub action: String,
    pub reply: Option<Input>,
    pub has_errors: bool,
}
