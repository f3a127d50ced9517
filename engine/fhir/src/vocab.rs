//! Code systems and vocabularies: the terminology URLs phr reads and writes, its own
//! `urn:phr:` systems, and the disciplines (speech, OT, ABA, …) as EHRs name them.

use serde_json::{Value, json};

use phr_model::error::Result;

use crate::elements::*;
use crate::json::*;

pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const NUCC: &str = "http://nucc.org/provider-taxonomy";
pub(crate) const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
pub(crate) const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// Standard extension giving a display text to a canonical reference.
pub(crate) const DISPLAY_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/display";

/// Coding system of the tag naming the section an exported resource came from.
pub(crate) const PHR_SECTION: &str = "urn:phr:section";
/// Identifier system carrying an imported entry's source through an export.
pub(crate) const PHR_SOURCE: &str = "urn:phr:source";
/// Identifier system naming an entry by its id, in references to resources not exported.
pub(crate) const PHR_ENTRY: &str = "urn:phr:entry";
/// Identifier system of the record (the patient's root key).
pub(crate) const PHR_RECORD: &str = "urn:phr:record";
pub(crate) const PHR_DISCIPLINE: &str = "urn:phr:discipline";
pub(crate) const PHR_DOCUMENT_KIND: &str = "urn:phr:document-kind";
pub(crate) const PHR_CAREGIVER_LOG: &str = "urn:phr:caregiver-log";
/// Extension URL prefix for fields FHIR has no element for; the field name follows.
pub(crate) const PHR_FIELD: &str = "urn:phr:field:";

pub(crate) const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
pub(crate) const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
pub(crate) const COVERAGE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";
pub(crate) const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
pub(crate) const CONTACT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/v2-0131";
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";

/// The record's discipline word (`speech`, `aba`, …) named by a free text or display, if any.
pub fn discipline_from_text(text: &str) -> Option<&'static str> {
    // Lower-case words joined by single spaces, so "Speech-Language" and "speech language"
    // read alike; `has_word` matches abbreviations only as whole words.
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let flat = words.join(" ");
    let has = |part: &str| flat.contains(part);
    let has_word = |w: &str| words.iter().any(|x| x == w);
    // Order matters: a team note naming several disciplines is multidisciplinary, "physical
    // medicine" is physical therapy rather than medicine, "behavior analysis" is ABA rather
    // than behavioral health.
    if has("multidisciplin") || has("interdisciplin") || has("transdisciplin") || has("multi disciplin") {
        Some("multidisciplinary")
    } else if has("applied behavio")
        || has("behavior analy")
        || has("behaviour analy")
        || ["aba", "bcba", "bcaba", "rbt", "lba"].iter().any(|w| has_word(w))
    {
        Some("aba")
    } else if has("speech") || has("language patholog") || has("language therap") || has_word("slp") {
        Some("speech")
    } else if has("occupational") || ["ot", "otr", "otd", "cota"].iter().any(|w| has_word(w)) {
        Some("occupational")
    } else if has("physical therap")
        || has("physiotherap")
        || has("physical medicine")
        || has("physiatr")
        || ["pt", "dpt", "mpt", "pta"].iter().any(|w| has_word(w))
    {
        Some("physical")
    } else if has("psycholog")
        || has("psychiatr")
        || has("psychotherap")
        || has("mental health")
        || has("behavioral health")
        || has("behavioural health")
        || has("counsel")
        || ["lcsw", "lpc", "lmft", "psyd"].iter().any(|w| has_word(w))
    {
        Some("psychology")
    } else if has("pediatric")
        || has("paediatric")
        || has("medicine")
        || has("medical")
        || has("physician")
        || has("primary care")
        || has("family practice")
        || has("general practice")
        || has("nursing")
        || has("neurolog")
        || ["md", "rn", "np", "fnp", "cpnp"].iter().any(|w| has_word(w))
    {
        Some("medical")
    } else {
        None
    }
}

/// How each discipline is named in outgoing resources; every name maps back to its word.
pub(crate) const DISCIPLINE_DISPLAY: &[(&str, &str)] = &[
    ("speech", "Speech-language pathology"),
    ("aba", "Applied behavior analysis"),
    ("occupational", "Occupational therapy"),
    ("physical", "Physical therapy"),
    ("psychology", "Psychology"),
    ("medical", "Medicine"),
    ("multidisciplinary", "Multidisciplinary team"),
    ("other", "Other"),
];

/// NUCC provider taxonomy codes, for codings that carry a code but no display.
pub(crate) const NUCC_DISCIPLINES: &[(&str, &str)] = &[
    ("235Z00000X", "speech"),
    ("103K00000X", "aba"),
    ("225X00000X", "occupational"),
    ("225100000X", "physical"),
    ("103T00000X", "psychology"),
    ("208000000X", "medical"),
    ("207Q00000X", "medical"),
];

pub(crate) fn discipline_display(word: &str) -> &str {
    DISCIPLINE_DISPLAY
        .iter()
        .find(|(w, _)| *w == word)
        .map_or(word, |(_, display)| display)
}

