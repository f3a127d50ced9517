//! What a limited right lets a change do, checked op by op before the change is applied:
//! `progress` may only add progress to existing goals, `request` may only add new appointment
//! requests, and the audit log only ever grows.

use std::collections::HashMap;

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{AutoCommit, Change, ObjType, Prop, ReadDoc, ScalarValue};

use crate::capability::Right;
use crate::section::Section;

/// Where an object sits: its path of props from the document root.
type Path = Vec<String>;

fn prop_name(p: &Prop) -> String {
    match p {
        Prop::Map(k) => k.to_string(),
        Prop::Seq(i) => i.to_string(),
    }
}

/// A progress step's value as a change puts it: a number phr keeps as a measurement (finite,
/// within [`crate::entry::MEASURE_LIMIT`]), so no holder of the `progress` right can put a value
/// that no chart or sum can use.
fn progress_value(action: &OpType) -> Result<(), String> {
    let value = match action {
        OpType::Put(ScalarValue::F64(v)) => *v,
        OpType::Put(ScalarValue::Int(i)) => *i as f64,
        OpType::Put(ScalarValue::Uint(u)) => *u as f64,
        _ => return Err("a progress value must be a number".into()),
    };
    crate::entry::check_measure(Section::Goals, "value", value).map_err(|e| e.to_string())
}

/// How a section restricts changes beyond the author's right, if at all.
pub fn restricted(section: Section, right: Right) -> bool {
    section == Section::Audit || matches!(right, Right::Progress | Right::Request)
}

/// Check that `change` only does what `right` (or the audit log's append-only rule) allows.
///
/// `doc` must hold every object the change touches (the section with the batch applied):
/// objects never move in Automerge, so where an object sits can be read from any later state.
/// Whether a key already existed is judged from the ops' predecessors: an op with none did
/// not overwrite anything its author had seen.
pub fn check(doc: &AutoCommit, change: &Change, section: Section, right: Right) -> Result<(), String> {
    let expanded = change.decode();
    let actor = change.actor_id().clone();
    let start = change.start_op().get();
    // Objects created by this change: op id counter → their path.
    let mut created: HashMap<u64, Path> = HashMap::new();
    for (i, op) in expanded.operations.iter().enumerate() {
        let counter = start + i as u64;
        let parent: Path = match &op.obj {
            ObjectId::Root => Vec::new(),
            ObjectId::Id(id) if id.1 == actor && created.contains_key(&id.0) => created[&id.0].clone(),
            ObjectId::Id(id) => {
                let missing = || "the change edits an object the record does not have".to_string();
                let exid = doc
                    .import_obj(&format!("{}@{}", id.0, id.1.to_hex_string()))
                    .map_err(|_| missing())?;
                doc.object_type(&exid).map_err(|_| missing())?;
                doc.parents(&exid)
                    .map_err(|_| missing())?
                    .path()
                    .iter()
                    .map(|(_, p)| prop_name(p))
                    .collect()
            }
        };
        let key = match &op.key {
            Key::Map(k) => Some(k.to_string()),
            Key::Seq(_) => None,
        };
        if matches!(op.action, OpType::Make(_)) {
            let mut child = parent.clone();
            child.push(key.clone().unwrap_or_else(|| "#".into()));
            created.insert(counter, child);
        }
        let in_created = created
            .iter()
            .any(|(c, p)| *c < counter && !p.is_empty() && parent.starts_with(p));
        let fresh = op.pred.is_empty();
        if section == Section::Goals && right == Right::Progress && in_created && key.as_deref() == Some("value") {
            progress_value(&op.action)?;
        }
        let ok = match (section, right) {
            (Section::Audit, _) | (_, Right::Request) => match parent.as_slice() {
                // A new entry: a map at the root under a key its author had not seen.
                [] => fresh && matches!(op.action, OpType::Make(ObjType::Map)),
                _ if in_created => {
                    let status_ok = section != Section::Appointments
                        || key.as_deref() != Some("status")
                        || matches!(&op.action, OpType::Put(ScalarValue::Str(s)) if s.as_str() == "requested");
                    status_ok && !matches!(op.action, OpType::Delete)
                }
                _ => false,
            },
            (Section::Goals, Right::Progress) => match parent.as_slice() {
                _ if in_created => !matches!(op.action, OpType::Delete),
                [_goal] => match key.as_deref() {
                    Some("updated") => matches!(op.action, OpType::Put(_)),
                    Some("progress") => fresh && matches!(op.action, OpType::Make(ObjType::List)),
                    _ => false,
                },
                [_, list] if list == "progress" => op.insert && !matches!(op.action, OpType::Delete),
                _ => false,
            },
            _ => true,
        };
        if !ok {
            return Err(match (section, right) {
                (Section::Audit, _) => "the audit log can only grow: the change alters past events".into(),
                (_, Right::Progress) => "this access may only add progress to existing goals".into(),
                (_, Right::Request) => "this access may only add new appointment requests".into(),
                _ => "the change does more than its author's access allows".into(),
            });
        }
    }
    Ok(())
}
