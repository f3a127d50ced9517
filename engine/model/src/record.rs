//! A patient's record in memory: one Automerge document per section, edited through typed,
//! validated operations, every local change signed by the writing device.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, hydrate};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::capability::{Right, Scope};
use crate::change::SignedChange;
use crate::entry::{self, META_KEYS, PATIENT_ENTRY};
use crate::error::{EntryProblem, Error, FieldProblem, Refusal, Result};
use crate::identity::{KeyPair, PublicKey, RecordId, change_signing_message};
use crate::section::Section;
use crate::verify::{ChangeInfo, Clock};

/// Lists appended to after an entry exists, created empty with the entry so that two devices
/// appending concurrently share one list instead of racing to create it.
const APPEND_LISTS: [(Section, &str); 2] = [(Section::Goals, "progress"), (Section::Notes, "amendments")];

/// One entry as read from the record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryView {
    /// Stable id.
    pub id: String,
    /// Section it lives in.
    pub section: Section,
    /// Device key that created it.
    pub author: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Last update time (RFC 3339).
    pub updated: String,
    /// The entry's fields.
    pub fields: Map<String, Value>,
}

impl EntryView {
    /// Deserialize into the section's typed struct.
    pub fn typed<K: entry::EntryKind>(&self) -> Result<K> {
        serde_json::from_value(Value::Object(self.fields.clone())).map_err(|e| Error::InvalidEntry {
            section: self.section,
            problem: EntryProblem::Shape { detail: e.to_string() },
        })
    }
}

/// Concurrent values of one field, all kept by Automerge until someone resolves them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// Section.
    pub section: Section,
    /// Entry id.
    pub entry: String,
    /// Field path inside the entry.
    pub field: String,
    /// Each concurrent value with the device that wrote it.
    pub values: Vec<ConflictValue>,
}

/// One side of a conflict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictValue {
    /// The value.
    pub value: Value,
    /// Device key (hex) that wrote it.
    pub author: String,
}

/// One change in a section's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryItem {
    /// Section.
    pub section: Section,
    /// Change hash (hex).
    pub hash: String,
    /// Device key (hex) that made it.
    pub author: String,
    /// Unix seconds.
    pub time: i64,
    /// What it did.
    pub message: String,
}

/// A patient's record: its section documents and the device writing into them.
pub struct Record {
    id: RecordId,
    author: KeyPair,
    /// The sections that hold or held anything; the others are made on first write, because a
    /// node loading thousands of records paid for fifteen empty documents each.
    docs: BTreeMap<Section, AutoCommit>,
    pending: Vec<SignedChange>,
    /// Per section, each author's newest change; computed on first use, then kept current.
    clocks: BTreeMap<Section, Clock>,
    /// What this writer may change, when it holds a grant rather than being the patient's device.
    limits: Option<(String, Scope)>,
    /// While [`Record::batched`] runs: the sections edited so far, committed once at its end.
    batch: Option<std::collections::BTreeSet<Section>>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn new_entry_id() -> String {
    // 64 random bits: collisions within one record are vanishingly unlikely, and a short
    // id is easy to read aloud and type.
    hex::encode(crate::crypto::random_bytes::<8>())
}

impl Record {
    /// An empty record written by `author`.
    pub fn new(id: RecordId, author: KeyPair) -> Self {
        Record {
            id,
            author,
            docs: BTreeMap::new(),
            pending: Vec::new(),
            clocks: BTreeMap::new(),
            limits: None,
            batch: None,
        }
    }

    /// A record whose section documents were loaded elsewhere (from a store).
    pub fn from_docs(id: RecordId, author: KeyPair, loaded: BTreeMap<Section, AutoCommit>) -> Self {
        let actor = ActorId::from(author.public().0);
        let docs = loaded
            .into_iter()
            .filter(|(s, _)| Section::SYNCED.contains(s))
            .map(|(s, doc)| (s, doc.with_actor(actor.clone())))
            .collect();
        Record {
            id,
            author,
            docs,
            pending: Vec::new(),
            clocks: BTreeMap::new(),
            limits: None,
            batch: None,
        }
    }

    /// Write from now on as `author` (a node writing as one of its clinicians); returns the
    /// previous author so the caller can switch back.
    pub fn set_author(&mut self, author: KeyPair) -> KeyPair {
        let actor = ActorId::from(author.public().0);
        for doc in self.docs.values_mut() {
            doc.set_actor(actor.clone());
        }
        std::mem::replace(&mut self.author, author)
    }

    /// The grant scope local edits are held to, if any.
    pub fn limits(&self) -> Option<&(String, Scope)> {
        self.limits.as_ref()
    }