/// The discipline a CodeableConcept names, and whether it names anything at all.
pub(crate) fn concept_discipline(concept: &At) -> Result<(Option<&'static str>, bool)> {
    let text = concept.get("text")?.text()?;
    let codings = codings(concept)?;
    let mut named = text.is_some();
    let mut words: Vec<String> = text.into_iter().collect();
    for c in &codings {
        named |= c.display.is_some() || c.code.is_some();
        words.extend(c.display.clone());
    }
    if let Some(found) = words.iter().find_map(|w| discipline_from_text(w)) {
        return Ok((Some(found), true));
    }
    let by_code = codings.iter().find_map(|c| {
        let code = c.code.as_deref()?;
        (c.system.as_deref().is_none_or(|s| s == NUCC))
            .then(|| NUCC_DISCIPLINES.iter().find(|(k, _)| *k == code).map(|(_, w)| *w))
            .flatten()
    });
    Ok((by_code, named))
}

/// The discipline from `specialties` (which name a discipline by nature, so an unrecognized one
/// is `other`) and `kinds` (document types and categories, which only count when recognized).
pub(crate) fn pick_discipline(specialties: &[At], kinds: &[At]) -> Result<Option<&'static str>> {
    let mut named = false;
    for concept in specialties {
        let (found, any) = concept_discipline(concept)?;
        if found.is_some() {
            return Ok(found);
        }
        named |= any;
    }
    for concept in kinds {
        if let (Some(found), _) = concept_discipline(concept)? {
            return Ok(Some(found));
        }
    }
    Ok(named.then_some("other"))
}

/// A discipline named by a `urn:phr:discipline` coding, else recognized in the concepts' words.
pub(crate) fn discipline_in(concepts: &[At]) -> Result<Option<&'static str>> {
    for concept in concepts {
        for c in codings(concept)? {
            if c.system.as_deref() == Some(PHR_DISCIPLINE)
                && let Some((word, _)) = DISCIPLINE_DISPLAY.iter().find(|(w, _)| Some(*w) == c.code.as_deref())
            {
                return Ok(Some(word));
            }
        }
    }
    pick_discipline(&[], concepts)
}

pub(crate) fn discipline_concept(word: &str) -> Value {
    let display = discipline_display(word);
    json!({ "coding": [{ "system": PHR_DISCIPLINE, "code": word, "display": display }], "text": display })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    use crate::*;

    use phr_model::section::Section;
    use serde_json::{Value, json};
    #[test]
    fn disciplines_map_from_the_words_ehrs_use() {
        let cases = [
            ("Speech-language pathology", Some("speech")),
            ("speech therapy", Some("speech")),
            ("Speech and language therapy", Some("speech")),
            ("Speech-Language Pathologist", Some("speech")),
            ("SLP", Some("speech")),
            ("Applied behavior analysis", Some("aba")),
            ("Applied Behaviour Analysis service", Some("aba")),
            ("Behavior Analyst", Some("aba")),
            ("ABA therapy", Some("aba")),
            ("Occupational therapy", Some("occupational")),
            ("OT evaluation", Some("occupational")),
            ("Physical therapy", Some("physical")),
            ("Physiotherapy", Some("physical")),
            ("Physical medicine and rehabilitation", Some("physical")),
            ("Clinical psychology", Some("psychology")),
            ("Child psychiatry", Some("psychology")),
            ("Behavioral health", Some("psychology")),
            ("Pediatrics", Some("medical")),
            ("Paediatrics", Some("medical")),
            ("Family medicine", Some("medical")),
            // Credentials, as staff roles and signatures give them.
            ("OTR/L", Some("occupational")),
            ("COTA/L", Some("occupational")),
            ("PT, DPT", Some("physical")),
            ("PTA", Some("physical")),
            ("BCaBA", Some("aba")),
            ("RBT", Some("aba")),
            ("LCSW", Some("psychology")),
            ("PsyD", Some("psychology")),
            ("MD", Some("medical")),
            ("CPNP", Some("medical")),
            ("Multidisciplinary team meeting", Some("multidisciplinary")),
            ("Interdisciplinary speech and OT", Some("multidisciplinary")),
            ("Progress note", None),
            ("Clinical Note", None),
            ("Dietetics", None),
        ];
        for (text, want) in cases {
            assert_eq!(discipline_from_text(text), want, "{text}");
        }
        let allowed = choices(Section::Notes, "discipline");
        for (word, display) in DISCIPLINE_DISPLAY {
            assert!(allowed.contains(word), "{word}");
            let back = discipline_from_text(display).unwrap_or("other");
            assert_eq!(back, *word, "{display} must map back");
        }
        for word in allowed {
            assert!(
                DISCIPLINE_DISPLAY.iter().any(|(w, _)| w == word),
                "{word} has no display name"
            );
        }
        for (_, word) in NUCC_DISCIPLINES {
            assert!(allowed.contains(word), "{word}");
        }
    }

    #[test]
    fn an_unrecognized_practice_setting_is_other_but_an_unrecognized_type_is_nothing() {
        let mut doc = ehr_document();
        doc["context"]["practiceSetting"] = json!({ "text": "Hippotherapy" });
        assert_eq!(note_from_fhir(&doc).unwrap()["discipline"], "other");
        doc["context"]["practiceSetting"] = Value::Null;
        assert!(!note_from_fhir(&doc).unwrap().contains_key("discipline"));
    }
}
