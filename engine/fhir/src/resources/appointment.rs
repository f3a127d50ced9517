//! `Appointment`: an appointment and its status, both ways.

use chrono::TimeDelta;
use serde_json::{Map, Value, json};

use phr_model::entry;
use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;
use crate::vocab::*;

/// An appointment from an `Appointment`.
pub fn appointment_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["Appointment"])?;
    let mut fields = Fields::new();
    let mut notes = Vec::new();

    let status_at = root.get("status")?;
    let fhir_status = status_at
        .text()?
        .ok_or_else(|| status_at.fail("is missing: FHIR requires an appointment status"))?;
    let status = appointment_status_from_fhir(&fhir_status).ok_or_else(|| {
        status_at.fail(format!(
            "`{fhir_status}` is not an appointment status; FHIR R4 has {}",
            FHIR_APPOINTMENT_STATUSES.join(", ")
        ))
    })?;
    fields.insert("status".into(), status.into());
    match fhir_status.as_str() {
        "noshow" => notes.push("No-show.".to_string()),
        "entered-in-error" => notes.push("Entered in error.".to_string()),
        _ => {}
    }

    let description = root.get("description")?.text()?;
    let mut reason = None;
    for concept in root.get("reasonCode")?.items()? {
        if reason.is_none() {
            reason = concept_label(&concept)?;
        }
    }
    for condition in root.get("reasonReference")?.items()? {
        if reason.is_none() {
            reason = condition.get("display")?.text()?;
        }
    }
    match (&reason, &description) {
        (Some(r), Some(d)) if r != d => notes.push(d.clone()),
        (None, Some(_)) => reason = description.clone(),
        _ => {}
    }
    let service_type = root.get("serviceType")?.items()?;
    let specialty = root.get("specialty")?.items()?;
    // Without a stated reason, the kind of visit is the best description of it.
    let mut kinds = service_type.clone();
    kinds.push(root.get("appointmentType")?);
    for concept in &kinds {
        if reason.is_none() {
            reason = concept_label(concept)?;
        }
    }
    let reason = reason.ok_or_else(|| {
        fhir_error(
            format!("{}.reasonCode", root.path),
            "is missing, and so is description: an appointment needs its reason",
        )
    })?;
    fields.insert("reason".into(), reason.into());

    read_times(&root, &mut fields)?;

    for participant in root.get("participant")?.items()? {
        let actor = participant.get("actor")?;
        let Some(display) = actor.get("display")?.text()? else {
            continue;
        };
        match reference_type(&actor)?.as_deref() {
            Some("Practitioner" | "PractitionerRole") if !fields.contains_key("clinician") => {
                fields.insert("clinician".into(), display.into());
            }
            Some("Location") if !fields.contains_key("location") => {
                fields.insert("location".into(), display.into());
            }
            _ => {}
        }
    }

    if let Some(discipline) = pick_discipline(&[specialty, service_type].concat(), &[])? {
        fields.insert("discipline".into(), discipline.into());
    }

    for key in ["comment", "patientInstruction"] {
        if let Some(text) = root.get(key)?.text()? {
            notes.push(text);
        }
    }
    if !notes.is_empty() {
        fields.insert("notes".into(), notes.join("\n\n").into());
    }
    entry::validate(Section::Appointments, &fields)
}

/// An appointment's start (else the start it requested) and its length in minutes (given,
/// else from its end).
fn read_times(root: &At, fields: &mut Fields) -> Result<()> {
    let start_at = root.get("start")?;
    // A request may have no start yet, only the period the patient asked for.
    let requested_start = match root.get("requestedPeriod")?.items()?.first() {
        Some(period) => datetime_at(&period.get("start")?)?,
        None => None,
    };
    let (start, start_offset) = match datetime_at(&start_at)? {
        Some(found) => found,
        None => requested_start.ok_or_else(|| {
            start_at.fail("is missing (and there is no requestedPeriod.start): an appointment needs its time")
        })?,
    };
    fields.insert("start".into(), format_datetime(start).into());

    // `end` is checked even when minutesDuration is given, so a broken resource is refused.
    let end_at = root.get("end")?;
    let span = match datetime_at(&end_at)? {
        Some((end, end_offset)) => {
            let span = match (start_offset, end_offset) {
                (Some(a), Some(b)) => utc(end, b).zip(utc(start, a)).map(|(e, s)| e - s),
                _ => Some(end - start),
            };
            if span.is_some_and(|d| d < TimeDelta::zero()) {
                return Err(end_at.fail("is before start"));
            }
            // An end at the start says nothing about the length (phr writes one so when it
            // does not know it; see `write_times`).
            span.filter(|d| *d > TimeDelta::zero())
        }
        None => None,
    };
    let duration = root.get("minutesDuration")?;
    let minutes = match duration.float()? {
        Some(m) if m <= 0.0 => {
            return Err(duration.fail(format!("must be a positive number of minutes, not {m}")));
        }
        Some(m) => Some(m),
        None => span.map(|d| d.num_seconds() as f64 / 60.0),
    };
    if let Some(minutes) = minutes {
        fields.insert("minutes".into(), json_number(minutes));
    }
    Ok(())
}