    /// Restrict local edits to a grant's scope (`None`: the patient's own device).
    pub fn set_limits(&mut self, limits: Option<(String, Scope)>) {
        self.limits = limits;
    }

    /// Refuse, before anything is written, an edit outside this writer's rights.
    fn check_right(&self, section: Section, want: Right) -> Result<()> {
        if section == Section::Audit {
            return Err(Error::NotAllowed(Refusal::AuditLogIsKept));
        }
        let Some((label, scope)) = &self.limits else {
            return Ok(());
        };
        if scope.get(&section).is_some_and(|r| r.covers(want)) {
            return Ok(());
        }
        Err(Error::NotAllowed(Refusal::OutsideGrant {
            label: label.clone(),
            section,
            writable: scope
                .iter()
                .filter(|(_, r)| r.writes())
                .map(|(s, r)| (*s, *r))
                .collect(),
        }))
    }

    /// Append an event to the audit log (the patient's own devices only; a no-op elsewhere).
    pub fn audit(&mut self, kind: &str, detail: &str, subject: Option<&str>, sections: &[Section]) -> Result<()> {
        if self.limits.is_some() {
            return Ok(());
        }
        let mut fields = Map::new();
        fields.insert("kind".into(), Value::String(kind.into()));
        fields.insert("detail".into(), Value::String(detail.into()));
        if let Some(s) = subject {
            fields.insert("subject".into(), Value::String(s.into()));
        }
        if !sections.is_empty() {
            fields.insert(
                "sections".into(),
                Value::Array(sections.iter().map(|s| Value::String(s.name().into())).collect()),
            );
        }
        let id = new_entry_id();
        self.insert_unchecked(Section::Audit, &id, fields)
    }

    /// The record's id (the patient's root public key).
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// The device that writes local edits.
    pub fn author(&self) -> PublicKey {
        self.author.public()
    }

    /// A section's document (made, empty, if the section never held anything).
    pub fn doc(&mut self, section: Section) -> &mut AutoCommit {
        let author = &self.author;
        self.docs
            .entry(section)
            .or_insert_with(|| AutoCommit::new().with_actor(ActorId::from(author.public().0)))
    }

    /// A section's document, read-only.
    pub fn doc_ref(&self, section: Section) -> Option<&AutoCommit> {
        self.docs.get(&section)
    }

    /// Signed local changes not yet handed to the store.
    pub fn take_pending(&mut self) -> Vec<SignedChange> {
        std::mem::take(&mut self.pending)
    }

    /// Whether there are local changes not yet persisted.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Apply already-verified changes from elsewhere, in one batch per section.
    pub fn apply_verified(&mut self, section: Section, changes: Vec<Change>) -> Result<()> {
        let infos: Vec<ChangeInfo> = changes.iter().map(ChangeInfo::of_change).collect();
        self.doc(section).apply_changes_batch(changes)?;
        if let Some(clock) = self.clocks.get_mut(&section) {
            for c in infos {
                if let Some(a) = c.author
                    && clock.get(&a).is_none_or(|(s, _)| *s < c.seq)
                {
                    clock.insert(a, (c.seq, c.hash));
                }
            }
        }
        Ok(())
    }

    /// Replace a section's document wholesale (with one received and verified as a whole).
    pub fn replace_doc(&mut self, section: Section, doc: AutoCommit) {
        let actor = ActorId::from(self.author.public().0);
        self.docs.insert(section, doc.with_actor(actor));
        self.clocks.remove(&section);
    }

    /// Each author's newest change in a section.
    pub fn clock(&mut self, section: Section) -> &Clock {
        if !self.clocks.contains_key(&section) {
            let mut clock = Clock::new();
            let metas = match self.docs.get_mut(&section) {
                Some(doc) => doc.get_changes_meta(&[]),
                None => Vec::new(),
            };
            for m in metas {
                let info = ChangeInfo::of_meta(&m);
                if let Some(a) = info.author
                    && clock.get(&a).is_none_or(|(s, _)| *s < info.seq)
                {
                    clock.insert(a, (info.seq, info.hash));
                }
            }
            self.clocks.insert(section, clock);
        }
        self.clocks.entry(section).or_default()
    }

    /// Whether a section holds a change.
    pub fn has_change(&mut self, section: Section, hash: &[u8; 32]) -> bool {
        self.docs
            .get_mut(&section)
            .is_some_and(|doc| doc.get_change_meta_by_hash(&ChangeHash(*hash)).is_some())
    }

