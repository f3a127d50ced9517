//! Every word the portal shows a person, looked up in one place: the Fluent files under
//! `i18n/LANG/portal.ftl`, embedded at build time. English is the only language so far and the
//! fallback for any missing message; a language is one more line in [`LOCALES`] and one file.

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The languages the portal speaks: a language tag and its messages.
const LOCALES: &[(&str, &str)] = &[("en", include_str!("../../i18n/en/portal.ftl"))];

/// The messages of one language.
pub struct Messages {
    bundle: FluentBundle<FluentResource>,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("locales", &self.bundle.locales)
            .finish()
    }
}

impl Messages {
    /// The English messages (built once).
    pub fn english() -> &'static Messages {
        static EN: OnceLock<Messages> = OnceLock::new();
        EN.get_or_init(|| Messages::load(LOCALES[0].0, LOCALES[0].1))
    }

    /// Build a bundle from one `.ftl` text. A syntax error drops only the broken message
    /// (Fluent parses the rest); `tests` fail on any.
    fn load(tag: &str, text: &str) -> Messages {
        let lang: LanguageIdentifier = tag.parse().unwrap_or_default();
        let resource = FluentResource::try_new(text.to_string()).unwrap_or_else(|(partial, errors)| {
            tracing::error!("{tag} portal messages have {} syntax error(s)", errors.len());
            partial
        });
        let mut bundle = FluentBundle::new_concurrent(vec![lang]);
        // Values are plain text in HTML; bidi isolation of user values is issue 16's (<bdi>).
        bundle.set_use_isolating(false);
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::error!("{tag} portal messages: {errors:?}");
        }
        Messages { bundle }
    }

    /// Whether message `id` exists (an attribute as `id.attr`).
    pub fn has(&self, id: &str) -> bool {
        match id.split_once('.') {
            Some((msg, attr)) => self
                .bundle
                .get_message(msg)
                .is_some_and(|m| m.get_attribute(attr).is_some()),
            None => self.bundle.get_message(id).is_some_and(|m| m.value().is_some()),
        }
    }

    /// Message `id` (or `id.attribute`) without variables.
    pub fn get(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// Message `id` with its variables.
    pub fn with(&self, id: &str, args: &[(&str, Arg)]) -> String {
        let mut fa = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Text(t) => fa.set(*name, FluentValue::from(t.as_str())),
                Arg::Number(n) => fa.set(*name, FluentValue::from(*n)),
            }
        }
        self.format(id, Some(&fa))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let (msg, attr) = match id.split_once('.') {
            Some((m, a)) => (m, Some(a)),
            None => (id, None),
        };
        let pattern = self.bundle.get_message(msg).and_then(|m| match attr {
            Some(a) => m.get_attribute(a).map(|a| a.value()),
            None => m.value(),
        });
        let Some(pattern) = pattern else {
            // A missing message is a bug the tests catch; a page still shows something.
            tracing::warn!("no portal message `{id}`");
            return id.to_string();
        };
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!("portal message `{id}`: {errors:?}");
        }
        text.into_owned()
    }
}

/// A value for a message's variable.
#[derive(Debug, Clone)]
pub enum Arg {
    /// Text (a name, a date already formatted).
    Text(String),
    /// A number (plural forms select on it).
    Number(f64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_file_parses_without_an_error() {
        for (tag, text) in LOCALES {
            if let Err((_, errors)) = FluentResource::try_new(text.to_string()) {
                panic!("i18n/{tag}/portal.ftl: {errors:?}");
            }
        }
    }

    #[test]
    fn every_message_the_code_and_templates_name_exists() {
        let m = Messages::english();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        let mut missing = Vec::new();
        for folder in ["src", "src/pages", "templates"] {
            let Ok(entries) = std::fs::read_dir(format!("{dir}{folder}")) else {
                continue;
            };
            for entry in entries.flatten().filter(|e| !e.path().ends_with("i18n.rs")) {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                for id in named_ids(&text) {
                    if !m.has(&id) {
                        missing.push(format!("{}: {id}", entry.path().display()));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "messages used but not in i18n/en/portal.ftl: {missing:?}"
        );
    }

    /// The ids in `m.get("…")`, `m.with("…"` and (templates) `page.t("…")` calls.
    fn named_ids(text: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for call in ["page.t(\"", "m.get(\"", "m.with(\""] {
            let mut rest = text;
            while let Some(at) = rest.find(call) {
                rest = &rest[at + call.len()..];
                if let Some(end) = rest.find('"') {
                    let id = &rest[..end];
                    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) {
                        ids.push(id.to_string());
                    }
                }
            }
        }
        ids
    }

    #[test]
    fn plural_and_variables_fill_in() {
        let m = Messages::english();
        assert_eq!(
            m.with("list-count", &[("count", Arg::Number(0.0))]),
            "Nothing here yet."
        );
        assert_eq!(m.with("list-count", &[("count", Arg::Number(1.0))]), "One entry.");
        assert_eq!(m.with("list-count", &[("count", Arg::Number(3.0))]), "3 entries.");
        assert_eq!(m.with("list-by", &[("name", "Ana".into())]), "by Ana");
        assert_eq!(m.get("no-such-message"), "no-such-message");
    }
}
