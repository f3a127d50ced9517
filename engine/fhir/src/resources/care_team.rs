//! `CareTeam`: someone caring for the patient (a person, a team with its members, an
//! organisation), both ways.

use serde_json::{Map, Value, json};

use phr_model::entry::CARE_TEAM_STATUSES;
use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;
use crate::resources::procedure::joined;

/// CareTeam → the care team: its name (else its kind), kind of care, organisation, how to reach
/// it, period, members with their roles, and what it cares for.
pub(crate) fn care_team(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let status = match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        None => "active".to_string(),
        Some(s) if CARE_TEAM_STATUSES.contains(&s) => s.to_string(),
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not a care team status; R4 has {}, entered-in-error",
                CARE_TEAM_STATUSES.join(", ")
            )));
        }
    };
    let role = labels(&root.get("category")?)?.into_iter().next();
    let name = match root.get("name")?.text()? {
        Some(n) => n,
        None => role.clone().unwrap_or_else(|| "Care team".into()),
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), name.into());
    put(&mut fields, "role", role);
    fields.insert("status".into(), status.into());
    if let Some(org) = root.get("managingOrganization")?.items()?.first() {
        put(&mut fields, "organization", cx.name(org)?);
    }
    let telecom_at = root.get("telecom")?;
    put(&mut fields, "phone", telecom(&telecom_at, "phone")?);
    put(&mut fields, "email", telecom(&telecom_at, "email")?);
    let period = root.get("period")?;
    put(&mut fields, "start", date(&period, "start")?);
    put(&mut fields, "end", date(&period, "end")?);
    let mut members = Vec::new();
    for p in root.get("participant")?.items()? {
        let role = labels(&p.get("role")?)?.into_iter().next();
        let Some(name) = cx.name(&p.get("member")?)?.or_else(|| role.clone()) else {
            continue;
        };
        let mut m = Map::new();
        m.insert("name".into(), name.into());
        put(&mut m, "role", role);
        put(&mut m, "organization", cx.name(&p.get("onBehalfOf")?)?);
        members.push(Value::Object(m));
    }
    if !members.is_empty() {
        fields.insert("members".into(), Value::Array(members));
    }
    put(&mut fields, "reason", joined(labels(&root.get("reasonCode")?)?));
    put(&mut fields, "notes", paragraphs(note_texts(root)?));
    Ok(Entry(Section::CareTeam, fields))
}

/// The care team as a `CareTeam`.
pub(crate) fn care_team_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut t = base("CareTeam", id, fields);
    t.insert("status".into(), text_field(fields, "status").unwrap_or("active").into());
    if let Some(role) = text_field(fields, "role") {
        t.insert("category".into(), json!([{ "text": role }]));
    }
    if let Some(name) = text_field(fields, "name") {
        t.insert("name".into(), name.into());
    }
    let mut period = Map::new();
    for key in ["start", "end"] {
        if let Some(day) = text_field(fields, key) {
            period.insert(key.into(), day.into());
        }
    }
    if !period.is_empty() {
        t.insert("period".into(), Value::Object(period));
    }
    let members: Vec<Value> = fields
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(member_to_fhir)
        .collect();
    if !members.is_empty() {
        t.insert("participant".into(), Value::Array(members));
    }
    if let Some(reason) = text_field(fields, "reason") {
        t.insert("reasonCode".into(), json!([{ "text": reason }]));
    }
    if let Some(org) = text_field(fields, "organization") {
        t.insert("managingOrganization".into(), json!([named(org)]));
    }
    let telecom: Vec<Value> = [("phone", "phone"), ("email", "email")]
        .into_iter()
        .filter_map(|(key, system)| text_field(fields, key).map(|v| json!({ "system": system, "value": v })))
        .collect();
    if !telecom.is_empty() {
        t.insert("telecom".into(), Value::Array(telecom));
    }
    if let Some(notes) = text_field(fields, "notes") {
        t.insert("note".into(), json!([{ "text": notes }]));
    }
    Value::Object(t)
}

/// A member as a participant. R4's participant has no element for a member's phone or email:
/// those stay in the record and do not go out.
fn member_to_fhir(member: &Fields) -> Value {
    let mut p = Map::new();
    if let Some(role) = text_field(member, "role") {
        p.insert("role".into(), json!([{ "text": role }]));
    }
    if let Some(name) = text_field(member, "name") {
        p.insert("member".into(), named(name));
    }
    if let Some(org) = text_field(member, "organization") {
        p.insert("onBehalfOf".into(), named(org));
    }
    Value::Object(p)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    care_team_to_fhir(id, fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use phr_model::entry;

    #[test]
    fn a_care_team_with_members_goes_out_and_back() {
        let typed = entry::validate(
            Section::CareTeam,
            &fields(json!({
                "name": "Feeding clinic", "role": "Feeding therapy", "organization": "Children's Hospital",
                "phone": "555-0100", "email": "feeding@example.org", "start": "2023-01-10",
                "members": [{ "name": "Ann Park", "role": "Dietitian" }, { "name": "Bo Chen", "organization": "Children's Hospital" }],
                "reason": "Picky eating"
            })),
        )
        .unwrap();
        let out = care_team_to_fhir("t", &typed);
        assert_eq!(out["participant"][0]["member"]["display"], "Ann Park");
        assert_eq!(out["telecom"][1]["value"], "feeding@example.org");
        assert_eq!(read_entry(&out, Section::CareTeam), typed, "{out:#}");
    }

    #[test]
    fn an_ehr_care_team_reads_its_participants_roles() {
        let res = json!({
            "resourceType": "CareTeam", "id": "ct1", "status": "active",
            "period": { "start": "2019-02-01T10:00:00Z" },
            "participant": [
                { "role": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "116154003", "display": "Patient" }] }],
                  "member": { "reference": "Patient/p1", "display": "Mia Lopez" } },
                { "role": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "223366009", "display": "Healthcare professional" }] }],
                  "member": { "reference": "Practitioner/7", "display": "Dr. Lee" } }
            ],
            "managingOrganization": [{ "reference": "Organization/1", "display": "Sunrise Clinic" }]
        });
        let fields = read_entry(&res, Section::CareTeam);
        assert_eq!(fields["name"], "Care team");
        assert_eq!(fields["organization"], "Sunrise Clinic");
        assert_eq!(fields["start"], "2019-02-01");
        assert_eq!(fields["members"][1]["role"], "Healthcare professional");
        assert_eq!(
            fault(&json!({ "resourceType": "CareTeam", "status": "done" })).0,
            "CareTeam.status"
        );
    }
}