    /// Run `edits` as one change per section touched instead of one per operation, so a bulk
    /// import of thousands of entries signs and stores a handful of changes. If `edits` fails,
    /// every operation it made is rolled back and nothing is committed.
    pub fn batched<T>(&mut self, message: &str, edits: impl FnOnce(&mut Record) -> Result<T>) -> Result<T> {
        if self.batch.is_some() {
            return edits(self);
        }
        self.batch = Some(Default::default());
        let out = edits(self);
        let touched = self.batch.take().unwrap_or_default();
        match out {
            Ok(out) => {
                for section in touched {
                    self.commit(section, message.to_string())?;
                }
                Ok(out)
            }
            Err(e) => {
                // Every document, not just those committed to: the failing operation may have
                // put some values before it failed.
                for doc in self.docs.values_mut() {
                    doc.rollback();
                }
                Err(e)
            }
        }
    }

    /// Make again, as a new change of this device, what `lost` did: this device's own changes
    /// of `section` that a revocation or removal dropped only because they were built on
    /// withdrawn changes. Edits of objects that went with the withdrawn changes are gone with
    /// them; the rest (a caregivers'-log entry, a progress step) is kept. Returns how many
    /// operations were made again.
    pub fn remake(&mut self, section: Section, lost: &[Change]) -> Result<usize> {
        use automerge::legacy::{Key, ObjectId, OpType};
        // Objects the lost changes created, by their old id, as made again here.
        let mut made: std::collections::HashMap<String, ObjId> = std::collections::HashMap::new();
        let mut count = 0;
        let doc = self.doc(section);
        for change in lost {
            let actor = change.actor_id().to_hex_string();
            let start = change.start_op().get();
            for (i, op) in change.decode().operations.iter().enumerate() {
                let obj = match &op.obj {
                    ObjectId::Root => Some(ROOT),
                    ObjectId::Id(id) => {
                        let old = format!("{}@{}", id.0, id.1.to_hex_string());
                        made.get(&old)
                            .cloned()
                            .or_else(|| doc.import(&old).ok().map(|(o, _)| o))
                    }
                };
                let Some(obj) = obj else { continue };
                let created = format!("{}@{actor}", start + i as u64);
                let done = match (&op.key, &op.action) {
                    (Key::Map(k), OpType::Make(t)) => doc.put_object(&obj, k.as_str(), *t).map(|o| {
                        made.insert(created, o);
                    }),
                    (Key::Map(k), OpType::Put(v)) => doc.put(&obj, k.as_str(), v.clone()),
                    (Key::Map(k), OpType::Delete) => doc.delete(&obj, k.as_str()),
                    (Key::Map(k), OpType::Increment(n)) => doc.increment(&obj, k.as_str(), *n),
                    // Appended to a list (progress, amendments): appended again, in order.
                    (Key::Seq(_), OpType::Make(t)) if op.insert => {
                        let at = doc.length(&obj);
                        doc.insert_object(&obj, at, *t).map(|o| {
                            made.insert(created, o);
                        })
                    }
                    (Key::Seq(_), OpType::Put(v)) if op.insert => {
                        let at = doc.length(&obj);
                        doc.insert(&obj, at, v.clone())
                    }
                    // Rewriting or deleting list elements, and marks: phr's entries make none.
                    _ => continue,
                };
                match done {
                    Ok(()) => count += 1,
                    Err(e) => tracing::warn!(%section, "could not make an edit again: {e}"),
                }
            }
        }
        if count > 0 {
            self.commit(
                section,
                "make again what a withdrawal dropped with the changes it was built on".into(),
            )?;
        }
        Ok(count)
    }

    fn commit(&mut self, section: Section, message: String) -> Result<()> {
        if let Some(touched) = self.batch.as_mut() {
            touched.insert(section);
            return Ok(());
        }
        let time = chrono::Utc::now().timestamp();
        let doc = self.doc(section);
        if doc
            .commit_with(CommitOptions::default().with_message(message).with_time(time))
            .is_none()
        {
            return Ok(());
        }
        let mut change = doc
            .get_last_local_change()
            .ok_or_else(|| Error::internal("a committed change went missing"))?;
        let msg = change_signing_message(&self.id, section, &change.hash().0);
        let me = self.author.public();
        if let Some(clock) = self.clocks.get_mut(&section) {
            clock.insert(me, (change.seq(), change.hash().0));
        }
        self.pending.push(SignedChange {
            section,
            hash: change.hash().0,
            bytes: change.bytes().into_owned(),
            signature: self.author.sign(&msg),
        });
        Ok(())
    }

    // Entries live directly in each section document's root map, keyed by id: the root exists
    // in every replica from the start, so entries added on two devices always merge.
    fn entry_obj(&self, section: Section, id: &str) -> Result<Option<ObjId>> {
        let Some(doc) = self.docs.get(&section) else {
            return Ok(None);
        };
        match doc.get(ROOT, id)? {
            Some((automerge::Value::Object(ObjType::Map), obj)) => Ok(Some(obj)),
            _ => Ok(None),
        }
    }

