//! The document model both renderers draw: a report laid out as blocks, before it is HTML or
//! PDF.

use crate::chart::Chart;

/// A report laid out as blocks, before it is HTML or PDF.
pub struct Doc {
    /// Main title.
    pub title: String,
    /// Lines under the title: audience, period, what is left out.
    pub lines: Vec<String>,
    /// The confidentiality notice.
    pub notice: String,
    /// Short text repeated at the foot of every PDF page.
    pub footer: String,
    /// The body.
    pub blocks: Vec<Block>,
}

/// How a paragraph looks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Style {
    /// Ordinary text.
    Body,
    /// Secondary text: details, empty-part remarks.
    Muted,
    /// A line that heads what follows, such as a session's date and clinician.
    Strong,
    /// A correction added to a note after it was written.
    Amendment,
}

/// A table with column widths as fractions of the page width.
pub struct Table {
    /// Column headers.
    pub head: Vec<String>,
    /// Each column's share of the width.
    pub widths: Vec<f32>,
    /// The cells, row by row.
    pub rows: Vec<Vec<String>>,
}

/// One piece of a report.
pub enum Block {
    /// A part of the report (Patient, Current goals, …).
    Heading(String),
    /// A group within a part: a discipline, a goal.
    Subheading(String),
    /// Label and value pairs.
    Fields(Vec<(String, String)>),
    /// A paragraph, with an optional label beside it (Subjective, Objective, …).
    Para {
        /// Shown beside the text.
        label: Option<String>,
        /// The paragraph; line breaks are kept.
        text: String,
        /// How it looks.
        style: Style,
    },
    /// A table.
    Table(Table),
    /// A progress chart.
    Chart(Chart),
    /// Blocks kept on one page when they fit: one goal, one note.
    Keep {
        /// What the blocks are (`goal`, `note`); the HTML class of their container.
        class: &'static str,
        /// The blocks kept together.
        blocks: Vec<Block>,
    },
}

/// A paragraph without a label.
pub(crate) fn para(text: impl Into<String>, style: Style) -> Block {
    Block::Para {
        label: None,
        text: text.into(),
        style,
    }
}

/// A body paragraph with a label beside it.
pub(crate) fn labelled(label: impl Into<String>, text: impl Into<String>) -> Block {
    Block::Para {
        label: Some(label.into()),
        text: text.into(),
        style: Style::Body,
    }
}
