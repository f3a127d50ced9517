//! `Encounter`: an appointment that happened (or is planned); not written (appointments go
//! out as `Appointment`s).

use chrono::{NaiveDateTime, NaiveTime};

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::vocab::*;

/// Encounter → an appointment: a visit that happened (or is planned), with its reason, length,
/// clinician and place.
pub(crate) fn encounter(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let Some(status) = status(&status_at)? else {
        return Ok(Skip("entered-in-error"));
    };
    let period = root.get("period")?;
    let start_at = period.get("start")?;
    let Some(start_text) = start_at.text()? else {
        return Ok(Skip("no date"));
    };
    let start = parse_when(&start_text).ok_or_else(|| start_at.fail(format!("`{start_text}` {BAD_DATE}")))?;
    let end_at = period.get("end")?;
    let end = match end_at.text()? {
        Some(t) => Some(parse_when(&t).ok_or_else(|| end_at.fail(format!("`{t}` {BAD_DATE}")))?),
        None => None,
    };
    let local = |w: When| w.datetime().unwrap_or_else(|| w.date.and_time(NaiveTime::MIN));
    let mut fields = Fields::new();
    fields.insert("status".into(), status.into());
    fields.insert("start".into(), format_datetime(local(start)).into());
    let span = match end {
        Some(end) => {
            let (s, e): (Option<NaiveDateTime>, Option<NaiveDateTime>) = match (start.offset, end.offset) {
                (Some(a), Some(b)) => (utc(local(start), a), utc(local(end), b)),
                _ => (Some(local(start)), Some(local(end))),
            };
            match s.zip(e) {
                Some((s, e)) if e < s => return Err(end_at.fail("is before period.start")),
                Some((s, e)) if e > s => Some((e - s).num_seconds() as f64 / 60.0),
                _ => None,
            }
        }
        None => None,
    };
    let length = root.get("length")?;
    let minutes = match span {
        Some(m) => Some(m),
        None => match (length.get("value")?.float()?, length.get("code")?.text()?) {
            (Some(v), Some(unit)) if unit == "h" => Some(v * 60.0),
            (Some(v), Some(unit)) if unit == "min" => Some(v),
            _ => None,
        },
    };
    if let Some(m) = minutes.filter(|m| *m > 0.0) {
        fields.insert("minutes".into(), json_number(m));
    }

    let types = root.get("type")?.items()?;
    let service = root.get("serviceType")?;
    let mut kinds = types.clone();
    kinds.push(service.clone());
    let kind_label = match labels(&root.get("type")?)?.into_iter().next() {
        Some(l) => Some(l),
        None => concept_label(&service)?,
    };
    let mut reasons = labels(&root.get("reasonCode")?)?;
    for r in root.get("reasonReference")?.items()? {
        reasons.extend(cx.name(&r)?);
    }
    let mut notes = Vec::new();
    let reason = if reasons.is_empty() {
        let class = root.get("class")?;
        match kind_label {
            Some(k) => k,
            None => match class.get("display")?.text()? {
                Some(d) => d,
                None => class.get("code")?.text()?.unwrap_or_else(|| "Visit".into()),
            },
        }
    } else {
        if let Some(k) = kind_label {
            notes.push(format!("Visit type: {k}."));
        }
        reasons.join("; ")
    };
    fields.insert("reason".into(), reason.into());
    if let Some(d) = pick_discipline(&[], &kinds)? {
        fields.insert("discipline".into(), d.into());
    }
    let mut people = Vec::new();
    for p in root.get("participant")?.items()? {
        people.push(p.get("individual")?);
    }
    put(&mut fields, "clinician", cx.person(&people)?);
    let mut place = None;
    for l in root.get("location")?.items()? {
        if place.is_none() {
            place = cx.name(&l.get("location")?)?;
        }
    }
    let place = match place {
        Some(p) => Some(p),
        None => cx.name(&root.get("serviceProvider")?)?,
    };
    put(&mut fields, "location", place);
    put(&mut fields, "notes", paragraphs(notes));
    Ok(Entry(Section::Appointments, fields))
}

/// The record's appointment status for an encounter's; `None` for one entered in error.
fn status(status_at: &At) -> Result<Option<&'static str>> {
    Ok(Some(match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(None),
        Some("planned") => "scheduled",
        Some("arrived" | "triaged" | "in-progress" | "onleave") => "confirmed",
        Some("finished" | "unknown") | None => "completed",
        Some("cancelled") => "cancelled",
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not an encounter status; R4 has planned, arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error, unknown"
            )));
        }
    }))
}
