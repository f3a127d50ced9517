//! Who a message written on a device is from, as the CLI and the portal both sign it (the
//! `from` text; who really wrote a message is its change's verified author key).

use serde_json::Value;

use phr_model::entry::PATIENT_ENTRY;
use phr_model::record::Record;
use phr_model::section::Section;

use super::Device;

impl Device {
    /// Who a message written on this device is from: on the patient's own devices the person
    /// writing with the device (`Ana Lopez (guardian) via Mia's phone`, or the patient's name
    /// when the profile names no guardian); for anyone else the name their access was granted
    /// under.
    pub fn sender(&self) -> String {
        match (self.cert(), person(self.record())) {
            (Some(_), Some(person)) => format!("{person} via {}", self.name()),
            _ => self.name().to_string(),
        }
    }
}

/// The person behind the patient's devices, from the profile: the one guardian it names (a
/// parent writing for a child), the family when it names several, else the patient.
fn person(record: &Record) -> Option<String> {
    let profile = record.read_entry(Section::Profile, PATIENT_ENTRY).ok().flatten()?;
    let named = |v: &Value| {
        v.get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    };
    let patient = named(&Value::Object(profile.fields.clone()))?;
    let guardians: Vec<String> = match profile.fields.get("guardians") {
        Some(Value::Array(items)) => items.iter().filter_map(named).collect(),
        _ => Vec::new(),
    };
    Some(match guardians.as_slice() {
        [] => patient,
        [one] => format!("{one} (guardian)"),
        _ => format!("{patient}'s family"),
    })
}
