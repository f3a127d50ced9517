//! `QuestionnaireResponse`: a filled form, its answers typed by the template's questions on
//! the way out.

use serde_json::{Map, Value, json};

use phr_model::entry;
use phr_model::error::Result;
use phr_model::section::Section;

use crate::date::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::questionnaire::questionnaire_to_fhir;
use crate::vocab::*;
use crate::{Fields, MAX_DEPTH};

/// A filled form from a `QuestionnaireResponse`; `template` is the questionnaire's id.
pub fn form_response_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["QuestionnaireResponse"])?;
    let mut fields = Fields::new();

    let questionnaire = root.get("questionnaire")?;
    let template = questionnaire
        .text()?
        .as_deref()
        .and_then(template_id)
        .ok_or_else(|| questionnaire.fail("is missing: a response must name the questionnaire it answers"))?;
    let mut title = None;
    for ext in root.get("_questionnaire")?.get("extension")?.items()? {
        if ext.get("url")?.str()? == Some(DISPLAY_EXTENSION) {
            title = ext.get("valueString")?.text()?;
        }
    }
    fields.insert(
        "title".into(),
        title.unwrap_or_else(|| format!("Response to {template}")).into(),
    );
    fields.insert("kind".into(), "response".into());
    fields.insert("template".into(), template.into());

    let status_at = root.get("status")?;
    let status = status_at
        .text()?
        .ok_or_else(|| status_at.fail("is missing: FHIR requires a response status"))?;
    let status = match status.as_str() {
        "completed" | "amended" => "completed",
        "in-progress" | "stopped" => "in-progress",
        "entered-in-error" => return Err(status_at.fail("is `entered-in-error`: there is no response to record")),
        other => {
            return Err(status_at.fail(format!(
                "`{other}` is not a response status; FHIR R4 has in-progress, completed, amended, entered-in-error, stopped"
            )));
        }
    };
    fields.insert("status".into(), status.into());

    let mut answers = Vec::new();
    response_items(&root.get("item")?, 0, &mut answers)?;
    if !answers.is_empty() {
        fields.insert("answers".into(), Value::Array(answers));
    }
    entry::validate(Section::Forms, &fields)
}