/// An appointment as an `Appointment`: the patient (`patient`, a Reference) is its first
/// participant, `start` and `end` are instants with `zone`'s offset (see [`Zone`]).
pub fn appointment_to_fhir(id: &str, fields: &Map<String, Value>, patient: &Value, zone: Zone) -> Value {
    let mut appt = base("Appointment", id, fields);
    let status = text_field(fields, "status").unwrap_or("requested");
    appt.insert(
        "status".into(),
        appointment_status_to_fhir(status).unwrap_or("proposed").into(),
    );
    if let Some(discipline) = text_field(fields, "discipline") {
        appt.insert(
            "serviceType".into(),
            json!([{ "text": discipline_display(discipline) }]),
        );
    }
    if let Some(reason) = text_field(fields, "reason") {
        appt.insert("description".into(), reason.into());
    }
    write_times(&mut appt, fields, zone);
    if let Some(notes) = text_field(fields, "notes") {
        appt.insert("comment".into(), notes.into());
    }
    // Acceptance is the participants' side of the status: a request (FHIR `proposed`: nobody
    // has finalized it yet) still needs their answer; any other status was agreed on.
    let participant_status = if status == "requested" {
        "needs-action"
    } else {
        "accepted"
    };
    // FHIR requires at least one participant; the patient always is one.
    let mut participants = vec![json!({ "actor": patient, "status": participant_status })];
    if let Some(clinician) = text_field(fields, "clinician") {
        participants
            .push(json!({ "actor": { "type": "Practitioner", "display": clinician }, "status": participant_status }));
    }
    if let Some(location) = text_field(fields, "location") {
        participants
            .push(json!({ "actor": { "type": "Location", "display": location }, "status": participant_status }));
    }
    appt.insert("participant".into(), Value::Array(participants));
    Value::Object(appt)
}

/// `start`, `end` and `minutesDuration`. The record keeps the start as a wall-clock time (an
/// appointment imported from a date-only Encounter was kept at 00:00 of its day, see
/// encounter.rs); it goes out as that time in `zone`, since an instant cannot say "that day".
/// FHIR wants both start and end or neither (app-2), and only a proposed or cancelled
/// appointment may have neither (app-3); so when phr does not know the length, `end` is the
/// start and there is no `minutesDuration`: a length of zero, which phr reads back as unknown,
/// rather than a length phr would invent.
fn write_times(appt: &mut Map<String, Value>, fields: &Map<String, Value>, zone: Zone) {
    let Some(start) = text_field(fields, "start")
        .and_then(parse_when)
        .and_then(When::datetime)
    else {
        return;
    };
    let minutes = fields.get("minutes").and_then(Value::as_f64).filter(|m| *m > 0.0);
    let end = minutes.and_then(|m| {
        TimeDelta::try_milliseconds((m * 60_000.0).round() as i64).and_then(|d| start.checked_add_signed(d))
    });
    appt.insert("start".into(), zone.instant(start).into());
    appt.insert("end".into(), zone.instant(end.unwrap_or(start)).into());
    if let Some(m) = minutes.filter(|m| m.fract() == 0.0) {
        appt.insert("minutesDuration".into(), json_number(m));
    }
}

pub(crate) const FHIR_APPOINTMENT_STATUSES: &[&str] = &[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
];

