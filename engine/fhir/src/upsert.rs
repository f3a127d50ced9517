//! The one rule for an entry keyed by its resource arriving again: created when the record
//! has no entry by its id, unchanged when every field it gives is already there, else updated
//! with just the fields that differ. A session note is never rewritten, so a different note
//! under the same id is kept as the record has it; the caller says what that means (an
//! import counts it as kept, a clinic's push is refused). Used by bundle import and by the
//! clinic node's push.

use serde_json::Value;

use phr_model::entry::{FHIR_KEY, SOURCE_KEY};
use phr_model::section::Section;

use crate::Fields;

/// What to do with an incoming entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Upsert {
    /// The record has no entry by this id: add it.
    Create,
    /// Every field given is already as given.
    Unchanged,
    /// Edit the entry with these fields (only those that differ).
    Update(Fields),
    /// A note that differs from the record's: notes are never rewritten.
    Kept,
}

/// Decide for the validated `fields` of an entry of `section` against the entry the record
/// has by the same id (`old`, its fields), if any.
///
/// Fields the incoming entry does not give are left as they are; the profile keeps the source
/// it was first imported from and gains guardians and contacts without losing its own. The
/// kept FHIR resource (`fhir`) is a field like the others here: a newer version of the
/// resource updates it with the entry, except a note's, which stays the one it came with.
pub fn upsert(section: Section, fields: &Fields, old: Option<&Fields>) -> Upsert {
    let Some(old) = old else {
        return Upsert::Create;
    };
    let mut changes = Fields::new();
    for (key, value) in fields {
        let value = match (section, key.as_str()) {
            (Section::Profile, SOURCE_KEY) if old.contains_key(SOURCE_KEY) => continue,
            // A note is never rewritten: it keeps the source it first came with, and the same
            // note sent again with other bookkeeping (a new `meta`) is the same note.
            (Section::Notes, FHIR_KEY) => continue,
            (Section::Profile, "guardians" | "contacts") => union(old.get(key), value),
            _ => value.clone(),
        };
        if old.get(key) != Some(&value) {
            changes.insert(key.clone(), value);
        }
    }
    if changes.is_empty() {
        Upsert::Unchanged
    } else if section == Section::Notes {
        Upsert::Kept
    } else {
        Upsert::Update(changes)
    }
}

/// The people already listed, then those of `new` not among them by name.
fn union(old: Option<&Value>, new: &Value) -> Value {
    let mut all: Vec<Value> = old.and_then(Value::as_array).cloned().unwrap_or_default();
    for person in new.as_array().into_iter().flatten() {
        let name = person.get("name");
        if !all.iter().any(|p| p.get("name") == name) {
            all.push(person.clone());
        }
    }
    Value::Array(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn an_entry_is_created_unchanged_updated_or_a_note_kept() {
        let old = fields(json!({ "name": "Aspirin", "dose": "81 mg" }));
        let same = fields(json!({ "name": "Aspirin" }));
        let new = fields(json!({ "name": "Aspirin", "dose": "100 mg" }));
        assert_eq!(upsert(Section::Medications, &new, None), Upsert::Create);
        assert_eq!(upsert(Section::Medications, &same, Some(&old)), Upsert::Unchanged);
        assert_eq!(
            upsert(Section::Medications, &new, Some(&old)),
            Upsert::Update(fields(json!({ "dose": "100 mg" })))
        );
        assert_eq!(upsert(Section::Notes, &new, Some(&old)), Upsert::Kept);
    }

    #[test]
    fn the_profile_keeps_its_source_and_gains_people() {
        let old = fields(json!({ "source": "a|Patient/1", "guardians": [{ "name": "Ann" }] }));
        let new = fields(json!({ "source": "b|Patient/1", "guardians": [{ "name": "Bo" }, { "name": "Ann" }] }));
        assert_eq!(
            upsert(Section::Profile, &new, Some(&old)),
            Upsert::Update(fields(json!({ "guardians": [{ "name": "Ann" }, { "name": "Bo" }] })))
        );
    }
}