/// Like [`form_to_fhir`](crate::form_to_fhir), typing a response's answers by the question kinds of its `template`.
///
/// With the template's fields, a `yesno` answer becomes `valueBoolean`, a `number` answer
/// `valueInteger` or `valueDecimal`, a `date` answer `valueDate`; an answer that does not parse
/// as its kind, or whose question is unknown, stays `valueString` so nothing is lost.
pub fn form_response_to_fhir(id: &str, fields: &Map<String, Value>, template: Option<&Map<String, Value>>) -> Value {
    if text_field(fields, "kind").unwrap_or("template") == "template" {
        return questionnaire_to_fhir(id, fields);
    }
    let mut qr = base("QuestionnaireResponse", id, fields);
    if let Some(id) = text_field(fields, "template") {
        qr.insert("questionnaire".into(), questionnaire_canonical(id, template).into());
        if let Some(title) = text_field(fields, "title") {
            qr.insert(
                "_questionnaire".into(),
                json!({ "extension": [{ "url": DISPLAY_EXTENSION, "valueString": title }] }),
            );
        }
    }
    let status = match text_field(fields, "status") {
        Some("completed") => "completed",
        _ => "in-progress",
    };
    qr.insert("status".into(), status.into());
    let kinds: Vec<(&str, &str)> = template
        .and_then(|t| t.get("questions"))
        .and_then(Value::as_array)
        .map(|qs| {
            qs.iter()
                .filter_map(|q| Some((q.get("id")?.as_str()?, q.get("kind")?.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut items = Vec::new();
    for answer in fields.get("answers").and_then(Value::as_array).into_iter().flatten() {
        let (Some(question), Some(text)) = (
            answer.get("question").and_then(Value::as_str),
            answer.get("answer").and_then(Value::as_str),
        ) else {
            continue;
        };
        let kind = kinds.iter().find(|(q, _)| *q == question).map(|(_, k)| *k);
        items.push(json!({ "linkId": question, "answer": [typed_answer(kind, text)] }));
    }
    if !items.is_empty() {
        qr.insert("item".into(), Value::Array(items));
    }
    Value::Object(qr)
}

/// How a response names the questionnaire it answers: the canonical URL (with its version) of
/// the Questionnaire the clinic sent, else `Questionnaire/<id>` with the clinic's own id, as
/// kept with the template; a template typed in phr is named by its entry id.
fn questionnaire_canonical(template_id: &str, template: Option<&Fields>) -> String {
    let kept: Option<Value> = template
        .and_then(|t| text_field(t, entry::FHIR_KEY))
        .and_then(|text| serde_json::from_str(text).ok());
    let text = |key: &str| {
        kept.as_ref()
            .and_then(|q| q.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    match (text("url"), text("version"), text("id")) {
        (Some(url), Some(version), _) => format!("{url}|{version}"),
        (Some(url), None, _) => url.to_string(),
        (None, _, Some(id)) => format!("Questionnaire/{id}"),
        (None, _, None) => format!("Questionnaire/{template_id}"),
    }
}

/// The id of the questionnaire a canonical or reference names: `Questionnaire/abc`,
/// `https://x.org/fhir/Questionnaire/abc|2.0`, `…/abc/_history/3` all give `abc`.
pub(crate) fn template_id(canonical: &str) -> Option<String> {
    let base = canonical.split_once('|').map_or(canonical, |(b, _)| b).trim();
    let id = match base.rfind("Questionnaire/") {
        Some(at) => base[at + "Questionnaire/".len()..]
            .split('/')
            .next()
            .unwrap_or_default(),
        None => base.trim_end_matches('/').rsplit('/').next().unwrap_or_default(),
    };
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

pub(crate) fn response_items(list: &At, depth: usize, out: &mut Vec<Value>) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(list.fail(format!("nests deeper than {MAX_DEPTH} levels")));
    }
    for item in list.items()? {
        let mut texts = Vec::new();
        let answers = item.get("answer")?.items()?;
        for answer in &answers {
            texts.extend(answer_text(answer)?);
        }
        if !texts.is_empty() {
            let link = item.get("linkId")?;
            let question = link
                .text()?
                .ok_or_else(|| link.fail("is missing: an answer needs its question's linkId"))?;
            out.push(json!({ "question": question, "answer": texts.join("; ") }));
        }
        for answer in &answers {
            response_items(&answer.get("item")?, depth + 1, out)?;
        }
        response_items(&item.get("item")?, depth + 1, out)?;
    }
    Ok(())
}

/// An answer's value as the record's text.
pub(crate) fn answer_text(answer: &At) -> Result<Option<String>> {
    if let Some(b) = answer.get("valueBoolean")?.boolean()? {
        return Ok(Some(if b { "yes" } else { "no" }.to_string()));
    }
    for key in ["valueDecimal", "valueInteger"] {
        if let Some(n) = answer.get(key)?.number()? {
            return Ok(Some(n.to_string()));
        }
    }
    for key in ["valueString", "valueDate", "valueDateTime", "valueTime", "valueUri"] {
        if let Some(text) = answer.get(key)?.text()? {
            return Ok(Some(text));
        }
    }
    let coding = answer.get("valueCoding")?;
    if let Some(label) = coding.get("display")?.text()? {
        return Ok(Some(label));
    }
    if let Some(code) = coding.get("code")?.text()? {
        return Ok(Some(code));
    }
    let quantity = answer.get("valueQuantity")?;
    if let Some(n) = quantity.get("value")?.number()? {
        return Ok(Some(match quantity.get("unit")?.text()? {
            Some(unit) => format!("{n} {unit}"),
            None => n.to_string(),
        }));
    }
    let attachment = answer.get("valueAttachment")?;
    if let Some(label) = attachment.get("title")?.text()? {
        return Ok(Some(label));
    }
    if let Some(url) = attachment.get("url")?.text()? {
        return Ok(Some(url));
    }
    let reference = answer.get("valueReference")?;
    if let Some(label) = reference.get("display")?.text()? {
        return Ok(Some(label));
    }
    reference.get("reference")?.text()
}

/// An answer typed by its question's kind, falling back to text when it does not parse as one.
pub(crate) fn typed_answer(kind: Option<&str>, text: &str) -> Value {
    let t = text.trim();
    match kind {
        Some("yesno") => match t.to_ascii_lowercase().as_str() {
            "yes" | "true" | "y" => return json!({ "valueBoolean": true }),
            "no" | "false" | "n" => return json!({ "valueBoolean": false }),
            _ => {}
        },
        Some("number") => {
            if let Some(n) = exact_number(t) {
                let key = if n.is_f64() { "valueDecimal" } else { "valueInteger" };
                return json!({ key: n });
            }
        }
        Some("date") if parse_when(t).is_some_and(|w| w.time.is_none()) => return json!({ "valueDate": t }),
        _ => {}
    }
    json!({ "valueString": text })
}

/// A QuestionnaireResponse of a bundle, read as a clinic's is unless it was entered in error.
pub(crate) fn read(root: &At, cx: &Cx) -> Result<Mapping> {
    if root.get("status")?.text()?.as_deref() == Some("entered-in-error") {
        return Ok(Mapping::Skip("entered-in-error"));
    }
    let mut fields = form_response_from_fhir(cx.res)?;
    let canonical = root.get("questionnaire")?.text()?;
    if let Some(entry) = canonical.and_then(|c| template_entry(&c, cx)) {
        fields.insert("template".into(), entry.into());
    }
    Ok(Mapping::Checked(Section::Forms, fields))
}

/// The entry id of the Questionnaire of the bundle a response's `canonical` names: by
/// reference (`Questionnaire/id`, a fullUrl), by its canonical `url`, or, in a phr export, by
/// the clinic's `Questionnaire/id` its source names.
fn template_entry(canonical: &str, cx: &Cx) -> Option<String> {
    let (base, _) = canonical.split_once('|').unwrap_or((canonical, ""));
    if let Some(target) = cx.refs.resolve(base.trim(), cx.res)
        && target.get("resourceType").and_then(Value::as_str) == Some("Questionnaire")
    {
        return entry_id_of(target);
    }
    let by_source = template_id(canonical).map(|id| format!("Questionnaire/{id}"));
    let names_it = |q: &Value| {
        let url = q.get("url").and_then(Value::as_str);
        let version = q.get("version").and_then(Value::as_str);
        let canon_matches = url.is_some_and(|u| {
            u == canonical || (u == base && version.is_none_or(|v| canonical.ends_with(&format!("|{v}"))))
        });
        let source_matches = q
            .get("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|i| i.get("system").and_then(Value::as_str) == Some(PHR_SOURCE))
            .filter_map(|i| i.get("value").and_then(Value::as_str))
            .any(|v| {
                by_source
                    .as_deref()
                    .is_some_and(|s| v == s || v.ends_with(&format!("|{s}")))
            });
        canon_matches || source_matches
    };
    cx.refs
        .by_id
        .iter()
        .filter(|((ty, _), _)| *ty == "Questionnaire")
        .map(|(_, q)| *q)
        .find(|q| names_it(q))
        .and_then(entry_id_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    use crate::*;
    use phr_model::entry;

    use phr_model::section::Section;
    use serde_json::{Value, json};
    #[test]
    fn forms_round_trip() {
        let template = template_fields();
        let q = form_to_fhir("tmpl-1", &template);
        assert_eq!(q["resourceType"], "Questionnaire");
        assert_eq!(form_from_fhir(&q).unwrap(), template);

        let response = entry::validate(
            Section::Forms,
            &fields(json!({
                "title": "Intake",
                "kind": "response",
                "template": "tmpl-1",
                "status": "completed",
                "answers": [
                    { "question": "first-words", "answer": "18" },
                    { "question": "ears", "answer": "yes" },
                    { "question": "hearing", "answer": "2023-10-02" },
                    { "question": "concerns", "answer": "Hard to understand\nat school" },
                    { "question": "else", "answer": "2.5" }
                ]
            })),
        )
        .unwrap();
        let untyped = form_to_fhir("resp-1", &response);
        assert_eq!(untyped["resourceType"], "QuestionnaireResponse");
        assert_eq!(untyped["questionnaire"], "Questionnaire/tmpl-1");
        assert_eq!(untyped["item"][1]["answer"][0], json!({ "valueString": "yes" }));
        assert_eq!(form_response_from_fhir(&untyped).unwrap(), response);

        let typed = form_response_to_fhir("resp-1", &response, Some(&template));
        let answers: Vec<&Value> = (0..5).map(|i| &typed["item"][i]["answer"][0]).collect();
        assert_eq!(answers[0], &json!({ "valueInteger": 18 }));
        assert_eq!(answers[1], &json!({ "valueBoolean": true }));
        assert_eq!(answers[2], &json!({ "valueDate": "2023-10-02" }));
        assert_eq!(answers[3], &json!({ "valueString": "Hard to understand\nat school" }));
        assert_eq!(answers[4], &json!({ "valueString": "2.5" }), "no kind known: text");
        assert_eq!(form_response_from_fhir(&typed).unwrap(), response);
        assert_eq!(entry_from_fhir(&typed).unwrap(), (Section::Forms, response));
    }

    #[test]
    fn a_response_names_the_clinics_questionnaire_not_phrs_entry() {
        let response = fields(
            json!({ "title": "Intake", "kind": "response", "template": "0123abcd0123abcd",
            "status": "completed", "answers": [{ "question": "ears", "answer": "no" }] }),
        );
        let mut template = template_fields();
        let mut q = intake_questionnaire();
        crate::keep_source(&mut template, &q);
        let by_url = form_response_to_fhir("r", &response, Some(&template));
        assert_eq!(
            by_url["questionnaire"],
            "https://ehr.example/fhir/Questionnaire/intake-2024"
        );
        q["version"] = "3.1".into();
        crate::keep_source(&mut template, &q);
        let versioned = form_response_to_fhir("r", &response, Some(&template));
        assert_eq!(
            versioned["questionnaire"],
            "https://ehr.example/fhir/Questionnaire/intake-2024|3.1"
        );
        q.as_object_mut().unwrap().remove("url");
        crate::keep_source(&mut template, &q);
        let by_id = form_response_to_fhir("r", &response, Some(&template));
        assert_eq!(by_id["questionnaire"], "Questionnaire/intake-2024");
        let typed_in_phr = form_response_to_fhir("r", &response, Some(&template_fields()));
        assert_eq!(typed_in_phr["questionnaire"], "Questionnaire/0123abcd0123abcd");
    }

    #[test]
    fn a_response_from_an_ehr_is_read_with_nested_answers() {
        let qr = json!({
            "resourceType": "QuestionnaireResponse",
            "id": "qr-9",
            "questionnaire": "https://ehr.example/fhir/Questionnaire/intake-2024|3.1",
            "status": "amended",
            "authored": "2024-02-01T10:00:00+00:00",
            "item": [
                { "linkId": "history", "item": [
                    { "linkId": "first-words", "answer": [{ "valueDecimal": 14.5 }] },
                    { "linkId": "ear-infections", "answer": [{ "valueBoolean": false,
                        "item": [{ "linkId": "ear-details", "answer": [{ "valueString": "none" }] }] }] }
                ] },
                { "linkId": "language", "answer": [{ "valueCoding": { "code": "en", "display": "English" } }, { "valueString": "Spanish" }] },
                { "linkId": "skipped" }
            ]
        });
        let form = form_response_from_fhir(&qr).unwrap();
        assert_eq!(form["template"], "intake-2024");
        assert_eq!(form["title"], "Response to intake-2024");
        assert_eq!(form["status"], "completed");
        assert_eq!(
            form["answers"],
            json!([
                { "question": "first-words", "answer": "14.5" },
                { "question": "ear-infections", "answer": "no" },
                { "question": "ear-details", "answer": "none" },
                { "question": "language", "answer": "English; Spanish" }
            ])
        );
    }

    #[test]
    fn form_errors_name_their_place() {
        let mut q = intake_questionnaire();
        q["item"][1]["item"][1]["type"] = "slider".into();
        let (path, problem) = fhir_fault(form_from_fhir(&q));
        assert_eq!(path, "Questionnaire.item[1].item[1].type");
        assert!(problem.contains("`slider`"), "{problem}");
        let mut q = intake_questionnaire();
        q["item"][4]["linkId"] = Value::Null;
        assert_eq!(fhir_fault(form_from_fhir(&q)).0, "Questionnaire.item[4].linkId");
        let mut q = intake_questionnaire();
        q["title"] = Value::Null;
        assert_eq!(fhir_fault(form_from_fhir(&q)).0, "Questionnaire.title");

        let qr = json!({ "resourceType": "QuestionnaireResponse", "status": "completed" });
        assert_eq!(
            fhir_fault(form_response_from_fhir(&qr)).0,
            "QuestionnaireResponse.questionnaire"
        );
        let qr =
            json!({ "resourceType": "QuestionnaireResponse", "status": "done", "questionnaire": "Questionnaire/x" });
        assert_eq!(
            fhir_fault(form_response_from_fhir(&qr)).0,
            "QuestionnaireResponse.status"
        );
        let qr = json!({ "resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "Questionnaire/x",
            "item": [{ "linkId": "a", "answer": [{ "valueInteger": "three" }] }] });
        assert_eq!(
            fhir_fault(form_response_from_fhir(&qr)).0,
            "QuestionnaireResponse.item[0].answer[0].valueInteger"
        );
    }
}