    /// Resolve a full id or a unique prefix of one.
    pub fn resolve_id(&self, section: Section, prefix: &str) -> Result<String> {
        let ids = self.ids(section);
        if ids.iter().any(|i| i == prefix) {
            return Ok(prefix.to_string());
        }
        let matches: Vec<_> = ids.into_iter().filter(|i| i.starts_with(prefix)).collect();
        match matches.len() {
            0 => Err(Error::NoSuchEntry {
                section,
                id: prefix.into(),
            }),
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            _ => Err(Error::AmbiguousId {
                section,
                id: prefix.into(),
            }),
        }
    }

    fn ids(&self, section: Section) -> Vec<String> {
        let Some(doc) = self.docs.get(&section) else {
            return Vec::new();
        };
        doc.keys(ROOT).collect()
    }

    /// Add a new entry from already-parsed fields; returns its id.
    pub fn add(&mut self, section: Section, fields: Map<String, Value>) -> Result<String> {
        let requested = fields.get("status").is_none_or(|s| s == "requested");
        if section == Section::Appointments && requested {
            self.check_right(section, Right::Request)?;
        } else {
            self.check_right(section, Right::Write)?;
        }
        let id = if section == Section::Profile {
            if self.entry_obj(section, PATIENT_ENTRY)?.is_some() {
                return Err(Error::NotAllowed(Refusal::ProfileExists));
            }
            PATIENT_ENTRY.to_string()
        } else {
            new_entry_id()
        };
        self.insert_unchecked(section, &id, fields)?;
        Ok(id)
    }

    /// Insert an entry under a chosen id (used for imports that keep a source id).
    pub fn insert_entry(&mut self, section: Section, id: &str, fields: Map<String, Value>) -> Result<()> {
        self.check_right(section, Right::Write)?;
        self.insert_unchecked(section, id, fields)
    }

    fn insert_unchecked(&mut self, section: Section, id: &str, fields: Map<String, Value>) -> Result<()> {
        let mut fields = entry::validate(section, &fields)?;
        let now = now_rfc3339();
        fields.insert("author".into(), Value::String(self.author.public().to_string()));
        fields.insert("created".into(), Value::String(now.clone()));
        fields.insert("updated".into(), Value::String(now));
        let batched = self.batch.is_some();
        let doc = self.doc(section);
        if batched {
            // A bulk write (an import of thousands of entries): Automerge creates the whole
            // entry in two splices of its op set instead of one per field, which is most of the
            // cost of adding an entry. The ops are the same as below, in breadth-first order.
            doc.batch_create_object(ROOT, id, &entry_tree(section, &fields), false)?;
        } else {
            let obj = doc.put_object(ROOT, id, ObjType::Map)?;
            for (k, v) in &fields {
                put_json(doc, &obj, k, v)?;
            }
            for (s, list) in APPEND_LISTS {
                if s == section && !fields.contains_key(list) {
                    doc.put_object(&obj, list, ObjType::List)?;
                }
            }
        }
        self.commit(section, format!("add {section} {id}"))
    }

    /// Insert new entries of one section under chosen ids (a bulk import). Into a section that
    /// holds nothing yet, not even history, they go in as one bulk operation on the document's
    /// root, several times cheaper than one entry at a time.
    pub fn insert_entries(&mut self, section: Section, entries: Vec<(String, Map<String, Value>)>) -> Result<()> {
        self.check_right(section, Right::Write)?;
        let empty = self
            .docs
            .get(&section)
            .is_none_or(|d| d.is_empty() && d.pending_ops() == 0);
        if !empty || entries.len() < 2 {
            for (id, fields) in entries {
                self.insert_unchecked(section, &id, fields)?;
            }
            return Ok(());
        }
        let now = now_rfc3339();
        let author = self.author.public().to_string();
        let mut root = std::collections::HashMap::with_capacity(entries.len());
        for (id, fields) in &entries {
            let mut fields = entry::validate(section, fields)?;
            fields.insert("author".into(), Value::String(author.clone()));
            fields.insert("created".into(), Value::String(now.clone()));
            fields.insert("updated".into(), Value::String(now.clone()));
            root.insert(id.clone(), entry_tree(section, &fields));
        }
        self.doc(section).init_root_from_hydrate(&root.into())?;
        self.commit(section, format!("add {} {section} entries", entries.len()))
    }

    /// Change some fields of an entry; each field merges on its own with concurrent edits.
    pub fn edit(&mut self, section: Section, id: &str, changes: Map<String, Value>) -> Result<()> {
        self.check_right(section, Right::Write)?;
        if section == Section::Notes {
            return Err(Error::NotAllowed(Refusal::NoteRewrite));
        }
        if let Some(bad) = changes.keys().find(|k| META_KEYS.contains(&k.as_str())) {
            return Err(Error::NotAllowed(Refusal::KeptField { field: bad.to_string() }));
        }
        self.update(section, id, changes, "edit")
    }

