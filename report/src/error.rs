//! What can go wrong when making a report. Variants carry data, not advice: the caller (the
//! CLI, later the portal) words them for its audience.

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The record could not be summarized.
    #[error("the record could not be summarized")]
    Summary {
        /// The engine's reason.
        #[source]
        source: phr_model::Error,
    },
    /// A font bundled with the crate could not be parsed.
    #[error("bundled font {name} could not be read")]
    Font {
        /// The font's family and style, such as `DejaVu Sans Bold`.
        name: &'static str,
    },
}
