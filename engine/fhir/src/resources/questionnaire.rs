//! `Questionnaire`: a form template (nested groups flattened into questions), both ways.

use serde_json::{Map, Number, Value, json};

use phr_model::entry;
use phr_model::error::Result;
use phr_model::section::Section;

use crate::elements::*;
use crate::json::*;
use crate::reading::*;
use crate::resources::Out;
use crate::resources::questionnaire_response::form_response_to_fhir;
use crate::{Fields, MAX_DEPTH};

/// A form template (status `sent`) from a `Questionnaire`; nested groups are flattened.
pub fn form_from_fhir(res: &Value) -> Result<Map<String, Value>> {
    let (root, _) = resource(res, &["Questionnaire"])?;
    let mut fields = Fields::new();
    let title_at = root.get("title")?;
    let title = match title_at.text()? {
        Some(t) => t,
        None => root
            .get("name")?
            .text()?
            .ok_or_else(|| title_at.fail("is missing, and so is name: a form needs its title"))?,
    };
    fields.insert("title".into(), title.into());
    fields.insert("kind".into(), "template".into());
    fields.insert("status".into(), "sent".into());
    let mut questions = Vec::new();
    questionnaire_items(&root.get("item")?, 0, &mut questions)?;
    if !questions.is_empty() {
        fields.insert("questions".into(), Value::Array(questions));
    }
    entry::validate(Section::Forms, &fields)
}

/// A form as a `Questionnaire` (template) or a `QuestionnaireResponse` (response, answers as text).
pub fn form_to_fhir(id: &str, fields: &Map<String, Value>) -> Value {
    form_response_to_fhir(id, fields, None)
}

/// FHIR item type to the record's question kind: `Some(None)` for plain text (the record's
/// default kind), `None` for a type FHIR does not have.
pub(crate) fn question_kind(ty: &str) -> Option<Option<&'static str>> {
    match ty {
        "boolean" => Some(Some("yesno")),
        "decimal" | "integer" | "quantity" => Some(Some("number")),
        "date" | "dateTime" => Some(Some("date")),
        "text" => Some(Some("text")),
        "string" | "url" | "choice" | "open-choice" | "time" | "attachment" | "reference" | "coding" | "question" => {
            Some(None)
        }
        _ => None,
    }
}

pub(crate) fn questionnaire_items(list: &At, depth: usize, out: &mut Vec<Value>) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(list.fail(format!("nests deeper than {MAX_DEPTH} levels")));
    }
    for item in list.items()? {
        let type_at = item.get("type")?;
        let ty = type_at.text()?.unwrap_or_else(|| "string".to_string());
        match ty.as_str() {
            "group" => {}
            "display" => continue,
            _ => {
                let kind = question_kind(&ty)
                    .ok_or_else(|| type_at.fail(format!("`{ty}` is not a Questionnaire item type")))?;
                let link = item.get("linkId")?;
                let id = link
                    .text()?
                    .ok_or_else(|| link.fail("is missing: every question needs its linkId"))?;
                let text_at = item.get("text")?;
                let mut text = text_at
                    .text()?
                    .ok_or_else(|| text_at.fail("is missing: a question needs its text"))?;
                // The record has no choice kind, so the choices travel with the question.
                let mut options = Vec::new();
                for option in item.get("answerOption")?.items()? {
                    let coding = option.get("valueCoding")?;
                    let label = match coding.get("display")?.text()? {
                        Some(d) => Some(d),
                        None => coding.get("code")?.text()?,
                    };
                    let label = match label {
                        Some(l) => Some(l),
                        None => match option.get("valueString")?.text()? {
                            Some(s) => Some(s),
                            None => option.get("valueInteger")?.number()?.map(Number::to_string),
                        },
                    };
                    options.extend(label);
                }
                if !options.is_empty() {
                    text = format!("{text} ({})", options.join(" / "));
                }
                let mut question = Map::new();
                question.insert("text".into(), text.into());
                question.insert("id".into(), id.into());
                if let Some(kind) = kind {
                    question.insert("kind".into(), kind.into());
                }
                if item.get("required")?.boolean()? == Some(true) {
                    question.insert("required".into(), true.into());
                }
                out.push(Value::Object(question));
            }
        }
        questionnaire_items(&item.get("item")?, depth + 1, out)?;
    }
    Ok(())
}