    fn update(&mut self, section: Section, id: &str, changes: Map<String, Value>, verb: &str) -> Result<()> {
        let obj = self
            .entry_obj(section, id)?
            .ok_or_else(|| Error::NoSuchEntry { section, id: id.into() })?;
        let current = self.read_entry(section, id)?.map(|e| e.fields).unwrap_or_default();
        let mut merged = current.clone();
        for (k, v) in &changes {
            merged.insert(k.clone(), v.clone());
        }
        let normal = entry::validate(section, &merged)?;
        let mut touched: Vec<String> = Vec::new();
        let doc = self.doc(section);
        for (k, v) in &normal {
            // A field changed on two devices at once is written even when the value asked
            // for is the one shown now: writing it is what settles the conflict.
            let settles = changes.contains_key(k) && doc.get_all(&obj, k.as_str())?.len() > 1;
            if current.get(k) != Some(v) || settles {
                put_json(doc, &obj, k, v)?;
                touched.push(k.clone());
            }
        }
        if touched.is_empty() {
            return Ok(());
        }
        doc.put(&obj, "updated", now_rfc3339())?;
        self.commit(section, format!("{verb} {section} {id}: {}", touched.join(", ")))
    }

    /// Settle a field that was changed on several devices at once: `value` (one of the
    /// concurrent values, or any other) becomes its only value, written as a new change over
    /// all of them, even when it equals the value shown now. Unlike an edit (which settles a
    /// conflicted field it is given too), it refuses a field with no conflict. Only a top-level field that
    /// [`conflicts`](Self::conflicts) lists; notes are not rewritten, so not settled either.
    pub fn resolve(&mut self, section: Section, id: &str, field: &str, value: Value) -> Result<()> {
        self.check_right(section, Right::Write)?;
        if section == Section::Notes {
            return Err(Error::NotAllowed(Refusal::NoteRewrite));
        }
        if META_KEYS.contains(&field) {
            return Err(Error::NotAllowed(Refusal::KeptField { field: field.into() }));
        }
        let open = self
            .conflicts()?
            .iter()
            .any(|c| c.section == section && c.entry == id && c.field == field);
        if !open {
            return Err(Error::NotAllowed(Refusal::NoConflict {
                section,
                id: id.into(),
                field: field.into(),
            }));
        }
        let obj = self
            .entry_obj(section, id)?
            .ok_or_else(|| Error::NoSuchEntry { section, id: id.into() })?;
        let mut fields = self.read_entry(section, id)?.map(|e| e.fields).unwrap_or_default();
        fields.insert(field.into(), value);
        let normal = entry::validate(section, &fields)?;
        let doc = self.doc(section);
        match normal.get(field) {
            Some(v) => put_json(doc, &obj, field, v)?,
            None => doc.delete(&obj, field)?,
        }
        doc.put(&obj, "updated", now_rfc3339())?;
        self.commit(section, format!("resolve {section} {id}: {field}"))
    }

    /// Mark a medication stopped on a date; it stays in the record.
    pub fn stop_medication(&mut self, id: &str, date: chrono::NaiveDate, reason: Option<&str>) -> Result<()> {
        self.check_right(Section::Medications, Right::Write)?;
        let mut changes = Map::new();
        changes.insert("status".into(), Value::String("stopped".into()));
        changes.insert("stopped".into(), Value::String(date.to_string()));
        if let Some(r) = reason {
            changes.insert("stop_reason".into(), Value::String(r.into()));
        }
        self.update(Section::Medications, id, changes, "stop")
    }

    fn append_item(
        &mut self,
        section: Section,
        id: &str,
        list: &str,
        item: Map<String, Value>,
        verb: &str,
    ) -> Result<()> {
        let obj = self
            .entry_obj(section, id)?
            .ok_or_else(|| Error::NoSuchEntry { section, id: id.into() })?;
        // Validate the entry as it will be, before touching the document.
        let mut after = self.read_entry(section, id)?.map(|e| e.fields).unwrap_or_default();
        match after
            .entry(list.to_string())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items.push(Value::Object(item.clone())),
            _ => {
                return Err(Error::InvalidEntry {
                    section,
                    problem: EntryProblem::NotAList {
                        field: list.to_string(),
                    },
                });
            }
        }
        entry::validate(section, &after)?;
        let doc = self.doc(section);
        let list_obj = match doc.get(&obj, list)? {
            Some((automerge::Value::Object(ObjType::List), l)) => l,
            _ => doc.put_object(&obj, list, ObjType::List)?,
        };
        let at = doc.length(&list_obj);
        let item_obj = doc.insert_object(&list_obj, at, ObjType::Map)?;
        for (k, v) in &item {
            put_json(doc, &item_obj, k, v)?;
        }
        doc.put(&obj, "updated", now_rfc3339())?;
        self.commit(section, format!("{verb} {section} {id}"))
    }

