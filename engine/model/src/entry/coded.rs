//! A coded value: what a person reads (`text`) and the codes systems read (`codings`), as FHIR's
//! CodeableConcept has them. Not yet the type of any field (see the module above): the
//! foundation for turning the `code` text fields into coded ones.
//!
//! Stored as a nested map `{ text, codings: [{ system, code, display }] }`. Reading is
//! backwards compatible with the `code` text fields records already hold: a stored string is a
//! code, `system|code` (`http://snomed.info/sct|195967001`) or a bare code with no system.
//! A person typing a value gives text only ([`Coded::typed`]); editing the text drops the
//! codings, since they described the old text, and leaves them when the text is unchanged
//! ([`Coded::edited`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// One code in one system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coding {
    /// The code system's URI (`http://loinc.org`); absent when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The code.
    pub code: String,
    /// The system's name for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// A value people read as text, with the codes that say the same to a system.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Coded {
    /// What a person reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The codes, in the order the source gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl Coded {
    /// What a person typed: text, no codes.
    pub fn typed(text: &str) -> Coded {
        let text = text.trim();
        Coded {
            text: (!text.is_empty()).then(|| text.to_string()),
            codings: Vec::new(),
        }
    }

    /// One code read from the old `code` text form: `system|code`, or a bare code.
    pub fn from_code_text(s: &str) -> Coded {
        let s = s.trim();
        let (system, code) = match s.rsplit_once('|') {
            Some((system, code)) if !system.trim().is_empty() => (Some(system.trim().to_string()), code.trim()),
            Some((_, code)) => (None, code.trim()),
            None => (None, s),
        };
        let codings = (!code.is_empty())
            .then(|| Coding {
                system,
                code: code.to_string(),
                display: None,
            })
            .into_iter()
            .collect();
        Coded { text: None, codings }
    }

    /// This value after a person set its text to `text`: the same if unchanged, else text
    /// only (the codings described the old text).
    pub fn edited(&self, text: &str) -> Coded {
        if self.text.as_deref() == Some(text.trim()) {
            self.clone()
        } else {
            Coded::typed(text)
        }
    }

    /// Whether it says nothing at all.
    pub fn is_empty(&self) -> bool {
        self.text.is_none() && self.codings.is_empty()
    }
}

impl fmt::Display for Coded {
    /// Its text, else the first coding's display, else its code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.codings.first();
        let shown = self
            .text
            .as_deref()
            .or_else(|| first.and_then(|c| c.display.as_deref()))
            .or_else(|| first.map(|c| c.code.as_str()))
            .unwrap_or_default();
        f.write_str(shown)
    }
}

/// The stored shapes: the map, or the old code text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Old(String),
    Map {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        codings: Vec<Coding>,
    },
}

impl<'de> Deserialize<'de> for Coded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Stored::deserialize(d)? {
            Stored::Old(code) => Coded::from_code_text(&code),
            Stored::Map { text, codings } => Coded { text, codings },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(v: serde_json::Value) -> Coded {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_old_code_text_still_reads_as_one_coding() {
        let snomed = read(json!("http://snomed.info/sct|195967001"));
        assert_eq!(snomed.codings.len(), 1);
        assert_eq!(snomed.codings[0].system.as_deref(), Some("http://snomed.info/sct"));
        assert_eq!(snomed.codings[0].code, "195967001");
        assert_eq!(snomed.to_string(), "195967001");
        let bare = read(json!("R48.2"));
        assert_eq!(
            (bare.codings[0].system.as_deref(), bare.codings[0].code.as_str()),
            (None, "R48.2")
        );
        assert!(read(json!("")).is_empty());
    }

    #[test]
    fn a_coded_value_is_stored_as_a_map_and_shown_by_its_text() {
        let asthma = read(json!({
            "text": "Asthma",
            "codings": [{ "system": "http://snomed.info/sct", "code": "195967001", "display": "Asthma (disorder)" }]
        }));
        assert_eq!(asthma.to_string(), "Asthma");
        let stored = serde_json::to_value(&asthma).unwrap_or_default();
        assert_eq!(read(stored.clone()), asthma);
        assert_eq!(stored["codings"][0]["display"], "Asthma (disorder)");
        let no_text = Coded { text: None, ..asthma };
        assert_eq!(no_text.to_string(), "Asthma (disorder)");
        assert!(serde_json::from_value::<Coded>(json!(5)).is_err());
    }

    #[test]
    fn editing_the_text_drops_codings_that_described_the_old_text() {
        let asthma = Coded {
            text: Some("Asthma".into()),
            codings: vec![Coding {
                system: Some("http://snomed.info/sct".into()),
                code: "195967001".into(),
                display: None,
            }],
        };
        assert_eq!(asthma.edited(" Asthma "), asthma);
        assert_eq!(asthma.edited("Allergic asthma"), Coded::typed("Allergic asthma"));
        assert!(Coded::typed("  ").is_empty());
    }
}
