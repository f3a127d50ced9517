//! What people type for a patient or a staff member in `phr-node` commands: a few characters
//! of a record id, a name or the start of a key. The HTTP API takes only full record ids (or
//! long prefixes) and exact staff names or keys, so the commands look short forms up in the
//! node's lists first; one that fits several is an error listing them, never a guess.

use anyhow::{Result, bail};
use phr_engine::error::shown;
use serde_json::Value;

use crate::client::Client;

/// The full id of the hosted record `given` starts (letter case aside).
pub fn patient(client: &Client, given: &str) -> Result<String> {
    pick_patient(&client.get("/v1/patients")?, given)
}

/// The full key of the current staff member `given` names: their name (letter case aside),
/// or the start of their name or key.
pub fn staff(client: &Client, given: &str) -> Result<String> {
    pick_staff(&client.get("/v1/staff")?, given)
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

fn pick_patient(all: &Value, given: &str) -> Result<String> {
    let want = given.trim().to_ascii_lowercase();
    if want.is_empty() {
        bail!("give the patient's record id, or its first few characters (see `phr-node patients`)");
    }
    let found: Vec<&Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| text(p, "id").starts_with(&want))
        .collect();
    match found.as_slice() {
        [one] => Ok(text(one, "id").to_string()),
        [] => bail!(
            "this clinic hosts no record starting with `{}` (see `phr-node patients`)",
            shown(given.trim())
        ),
        many => bail!(
            "`{}` fits {} hosted records; give more of the id:\n{}",
            shown(given.trim()),
            many.len(),
            candidates(many, "id", |p| p["name"].as_str().unwrap_or("(profile not synced yet)"))
        ),
    }
}

fn pick_staff(all: &Value, given: &str) -> Result<String> {
    let want = given.trim();
    if want.is_empty() {
        bail!("give the staff member's name or key (see `phr-node staff list`)");
    }
    let current: Vec<&Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["removed"].is_null())
        .collect();
    if let Some(m) = current.iter().find(|m| text(m, "name").eq_ignore_ascii_case(want)) {
        return Ok(text(m, "key").to_string());
    }
    let lower = want.to_lowercase();
    let found: Vec<&Value> = current
        .into_iter()
        .filter(|m| text(m, "key").starts_with(&lower) || text(m, "name").to_lowercase().starts_with(&lower))
        .collect();
    match found.as_slice() {
        [one] => Ok(text(one, "key").to_string()),
        [] => bail!(
            "no current staff member is called `{}` or has a key starting so (see `phr-node staff list`)",
            shown(want)
        ),
        many => bail!(
            "`{}` fits {} staff members; give their full name or more of the key:\n{}",
            shown(want),
            many.len(),
            candidates(many, "key", |m| text(m, "name"))
        ),
    }
}

/// One line per candidate: its id or key in full (hex, or `?`), then its name, control
/// characters escaped.
fn candidates<'a>(found: &[&'a Value], id: &str, name: impl Fn(&'a Value) -> &'a str) -> String {
    let hex = |v: &'a Value| Some(text(v, id)).filter(|i| i.bytes().all(|b| b.is_ascii_hexdigit()));
    found
        .iter()
        .map(|v| format!("  {}  {}", hex(v).unwrap_or("?"), shown(name(v))))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MIA: &str = "ab12000000000000000000000000000000000000000000000000000000000001";
    const SAM: &str = "ab34000000000000000000000000000000000000000000000000000000000002";

    fn patients() -> Value {
        json!([{"id": MIA, "name": "Mia Lopez"}, {"id": SAM, "name": "Sam\u{1b}[2J Okafor"}])
    }

    fn staff_list() -> Value {
        json!([
            {"key": "cc01", "name": "Jane Roe", "removed": null},
            {"key": "cc02", "name": "Janet Poe", "removed": null},
            {"key": "dd03", "name": "Carl Old", "removed": "2024-01-01T00:00:00+00:00"},
        ])
    }

    #[test]
    fn a_short_prefix_that_fits_one_patient_names_that_record() {
        assert_eq!(pick_patient(&patients(), "AB1").unwrap(), MIA);
        assert_eq!(pick_patient(&patients(), SAM).unwrap(), SAM);
    }

    #[test]
    fn a_prefix_that_fits_several_patients_lists_them_and_picks_none() {
        let err = pick_patient(&patients(), "ab").unwrap_err().to_string();
        assert!(err.contains("fits 2 hosted records"), "{err}");
        assert!(
            err.contains(MIA) && err.contains("Mia Lopez") && err.contains(SAM),
            "{err}"
        );
        assert!(!err.contains('\u{1b}'), "names are shown escaped: {err}");
        assert!(pick_patient(&patients(), "ff").is_err());
        assert!(pick_patient(&patients(), " ").is_err());
    }

    #[test]
    fn staff_are_found_by_exact_name_or_an_unambiguous_start_never_among_the_removed() {
        assert_eq!(pick_staff(&staff_list(), "jane roe").unwrap(), "cc01");
        assert_eq!(pick_staff(&staff_list(), "Janet").unwrap(), "cc02");
        assert_eq!(pick_staff(&staff_list(), "cc02").unwrap(), "cc02");
        let err = pick_staff(&staff_list(), "Jan").unwrap_err().to_string();
        assert!(
            err.contains("fits 2 staff members") && err.contains("Jane Roe") && err.contains("Janet Poe"),
            "{err}"
        );
        let err = pick_staff(&staff_list(), "c").unwrap_err().to_string();
        assert!(
            err.contains("fits 2 staff members"),
            "the removed one is not a candidate: {err}"
        );
        assert!(
            pick_staff(&staff_list(), "Carl").is_err(),
            "a removed member is not chosen"
        );
    }
}