    /// Record a dated, measured step of progress on a goal.
    pub fn goal_progress(&mut self, id: &str, date: chrono::NaiveDate, value: f64, note: Option<&str>) -> Result<()> {
        self.check_right(Section::Goals, Right::Progress)?;
        entry::check_measure(Section::Goals, "value", value)?;
        let mut item = Map::new();
        item.insert("date".into(), Value::String(date.to_string()));
        item.insert("value".into(), Value::from(value));
        if let Some(n) = note {
            item.insert("note".into(), Value::String(n.into()));
        }
        item.insert("author".into(), Value::String(self.author.public().to_string()));
        self.append_item(Section::Goals, id, "progress", item, "progress")
    }

    /// Add a correction to a session note; the original text is kept as written.
    pub fn amend_note(&mut self, id: &str, text: &str, reason: Option<&str>) -> Result<()> {
        self.check_right(Section::Notes, Right::Write)?;
        if text.trim().is_empty() {
            return Err(Error::InvalidField {
                section: Section::Notes,
                field: "text".into(),
                problem: FieldProblem::EmptyAmendment,
            });
        }
        let mut item = Map::new();
        item.insert("text".into(), Value::String(text.into()));
        if let Some(r) = reason {
            item.insert("reason".into(), Value::String(r.into()));
        }
        item.insert("author".into(), Value::String(self.author.public().to_string()));
        item.insert("at".into(), Value::String(now_rfc3339()));
        self.append_item(Section::Notes, id, "amendments", item, "amend")
    }

    /// One entry, if present.
    pub fn read_entry(&self, section: Section, id: &str) -> Result<Option<EntryView>> {
        let Some(obj) = self.entry_obj(section, id)? else {
            return Ok(None);
        };
        let Some(doc) = self.docs.get(&section) else {
            return Ok(None);
        };
        let Value::Object(mut fields) = read_json(doc, &obj)? else {
            return Ok(None);
        };
        let mut take = |k: &str| match fields.remove(k) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let author = take("author");
        let created = take("created");
        let updated = take("updated");
        Ok(Some(EntryView {
            id: id.to_string(),
            section,
            author,
            created,
            updated,
            fields,
        }))
    }

