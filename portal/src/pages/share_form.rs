//! `/sharing/new`: share the record with a caregiver, a school or a clinic: who it is for, a
//! starting point (the preset), the sections to adjust and how long it lasts. Saving makes a
//! one-time ticket (shown as a QR code by `offer`), as `phr share` does.

use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use phr_engine::Section;
use phr_engine::capability::{Grant, Preset, Right, Scope};

use crate::confirm::Confirmed;
use crate::error::Error;
use crate::forms::Submitted;
use crate::guard::{self, SignedIn};
use crate::offers::TICKET_LASTS;
use crate::people;
use crate::server::{App, html};
use crate::templates::{Choice, FormPage, Input};

const PRESETS: [&str; 3] = ["caregiver", "school", "clinic"];

/// The longest a share may last, in days (as `phr share --expires`).
const MAX_DAYS: u64 = 3650;

/// `GET /sharing/new`.
pub async fn form(State(app): State<Arc<App>>, Confirmed(who): Confirmed) -> Response {
    app.blocking(move |app| draw(app, &who, &Submitted(Vec::new()), Problems::default(), StatusCode::OK))
        .await
}

/// `POST /sharing/new`: the share's ticket, or the form with what to fix.
pub async fn create(
    State(app): State<Arc<App>>,
    Confirmed(who): Confirmed,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    let sent = Submitted(sent);
    if let Some(r) = guard::without_token(&app, &who, &sent) {
        return r;
    }
    app.blocking(move |app| {
        if let Err(refusal) = super::sharing::owner_only(app) {
            return Ok(*refusal);
        }
        let grant = match grant_of(app, &sent) {
            Ok(g) => g,
            Err(problems) => return draw(app, &who, &sent, problems, StatusCode::UNPROCESSABLE_ENTITY),
        };
        super::offer::make(app, |i| i.share(TICKET_LASTS, grant))
    })
    .await
}

/// What is wrong with a sent form, field by field.
#[derive(Default)]
struct Problems {
    label: Option<String>,
    preset: Option<String>,
    days: Option<String>,
    general: Option<String>,
}

impl Problems {
    fn any(&self) -> bool {
        self.label.is_some() || self.preset.is_some() || self.days.is_some() || self.general.is_some()
    }
}

/// The grant a sent form asks for (its holder's key is filled in when it is used).
fn grant_of(app: &App, sent: &Submitted) -> Result<Grant, Problems> {
    let mut problems = Problems::default();
    let label = sent.get("label").unwrap_or_default().trim().to_string();
    if label.is_empty() || label.chars().count() > 100 {
        problems.label = Some(app.m.get("share-label-needed"));
    }
    let preset = sent.get("preset").and_then(|p| p.parse::<Preset>().ok());
    if preset.is_none() {
        problems.preset = Some(app.m.get("share-preset-needed"));
    }
    let days = match sent.get("days").map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match d.parse::<u64>() {
            Ok(n) if (1..=MAX_DAYS).contains(&n) => Some(n),
            _ => {
                problems.days = Some(app.m.get("share-days-range"));
                None
            }
        },
    };
    let Some(preset) = preset else { return Err(problems) };
    let scope = scope_of(preset, sent);
    if scope.is_empty() {
        problems.general = Some(app.m.get("share-nothing"));
    }
    if problems.any() {
        return Err(problems);
    }
    let now = chrono::Utc::now().timestamp();
    let days = days.or(preset.default_days().map(|d| d.unsigned_abs()));
    let expires = days
        .map(|d| phr_engine::duration::expiry(now, Duration::from_secs(d * 86_400)))
        .transpose()
        .map_err(|e| Problems {
            days: Some(people::text(&e.to_string())),
            ..Problems::default()
        })?;
    Ok(Grant {
        audience: phr_engine::KeyPair::generate().public(),
        label,
        scope,
        delegate: false,
        not_before: now,
        expires,
    })
}

/// The preset's sections, changed where the form says: `right-SECTION` is `none`, a right
/// that fits the section, or empty (as the preset says).
fn scope_of(preset: Preset, sent: &Submitted) -> Scope {
    let mut scope = preset.scope();
    for s in Section::ALL {
        match sent.get(&format!("right-{}", s.name())) {
            Some("none") => {
                scope.remove(&s);
            }
            Some(r) => {
                if let Some(right) = r.parse::<Right>().ok().filter(|r| rights_for(s).contains(r)) {
                    scope.insert(s, right);
                }
            }
            None => {}
        }
    }
    scope
}

/// The rights that fit section `s`.
fn rights_for(s: Section) -> Vec<Right> {
    let mut r = vec![Right::Read];
    match s {
        Section::Goals => r.push(Right::Progress),
        Section::Appointments => r.push(Right::Request),
        _ => {}
    }
    r.push(Right::Write);
    r
}

/// The form, filled with what was sent, and its problems.
fn draw(
    app: &App,
    who: &SignedIn,
    sent: &Submitted,
    problems: Problems,
    status: StatusCode,
) -> Result<Response, Error> {
    let rights = match super::sharing::owner_only(app) {
        Ok(r) => r,
        Err(refusal) => return Ok(*refusal),
    };
    let has_errors = problems.any();
    let mut fields = vec![
        input(app, "label", "text", sent, problems.label),
        Input {
            options: PRESETS
                .iter()
                .map(|p| choice(app, sent, "preset", p, &format!("share-preset-{p}")))
                .collect(),
            ..input(app, "preset", "select", sent, problems.preset)
        },
        Input {
            inputmode: "numeric",
            ..input(app, "days", "text", sent, problems.days)
        },
    ];
    fields.extend(Section::ALL.into_iter().map(|s| section_input(app, sent, s)));
    let p = FormPage {
        page: super::page(app, Some(who), Some(&rights), app.m.get("share-title"), ""),
        intro: Some(app.m.get("share-intro")),
        action: "/sharing/new".into(),
        cancel: "/sharing".into(),
        fields,
        general: problems.general,
        has_errors,
    };
    html(status, &p)
}

/// One input of the form (`share-NAME` its label, `share-NAME.hint` its help).
fn input(app: &App, name: &str, kind: &'static str, sent: &Submitted, error: Option<String>) -> Input {
    let mut described_by = vec![format!("h-{name}")];
    if error.is_some() {
        described_by.push(format!("e-{name}"));
    }
    Input {
        name: name.into(),
        label: app.m.get(&format!("share-{name}")),
        hint: app.m.get(&format!("share-{name}.hint")),
        required: name != "days",
        input: kind,
        inputmode: "",
        value: sent.get(name).unwrap_or_default().to_string(),
        options: Vec::new(),
        error,
        described_by: described_by.join(" "),
    }
}

/// An option of a select, selected if it was sent.
fn choice(app: &App, sent: &Submitted, name: &str, value: &str, label: &str) -> Choice {
    Choice {
        value: value.into(),
        label: app.m.get(label),
        selected: sent.get(name) == Some(value),
    }
}

/// What one section's holder may do: as the preset says, not shared, or a right that fits.
fn section_input(app: &App, sent: &Submitted, s: Section) -> Input {
    let name = format!("right-{}", s.name());
    let mut options = vec![choice(app, sent, &name, "none", "share-right-none")];
    options.extend(
        rights_for(s)
            .into_iter()
            .map(|r| choice(app, sent, &name, &r.to_string(), &format!("share-right-{r}"))),
    );
    Input {
        label: people::section(app.m, s),
        hint: String::new(),
        required: false,
        input: "select",
        inputmode: "",
        value: sent.get(&name).unwrap_or_default().to_string(),
        options,
        error: None,
        described_by: String::new(),
        name,
    }
}
