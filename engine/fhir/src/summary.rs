//! What an import did per resource type: the table `phr import` prints and the node and portal
//! read as JSON ([`TypeCounts`], in [`crate::ImportReport::types`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use phr_model::section::Section;

/// Outcomes for the resources of one type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    /// The sections its entries are in.
    pub sections: BTreeSet<Section>,
    /// Resources that became new entries.
    pub created: usize,
    /// Resources whose entries changed.
    pub updated: usize,
    /// Resources the record already held as they are.
    pub unchanged: usize,
    /// Session notes that differ from the bundle's but are kept (notes are never rewritten).
    pub kept: usize,
    /// Of the created, updated and unchanged: resources phr holds only as the resource received,
    /// shown as an entry of another section's kind (a Procedure as a condition) and exported
    /// back from that resource alone, since phr has no section of their own for them yet.
    pub source_only: usize,
    /// Resources not imported, per reason (`phr has no place for it`, `survey`, `no information`).
    pub not_imported: BTreeMap<String, usize>,
}

impl TypeCounts {
    /// Resources of this type not imported, whatever the reason.
    pub fn skipped(&self) -> usize {
        self.not_imported.values().sum()
    }
}

/// Why a resource of a type phr does not read was not imported.
pub(crate) const NO_PLACE: &str = "phr has no place for it";

/// What each outcome of [`crate::upsert`] adds to a type's counts.
pub(crate) enum Outcome {
    Created,
    Updated,
    Unchanged,
    Kept,
}

impl TypeCounts {
    pub(crate) fn count(&mut self, section: Section, outcome: Outcome, source_only: bool) {
        self.sections.insert(section);
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Kept => self.kept += 1,
        }
        if source_only {
            self.source_only += 1;
        }
    }
}