    /// Every entry of a section, oldest first.
    pub fn list(&self, section: Section) -> Result<Vec<EntryView>> {
        let mut out = Vec::new();
        for id in self.ids(section) {
            if let Some(e) = self.read_entry(section, &id)? {
                out.push(e);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Number of entries in a section.
    pub fn count(&self, section: Section) -> usize {
        self.ids(section).len()
    }

    /// Fields with concurrent values that nobody has resolved yet.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        let mut out = Vec::new();
        for (section, doc) in &self.docs {
            for id in doc.keys(ROOT).collect::<Vec<_>>() {
                // Concurrent creation of the same id (only `patient`) is itself a conflict.
                let all = doc.get_all(ROOT, id.as_str())?;
                if all.len() > 1 {
                    out.push(conflict_of(doc, *section, &id, "(whole entry)", all)?);
                }
                if let Some((_, obj)) = doc.get(ROOT, id.as_str())? {
                    collect_conflicts(doc, *section, &id, &obj, "", &mut out)?;
                }
            }
        }
        Ok(out)
    }

    /// Who changed what and when, oldest first; one section or all.
    pub fn history(&mut self, only: Option<Section>) -> Vec<HistoryItem> {
        let mut out = Vec::new();
        for (section, doc) in self.docs.iter_mut() {
            if only.is_some_and(|s| s != *section) {
                continue;
            }
            for meta in doc.get_changes_meta(&[]) {
                out.push(HistoryItem {
                    section: *section,
                    hash: meta.hash.to_string(),
                    author: hex::encode(meta.actor.to_bytes()),
                    time: meta.timestamp,
                    message: meta.message.as_deref().unwrap_or_default().to_string(),
                });
            }
        }
        out.sort_by_key(|h| h.time);
        out
    }

    /// `entries` of `section` oldest first, in the order they were written: by creation time,
    /// and within one second (all `created` resolves) by the counter of the write that made each
    /// (Automerge's Lamport counter), which is above that of everything its writer had seen
    /// when writing it; the id breaks what ties remain.
    pub fn in_write_order(&self, section: Section, entries: Vec<EntryView>) -> Vec<EntryView> {
        let counter = |id: &str| match self.docs.get(&section).and_then(|d| d.get(ROOT, id).ok().flatten()) {
            Some((_, ObjId::Id(counter, _, _))) => counter,
            _ => 0,
        };
        let mut keyed: Vec<(String, u64, EntryView)> = entries
            .into_iter()
            .map(|e| (e.created.clone(), counter(&e.id), e))
            .collect();
        keyed.sort_by(|a, b| (&a.0, a.1, &a.2.id).cmp(&(&b.0, b.1, &b.2.id)));
        keyed.into_iter().map(|(_, _, e)| e).collect()
    }

    /// The key that last set `field` of entry `id`: the author of the write that holds the
    /// field's current value (the winning one when concurrent writes conflict). So a clinic
    /// that confirms an appointment is credited for its status though the patient created the
    /// entry. `None` when the entry or the field is not there.
    pub fn field_author(&self, section: Section, id: &str, field: &str) -> Option<PublicKey> {
        let doc = self.docs.get(&section)?;
        let (_, entry) = doc.get(ROOT, id).ok()??;
        match doc.get(&entry, field).ok()?? {
            (_, ObjId::Id(_, actor, _)) => actor.to_bytes().try_into().ok().map(PublicKey),
            _ => None,
        }
    }

    /// A section's document in Automerge's saved form (an empty one if the section never held
    /// anything), as `phr export --format automerge` writes it.
    pub fn saved_section(&mut self, section: Section) -> Vec<u8> {
        self.doc(section).save()
    }

    /// Current heads of a section.
    pub fn heads(&mut self, section: Section) -> Vec<ChangeHash> {
        self.docs
            .get_mut(&section)
            .map(|doc| doc.get_heads())
            .unwrap_or_default()
    }
}

fn conflict_of(
    doc: &AutoCommit,
    section: Section,
    entry: &str,
    field: &str,
    values: Vec<(automerge::Value<'_>, ObjId)>,
) -> Result<Conflict> {
    let mut vals = Vec::new();
    for (v, id) in values {
        let author = match &id {
            ObjId::Id(_, actor, _) => hex::encode(actor.to_bytes()),
            ObjId::Root => String::new(),
        };
        let value = match v {
            automerge::Value::Scalar(s) => scalar_json(&s),
            automerge::Value::Object(_) => read_json(doc, &id)?,
        };
        vals.push(ConflictValue { value, author });
    }
    Ok(Conflict {
        section,
        entry: entry.to_string(),
        field: field.to_string(),
        values: vals,
    })
}

fn collect_conflicts(
    doc: &AutoCommit,
    section: Section,
    entry: &str,
    obj: &ObjId,
    path: &str,
    out: &mut Vec<Conflict>,
) -> Result<()> {
    let keys: Vec<String> = match doc.object_type(obj)? {
        ObjType::Map | ObjType::Table => doc.keys(obj).collect(),
        _ => (0..doc.length(obj)).map(|i| i.to_string()).collect(),
    };
    let is_list = matches!(doc.object_type(obj)?, ObjType::List);
    for key in keys {
        let all = if is_list {
            let idx: usize = key.parse().unwrap_or_default();
            doc.get_all(obj, idx)?
        } else {
            doc.get_all(obj, key.as_str())?
        };
        let field = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        // `updated` is bookkeeping: two devices editing the same entry always race on it.
        if all.len() > 1 && field != "updated" {
            out.push(conflict_of(doc, section, entry, &field, all.clone())?);
        }
        if let Some((automerge::Value::Object(_), child)) = all.last() {
            collect_conflicts(doc, section, entry, child, &field, out)?;
        }
    }
    Ok(())
}

fn scalar_json(s: &ScalarValue) -> Value {
    match s {
        ScalarValue::Str(t) => Value::String(t.to_string()),
        ScalarValue::Int(i) => Value::from(*i),
        ScalarValue::Uint(u) => Value::from(*u),
        ScalarValue::F64(f) => Value::from(*f),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        ScalarValue::Timestamp(t) => Value::from(*t),
        ScalarValue::Counter(c) => Value::from(i64::from(c)),
        ScalarValue::Null => Value::Null,
        other => Value::String(other.to_string()),
    }
}

fn value_json(v: automerge::Value<'static>) -> Value {
    match v {
        automerge::Value::Scalar(s) => scalar_json(&s),
        automerge::Value::Object(_) => Value::Null,
    }
}

/// Read an Automerge object as JSON.
pub(crate) fn read_json<D: ReadDoc>(doc: &D, obj: &ObjId) -> Result<Value> {
    Ok(match doc.object_type(obj)? {
        ObjType::Map | ObjType::Table => {
            let mut m = Map::new();
            for item in doc.map_range(obj, ..) {
                let v = match item.value {
                    automerge::ValueRef::Object(_) => read_json(doc, &item.id())?,
                    other => value_json(other.into()),
                };
                m.insert(item.key.to_string(), v);
            }
            Value::Object(m)
        }
        ObjType::List => {
            let mut items = Vec::new();
            for item in doc.list_range(obj, ..) {
                items.push(match item.value {
                    automerge::ValueRef::Object(_) => read_json(doc, &item.id())?,
                    other => value_json(other.into()),
                });
            }
            Value::Array(items)
        }
        ObjType::Text => Value::String(doc.text(obj)?),
    })
}

/// A new entry as Automerge builds objects in bulk: its fields, and the empty lists appended
/// to later.
fn entry_tree(section: Section, fields: &Map<String, Value>) -> hydrate::Value {
    let mut tree: std::collections::HashMap<String, hydrate::Value> = fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), hydrate_json(v)))
        .collect();
    for (s, list) in APPEND_LISTS {
        if s == section && !fields.contains_key(list) {
            tree.insert(list.to_string(), hydrate::Value::list());
        }
    }
    hydrate::Value::Map(tree.into())
}