pub(crate) fn questionnaire_to_fhir(id: &str, fields: &Fields) -> Value {
    let mut q = base("Questionnaire", id, fields);
    q.insert("status".into(), "active".into());
    if let Some(title) = text_field(fields, "title") {
        q.insert("title".into(), title.into());
    }
    let mut items = Vec::new();
    let questions = fields.get("questions").and_then(Value::as_array);
    for (n, question) in questions.into_iter().flatten().enumerate() {
        let Some(text) = question.get("text").and_then(Value::as_str) else {
            continue;
        };
        // A question without an id is known by its position, as FHIR needs a linkId.
        let link = question
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| (n + 1).to_string(), str::to_string);
        let ty = match question.get("kind").and_then(Value::as_str) {
            Some("yesno") => "boolean",
            Some("number") => "decimal",
            Some("date") => "date",
            Some("text") => "text",
            _ => "string",
        };
        let mut item = json!({ "linkId": link, "text": text, "type": ty });
        if question.get("required").and_then(Value::as_bool) == Some(true) {
            item["required"] = true.into();
        }
        items.push(item);
    }
    if !items.is_empty() {
        q.insert("item".into(), Value::Array(items));
    }
    Value::Object(q)
}

/// Questionnaire → a form template. One from a phr export keeps the template's own status
/// (carried in an extension, absent when it had none) instead of the `sent` a clinic's gets.
pub(crate) fn form_template(root: &At, cx: &Cx) -> Result<Mapping> {
    let mut fields = form_from_fhir(cx.res)?;
    if cx.from_phr {
        fields.remove("status");
        if let Some(ext) = field_ext(root, "status")? {
            put(&mut fields, "status", ext.get("valueString")?.text()?);
        }
    }
    Ok(Entry(Section::Forms, fields))
}

/// The template's status, for [`form_template`] to read back.
pub(crate) fn form_status_ext(res: &mut Value, fields: &Fields) {
    if let (Some(status), Value::Object(m)) = (text_field(fields, "status"), res) {
        m.insert(
            "extension".into(),
            json!([ext_value("status", "valueString", status.into())]),
        );
    }
}

/// A form as a `Questionnaire` (template) or a `QuestionnaireResponse` (response), its
/// answers typed by its template when the export holds it.
pub(crate) fn write(out: &Out, _: Section, id: &str, fields: &Fields) -> Value {
    let template = text_field(fields, "template").and_then(|t| out.templates.get(t).copied());
    form_response_to_fhir(id, fields, template)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    use serde_json::Value;
    // ----- forms ------------------------------------------------------------------------------

    #[test]
    fn a_questionnaire_becomes_a_flat_template() {
        let form = form_from_fhir(&intake_questionnaire()).unwrap();
        assert_eq!(form["title"], "Speech intake");
        assert_eq!(form["kind"], "template");
        assert_eq!(form["status"], "sent");
        let questions = form["questions"].as_array().unwrap();
        let ids: Vec<&str> = questions.iter().map(|q| q["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "first-words",
                "ear-infections",
                "concerns",
                "language",
                "last-visit",
                "name"
            ]
        );
        assert_eq!(questions[0]["kind"], "number");
        assert_eq!(questions[1]["kind"], "yesno");
        assert_eq!(questions[2]["kind"], "text");
        assert_eq!(questions[3]["text"], "Home language (English / Spanish)");
        assert!(questions[3].get("kind").is_none());
        assert_eq!(questions[4]["kind"], "date");
        let allowed = question_kinds();
        for q in questions {
            if let Some(kind) = q.get("kind").and_then(Value::as_str) {
                assert!(allowed.contains(&kind), "{kind}");
            }
        }
    }
}
