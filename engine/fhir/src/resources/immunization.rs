//! `Immunization`: an immunization, both ways.

use serde_json::{Value, json};

use phr_model::error::Result;
use phr_model::section::Section;

use crate::Fields;
use crate::date::*;
use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;
use crate::resources::procedure::{read_who_where, write_who_where};

/// Immunization → an immunization: the vaccine and its code, given or not (and why), when,
/// which dose, lot, site, route, by whom and where.
pub(crate) fn immunization(root: &At, cx: &Cx) -> Result<Mapping> {
    let status_at = root.get("status")?;
    let given = match status_at.text()?.as_deref() {
        Some("entered-in-error") => return Ok(Skip("entered-in-error")),
        Some("completed") | None => true,
        Some("not-done") => false,
        Some(other) => {
            return Err(status_at.fail(format!(
                "`{other}` is not an immunization status; R4 has completed, entered-in-error, not-done"
            )));
        }
    };
    let vaccine = root.get("vaccineCode")?;
    let Some(label) = concept_label(&vaccine)? else {
        return Ok(Skip("no vaccine code"));
    };
    let mut fields = Fields::new();
    fields.insert("vaccine".into(), label.into());
    put(&mut fields, "code", coded(&vaccine)?);
    fields.insert("status".into(), if given { "completed" } else { "not-done" }.into());
    put(&mut fields, "date", partial_date_at(&root.get("occurrenceDateTime")?)?);
    put(&mut fields, "when", root.get("occurrenceString")?.text()?);
    if !given {
        put(
            &mut fields,
            "not_given_reason",
            concept_label(&root.get("statusReason")?)?,
        );
    }
    if let Some(dose) = root.get("protocolApplied")?.items()?.first() {
        let number = match dose.get("doseNumberPositiveInt")?.number()? {
            Some(n) => Some(n.to_string()),
            None => dose.get("doseNumberString")?.text()?,
        };
        put(&mut fields, "dose", number);
    }
    put(&mut fields, "lot", root.get("lotNumber")?.text()?);
    put(&mut fields, "site", concept_label(&root.get("site")?)?);
    put(&mut fields, "route", concept_label(&root.get("route")?)?);
    read_who_where(root, cx, &mut fields)?;
    Ok(Entry(Section::Immunizations, fields))
}

/// An immunization as an `Immunization`. R4 requires when it happened: a date, else the words
/// kept for it, else `unknown`.
pub(crate) fn immunization_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut i = base("Immunization", id, fields);
    i.insert(
        "status".into(),
        text_field(fields, "status").unwrap_or("completed").into(),
    );
    if let Some(why) = text_field(fields, "not_given_reason") {
        i.insert("statusReason".into(), json!({ "text": why }));
    }
    let vaccine = text_field(fields, "vaccine");
    if let Some(code) = concept(text_field(fields, "code"), vaccine) {
        i.insert("vaccineCode".into(), code);
    }
    match (text_field(fields, "date"), text_field(fields, "when")) {
        (Some(day), _) => i.insert("occurrenceDateTime".into(), day.into()),
        (None, Some(words)) => i.insert("occurrenceString".into(), words.into()),
        (None, None) => i.insert("occurrenceString".into(), "unknown".into()),
    };
    if let Some(lot) = text_field(fields, "lot") {
        i.insert("lotNumber".into(), lot.into());
    }
    for key in ["site", "route"] {
        if let Some(words) = text_field(fields, key) {
            i.insert(key.into(), json!({ "text": words }));
        }
    }
    write_who_where(&mut i, fields);
    if let Some(dose) = text_field(fields, "dose") {
        let number = match dose.parse::<u32>() {
            Ok(n) if n > 0 => json!({ "doseNumberPositiveInt": n }),
            _ => json!({ "doseNumberString": dose }),
        };
        i.insert("protocolApplied".into(), json!([number]));
    }
    Value::Object(i)
}

pub(crate) fn write(_: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    immunization_to_fhir(id, fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use phr_model::entry;

    #[test]
    fn a_synthea_immunization_keeps_its_cvx_code_and_date() {
        let res = json!({
            "resourceType": "Immunization", "id": "i1", "status": "completed",
            "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "20", "display": "DTaP" }], "text": "DTaP" },
            "occurrenceDateTime": "2011-05-20T15:44:30+00:00", "primarySource": true,
            "lotNumber": "A12", "site": { "coding": [{ "display": "Left arm" }] },
            "protocolApplied": [{ "doseNumberPositiveInt": 2, "seriesDosesPositiveInt": 5 }]
        });
        let fields = read_entry(&res, Section::Immunizations);
        assert_eq!(fields["vaccine"], "DTaP");
        assert_eq!(fields["code"], "http://hl7.org/fhir/sid/cvx|20");
        assert_eq!(fields["date"], "2011-05-20");
        assert_eq!(
            (fields["lot"].as_str(), fields["site"].as_str()),
            (Some("A12"), Some("Left arm"))
        );
        assert_eq!(fields["dose"], "2");
        let out = immunization_to_fhir("x", &fields);
        assert_eq!(out["vaccineCode"]["coding"][0]["system"], "http://hl7.org/fhir/sid/cvx");
        assert_eq!(read_entry(&out, Section::Immunizations), fields, "{out:#}");
    }

    #[test]
    fn an_immunization_not_given_says_why_both_ways() {
        let typed = entry::validate(
            Section::Immunizations,
            &fields(
                json!({ "vaccine": "MMR", "status": "not-done", "not_given_reason": "Fever", "when": "spring 2020" }),
            ),
        )
        .unwrap();
        let out = immunization_to_fhir("m", &typed);
        assert_eq!(out["statusReason"]["text"], "Fever");
        assert_eq!(out["occurrenceString"], "spring 2020");
        assert_eq!(read_entry(&out, Section::Immunizations), typed);
        let bad = json!({ "resourceType": "Immunization", "status": "given", "vaccineCode": { "text": "MMR" } });
        assert_eq!(fault(&bad).0, "Immunization.status");
    }
}