/// A JSON value as Automerge builds objects in bulk; the same values [`put_json`] writes (a
/// null map value is left out, a null list item kept).
fn hydrate_json(value: &Value) -> hydrate::Value {
    match value {
        Value::Null => hydrate::Value::scalar(ScalarValue::Null),
        Value::Bool(b) => hydrate::Value::scalar(*b),
        Value::Number(n) => hydrate::Value::scalar(n.as_f64().unwrap_or_default()),
        Value::String(s) => hydrate::Value::scalar(s.as_str()),
        Value::Array(items) => hydrate::Value::List(items.iter().map(hydrate_json).collect::<Vec<_>>().into()),
        Value::Object(map) => hydrate::Value::Map(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), hydrate_json(v)))
                .collect::<std::collections::HashMap<_, _>>()
                .into(),
        ),
    }
}

fn put_json(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: &Value) -> Result<()> {
    match value {
        Value::Null => doc.delete(obj, key)?,
        Value::Bool(b) => doc.put(obj, key, *b)?,
        Value::Number(n) => doc.put(obj, key, n.as_f64().unwrap_or_default())?,
        Value::String(s) => doc.put(obj, key, s.as_str())?,
        Value::Array(items) => {
            let list = doc.put_object(obj, key, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                insert_json(doc, &list, i, item)?;
            }
        }
        Value::Object(map) => {
            let child = doc.put_object(obj, key, ObjType::Map)?;
            for (k, v) in map {
                put_json(doc, &child, k, v)?;
            }
        }
    }
    Ok(())
}

fn insert_json(doc: &mut AutoCommit, list: &ObjId, at: usize, value: &Value) -> Result<()> {
    match value {
        Value::Null => doc.insert(list, at, ScalarValue::Null)?,
        Value::Bool(b) => doc.insert(list, at, *b)?,
        Value::Number(n) => doc.insert(list, at, n.as_f64().unwrap_or_default())?,
        Value::String(s) => doc.insert(list, at, s.as_str())?,
        Value::Array(items) => {
            let child = doc.insert_object(list, at, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                insert_json(doc, &child, i, item)?;
            }
        }
        Value::Object(map) => {
            let child = doc.insert_object(list, at, ObjType::Map)?;
            for (k, v) in map {
                put_json(doc, &child, k, v)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Map<String, Value> {
        let fields = serde_json::json!({ "thread": "Homework", "body": body });
        fields.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn entries_come_in_write_order_and_a_field_names_its_last_writer() {
        let mut r = Record::new(KeyPair::generate().public(), KeyPair::generate());
        let patient = r.author();
        let ids: Vec<String> = ["one", "two", "three"]
            .iter()
            .map(|b| r.add(Section::Messages, message(b)).unwrap())
            .collect();
        let listed = r.list(Section::Messages).unwrap();
        let ordered: Vec<String> = r
            .in_write_order(Section::Messages, listed)
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ordered, ids);

        assert_eq!(r.field_author(Section::Messages, &ids[0], "body"), Some(patient));
        let clinic = KeyPair::generate();
        let clinic_key = clinic.public();
        r.set_author(clinic);
        r.edit(Section::Messages, &ids[0], message("edited")).unwrap();
        assert_eq!(r.field_author(Section::Messages, &ids[0], "body"), Some(clinic_key));
        assert_eq!(r.field_author(Section::Messages, &ids[1], "body"), Some(patient));
        assert_eq!(r.field_author(Section::Messages, &ids[0], "to"), None);
        assert_eq!(r.field_author(Section::Messages, "nope", "body"), None);
        assert_eq!(r.field_author(Section::Labs, &ids[0], "body"), None);
        assert!(!r.saved_section(Section::Labs).is_empty());
    }
}