/// FHIR appointment status to the record's. `pending` (some participants have yet to accept)
/// is `scheduled`, which is also what `scheduled` goes out as, so statuses round-trip.
pub(crate) fn appointment_status_from_fhir(status: &str) -> Option<&'static str> {
    match status {
        "proposed" | "waitlist" => Some("requested"),
        "pending" => Some("scheduled"),
        "booked" => Some("confirmed"),
        "arrived" | "checked-in" | "fulfilled" => Some("completed"),
        "cancelled" | "noshow" | "entered-in-error" => Some("cancelled"),
        _ => None,
    }
}

pub(crate) fn appointment_status_to_fhir(status: &str) -> Option<&'static str> {
    match status {
        "requested" => Some("proposed"),
        "scheduled" => Some("pending"),
        "confirmed" => Some("booked"),
        "cancelled" => Some("cancelled"),
        "completed" => Some("fulfilled"),
        _ => None,
    }
}

/// An Appointment of a bundle, read as a clinic's is.
pub(crate) fn read(_: &At, cx: &Cx) -> Result<Mapping> {
    Ok(Mapping::Checked(Section::Appointments, appointment_from_fhir(cx.res)?))
}

pub(crate) fn write(out: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    appointment_to_fhir(id, fields, out.patient, out.zone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    use phr_model::entry;

    use phr_model::section::Section;
    use serde_json::json;
    // ----- appointments -----------------------------------------------------------------------

    #[test]
    fn an_ehr_appointment_becomes_an_entry() {
        let appt = appointment_from_fhir(&ehr_appointment()).unwrap();
        assert_eq!(appt["status"], "confirmed");
        assert_eq!(appt["reason"], "Articulation disorder");
        assert_eq!(appt["start"], "2024-03-12T15:30:00", "wall-clock time as written");
        assert_eq!(appt["minutes"], 45.0);
        assert_eq!(appt["clinician"], "Jamie Ames");
        assert_eq!(appt["location"], "Room 2");
        assert_eq!(appt["discipline"], "speech");
        assert_eq!(appt["notes"], "Follow-up speech session\n\nBring home-practice sheet.");
    }

    #[test]
    fn appointment_statuses_map_both_ways() {
        let from = [
            ("proposed", "requested"),
            ("waitlist", "requested"),
            ("pending", "scheduled"),
            ("booked", "confirmed"),
            ("arrived", "completed"),
            ("checked-in", "completed"),
            ("fulfilled", "completed"),
            ("cancelled", "cancelled"),
            ("noshow", "cancelled"),
            ("entered-in-error", "cancelled"),
        ];
        let allowed = choices(Section::Appointments, "status");
        for (fhir, ours) in from {
            let mut res = ehr_appointment();
            res["status"] = fhir.into();
            assert_eq!(appointment_from_fhir(&res).unwrap()["status"], ours, "{fhir}");
            assert!(allowed.contains(&ours));
        }
        assert_eq!(FHIR_APPOINTMENT_STATUSES.len(), from.len());
        let mut res = ehr_appointment();
        res["status"] = "noshow".into();
        assert!(
            appointment_from_fhir(&res).unwrap()["notes"]
                .as_str()
                .unwrap()
                .starts_with("No-show.")
        );
        for ours in allowed {
            let fhir = appointment_status_to_fhir(ours).unwrap();
            assert_eq!(
                appointment_status_from_fhir(fhir),
                Some(*ours),
                "{ours} must round-trip"
            );
        }
    }

    #[test]
    fn appointments_round_trip() {
        let statuses = choices(Section::Appointments, "status");
        for (i, status) in statuses.iter().enumerate() {
            let original = entry::validate(
                Section::Appointments,
                &fields(json!({
                    "reason": "OT evaluation",
                    "start": "2024-07-01T09:00:00",
                    "minutes": if i % 2 == 0 { json!(60) } else { json!(30.5) },
                    "status": status,
                    "discipline": "occupational",
                    "clinician": "R. Chen",
                    "location": "Main St clinic",
                    "notes": "Wear comfortable clothes."
                })),
            )
            .unwrap();
            let res = appointment_to_fhir("a-1", &original, &patient(), Zone::UTC);
            assert_eq!(appointment_from_fhir(&res).unwrap(), original, "{res:#}");
        }
        let bare = entry::validate(
            Section::Appointments,
            &fields(json!({ "reason": "Check-up", "start": "2024-07-01T09:00:00" })),
        )
        .unwrap();
        let res = appointment_to_fhir("a-2", &bare, &patient(), Zone::UTC);
        assert_eq!(appointment_from_fhir(&res).unwrap(), bare, "{res:#}");
    }

    fn patient() -> Value {
        json!({ "reference": "urn:uuid:the-patient" })
    }

    #[test]
    fn an_appointment_goes_out_at_its_wall_clock_time_in_the_writers_zone_with_the_patient() {
        let appt = entry::validate(
            Section::Appointments,
            &fields(
                json!({ "reason": "OT evaluation", "start": "2024-07-01T09:00:00", "minutes": 45,
                "status": "confirmed", "clinician": "R. Chen" }),
            ),
        )
        .unwrap();
        let new_york_summer = |_| chrono::FixedOffset::west_opt(4 * 3600).unwrap();
        let res = appointment_to_fhir("a-1", &appt, &patient(), Zone::new(&new_york_summer));
        assert_eq!(res["start"], "2024-07-01T09:00:00-04:00");
        assert_eq!(res["end"], "2024-07-01T09:45:00-04:00");
        assert_eq!(
            res["participant"][0],
            json!({ "actor": patient(), "status": "accepted" }),
            "the patient is the first participant"
        );
        assert_eq!(res["participant"][1]["actor"]["display"], "R. Chen");
        assert_eq!(
            appointment_from_fhir(&res).unwrap(),
            appt,
            "the same wall-clock time back"
        );
        let utc = appointment_to_fhir("a-1", &appt, &patient(), Zone::UTC);
        assert_eq!(utc["start"], "2024-07-01T09:00:00Z");

        // A request: nobody has accepted it yet; without a length, it ends where it starts.
        let mut request = appt.clone();
        request.insert("status".into(), "requested".into());
        request.remove("minutes");
        let res = appointment_to_fhir("a-2", &request, &patient(), Zone::UTC);
        assert_eq!(res["participant"][0]["status"], "needs-action");
        assert_eq!(res["end"], res["start"]);
        assert!(res.get("minutesDuration").is_none(), "{res:#}");
        assert_eq!(appointment_from_fhir(&res).unwrap(), request, "no length read back");
    }

    #[test]
    fn a_proposed_appointment_may_give_only_its_requested_period() {
        let res = json!({ "resourceType": "Appointment", "status": "proposed", "description": "Hearing screen",
            "requestedPeriod": [{ "start": "2024-08-01T08:00:00Z", "end": "2024-08-01T12:00:00Z" }] });
        let appt = appointment_from_fhir(&res).unwrap();
        assert_eq!(appt["start"], "2024-08-01T08:00:00");
        assert_eq!(appt["status"], "requested");
    }

    #[test]
    fn appointment_errors_name_their_place() {
        let mut res = ehr_appointment();
        res["status"] = "maybe".into();
        let (path, problem) = fhir_fault(appointment_from_fhir(&res));
        assert_eq!(path, "Appointment.status");
        assert!(problem.contains("`maybe` is not an appointment status"), "{problem}");
        let mut res = ehr_appointment();
        res["start"] = "2024-03-12".into();
        let (path, problem) = fhir_fault(appointment_from_fhir(&res));
        assert_eq!(path, "Appointment.start");
        assert!(problem.contains("no time of day"), "{problem}");
        let mut res = ehr_appointment();
        res["end"] = "2024-03-12T15:00:00-04:00".into();
        assert_eq!(fhir_fault(appointment_from_fhir(&res)).0, "Appointment.end");
        let mut res = ehr_appointment();
        res["minutesDuration"] = 0.into();
        assert_eq!(fhir_fault(appointment_from_fhir(&res)).0, "Appointment.minutesDuration");
        let mut res = ehr_appointment();
        res["participant"][1]["actor"] = json!(["Jamie"]);
        assert_eq!(
            fhir_fault(appointment_from_fhir(&res)).0,
            "Appointment.participant[1].actor"
        );
        let res = json!({ "resourceType": "Appointment", "status": "booked", "start": "2024-03-12T15:30:00Z" });
        assert_eq!(fhir_fault(appointment_from_fhir(&res)).0, "Appointment.reasonCode");
    }
}
