//! What a printable summary of the record holds for one audience: a school's IEP team, a
//! specialist, or an insurer. Entries are chosen, filtered and grouped here, as plain data;
//! turning the result into HTML or PDF is phr-report's job. Every rule about who sees what in a
//! report lives in this module, so the two renderings cannot disagree about it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::access::AccessSet;
use crate::entry::{
    Allergy, Condition, Contact, Coverage, Document, EntryKind, Goal, Immunization, Medication, PATIENT_ENTRY, Patient,
    Procedure, SessionNote, VitalSign,
};
use crate::error::{Error, Refusal, Result};
use crate::identity::PublicKey;
use crate::record::{EntryView, Record};
use crate::section::Section;

/// How far back therapy notes reach when no start date is given.
pub const DEFAULT_DAYS: u64 = 90;

/// The document kind that is an insurance card: insurance data, so only insurers get it.
const INSURANCE_CARD: &str = "insurance-card";

/// Who a report is for; decides which parts of the record it contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// A school's IEP team: what helps at school, and nothing about insurance or diagnoses.
    Iep,
    /// A specialist taking over or consulting: the clinical picture in full.
    Specialist,
    /// A payer: coverage, diagnoses, goals and how many sessions were given; no note text.
    Insurer,
}

impl Audience {
    /// Every audience, in help order.
    pub const ALL: [Audience; 3] = [Audience::Iep, Audience::Specialist, Audience::Insurer];

    /// The name typed after `--for`.
    pub fn name(self) -> &'static str {
        match self {
            Audience::Iep => "iep",
            Audience::Specialist => "specialist",
            Audience::Insurer => "insurer",
        }
    }

    /// Who the report is addressed to, as printed on it.
    pub fn title(self) -> &'static str {
        match self {
            Audience::Iep => "School IEP team",
            Audience::Specialist => "Specialist",
            Audience::Insurer => "Insurer",
        }
    }

    /// One line saying what the audience gets, for help text and the README.
    pub fn contents(self) -> &'static str {
        match self {
            Audience::Iep => {
                "patient (name, date of birth, language, school, guardians), current goals with progress \
                 charts, therapy notes by discipline, session counts, allergies, active medications \
                 (name, dose, schedule, route; not why or by whom prescribed), immunizations only if the \
                 family adds them (--with-immunizations), documents; never insurance, diagnoses, \
                 procedures or stopped medications"
            }
            Audience::Specialist => {
                "patient, diagnoses, procedures, allergies, active and stopped medications, immunizations, \
                 the latest vital signs, current goals with progress charts, therapy notes by discipline \
                 with amendments, session counts, documents; no insurance"
            }
            Audience::Insurer => {
                "patient (name, date of birth, sex, guardians), coverage, active diagnoses, procedures done, \
                 current goals with progress charts, sessions and minutes per discipline, documents; no \
                 note text, medications, allergies, immunizations or vital signs"
            }
        }
    }

    /// The record sections a report for this audience draws on (and so discloses), in print order.
    pub fn sections(self) -> Vec<Section> {
        use Section::*;
        match self {
            Audience::Iep => vec![Profile, Allergies, Medications, Goals, Notes, Documents],
            Audience::Specialist => vec![
                Profile,
                Conditions,
                Procedures,
                Allergies,
                Medications,
                Immunizations,
                Vitals,
                Goals,
                Notes,
                Documents,
            ],
            // A payer reviews the services given: the procedures done (with their codes) are
            // what claims cite; vaccines and vital signs are not theirs to see.
            Audience::Insurer => vec![Profile, Insurance, Conditions, Procedures, Goals, Notes, Documents],
        }
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Audience {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Audience::ALL
            .into_iter()
            .find(|a| a.name() == wanted)
            .ok_or_else(|| Error::NotAllowed(Refusal::UnknownAudience { given: s.to_string() }))
    }
}

/// What to put in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Who it is for.
    pub audience: Audience,
    /// First day of therapy notes and session counts (default: [`DEFAULT_DAYS`] before `today`).
    pub since: Option<NaiveDate>,
    /// The day the report is made; the period ends on it. Given, so building stays pure.
    pub today: NaiveDate,
    /// The family chose to put immunizations in a school's (IEP) report: a school may ask for
    /// them, but the report does not offer them unless told. A specialist's report always has
    /// them, an insurer's never.
    pub with_immunizations: bool,
}

impl Options {
    /// The sections this report draws on (and so discloses), in print order: the audience's,
    /// and immunizations in a school's report when the family added them.
    pub fn sections(&self) -> Vec<Section> {
        let mut sections = self.audience.sections();
        if self.audience == Audience::Iep && self.with_immunizations {
            let at = sections
                .iter()
                .position(|s| *s == Section::Medications)
                .map_or(sections.len(), |i| i + 1);
            sections.insert(at, Section::Immunizations);
        }
        sections
    }
}

/// The patient as a report shows them; fields the audience does not get are left empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatientPart {
    /// Full name.
    pub name: String,
    /// Date of birth.
    pub dob: Option<NaiveDate>,
    /// Sex.
    pub sex: Option<String>,
    /// Preferred language.
    pub language: Option<String>,
    /// School and grade.
    pub school: Option<String>,
    /// Legal guardians.
    pub guardians: Vec<Contact>,
}

/// A current goal with its progress, oldest measurement first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalPart {
    /// Entry id.
    pub id: String,
    /// The goal, `progress` sorted by date.
    pub goal: Goal,
}

/// One part of a session note's SOAP text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoapPart {
    /// Subjective, Objective, Assessment or Plan.
    pub label: &'static str,
    /// The text as written.
    pub text: String,
}

/// A correction added to a note after it was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmendmentPart {
    /// The added text.
    pub text: String,
    /// Why it was added.
    pub reason: Option<String>,
    /// When (RFC 3339).
    pub at: String,
    /// Who added it, if the record's membership names the key.
    pub by: Option<String>,
}

/// One therapy session note in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotePart {
    /// Entry id.
    pub id: String,
    /// Session date.
    pub date: NaiveDate,
    /// Clinician who led the session.
    pub clinician: String,
    /// Session length.
    pub minutes: Option<f64>,
    /// The SOAP parts that were filled in, in S-O-A-P order.
    pub soap: Vec<SoapPart>,
    /// Corrections, oldest first; the original text above is kept as written.
    pub amendments: Vec<AmendmentPart>,
    /// Who entered it into the record (device or grant name), if known.
    pub recorded_by: Option<String>,
}

/// The notes of one discipline, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisciplineNotes {
    /// Discipline as stored (`speech`, `occupational`, …).
    pub discipline: String,
    /// Discipline as printed.
    pub title: String,
    /// Its notes in the period.
    pub notes: Vec<NotePart>,
}

/// How many sessions of one discipline the period holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionCount {
    /// Discipline as stored.
    pub discipline: String,
    /// Discipline as printed.
    pub title: String,
    /// Number of session notes.
    pub sessions: usize,
    /// Minutes, summed over the notes that give them.
    pub minutes: f64,
    /// Notes that give no length (so `minutes` undercounts by them).
    pub without_minutes: usize,
}

/// An entry left out because it could not be read as its section's type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// Its section.
    pub section: Section,
    /// Its id.
    pub id: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Everything a report contains. A part that is `None` is not for this audience; `Some` of an
/// empty list is for it, but the record holds nothing there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Who it is for.
    pub audience: Audience,
    /// The day it was made (end of the period).
    pub generated: NaiveDate,
    /// First day of the period for notes and session counts.
    pub since: NaiveDate,
    /// The patient; `None` if the profile has not reached this device.
    pub patient: Option<PatientPart>,
    /// Insurance coverage, newest first.
    pub coverage: Option<Vec<Coverage>>,
    /// Diagnoses and conditions, active first.
    pub diagnoses: Option<Vec<Condition>>,
    /// Procedures, newest first (an insurer's: those done).
    pub procedures: Option<Vec<Procedure>>,
    /// Active allergies.
    pub allergies: Option<Vec<Allergy>>,
    /// Medications being taken.
    pub medications: Option<Vec<Medication>>,
    /// Medications stopped, most recently stopped first.
    pub stopped_medications: Option<Vec<Medication>>,
    /// Immunizations, newest first.
    pub immunizations: Option<Vec<Immunization>>,
    /// The latest measurement of each vital sign, by name.
    pub vitals: Option<Vec<VitalSign>>,
    /// Current goals (active or on hold), by discipline.
    pub goals: Option<Vec<GoalPart>>,
    /// Session counts and minutes per discipline in the period.
    pub sessions: Option<Vec<SessionCount>>,
    /// Therapy notes in the period, by discipline.
    pub notes: Option<Vec<DisciplineNotes>>,
    /// Attached documents, newest first.
    pub documents: Option<Vec<Document>>,
    /// Entries that could not be read and so are missing from the report.
    pub skipped: Vec<Skipped>,
}

impl Summary {
    /// The activity log's words for this report leaving the device (`to`: where it went, e.g.
    /// "written to FILE").
    pub fn disclosure(&self, to: &str) -> String {
        format!(
            "report for {} ({}) covering {} to {}: {}; {to}",
            self.audience.title(),
            self.audience,
            self.since,
            self.generated,
            self.parts().join(", ")
        )
    }

    /// Names of the parts included, in print order, for the audit log and the CLI's message.
    pub fn parts(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.patient.is_some() {
            out.push("patient");
        }
        let optional = [
            ("coverage", self.coverage.is_some()),
            ("diagnoses", self.diagnoses.is_some()),
            ("procedures", self.procedures.is_some()),
            ("allergies", self.allergies.is_some()),
            ("active medications", self.medications.is_some()),
            ("stopped medications", self.stopped_medications.is_some()),
            ("immunizations", self.immunizations.is_some()),
            ("vital signs", self.vitals.is_some()),
            ("goals", self.goals.is_some()),
            ("session counts", self.sessions.is_some()),
            ("therapy notes", self.notes.is_some()),
            ("documents", self.documents.is_some()),
        ];
        out.extend(optional.into_iter().filter(|(_, on)| *on).map(|(name, _)| name));
        out
    }
}

/// A therapy discipline as printed (`speech` → `Speech therapy`).
pub fn discipline_title(discipline: &str) -> String {
    match discipline {
        "speech" => "Speech therapy".into(),
        "aba" => "ABA therapy".into(),
        "occupational" => "Occupational therapy".into(),
        "physical" => "Physical therapy".into(),
        "psychology" => "Psychology".into(),
        "medical" => "Medical".into(),
        "multidisciplinary" => "Multidisciplinary".into(),
        "" => "Other".into(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// Reads entries as their typed structs, noting the ones that do not read instead of failing
/// the whole report over one odd entry (say, one written by a newer phr).
struct Reader<'a> {
    record: &'a Record,
    skipped: Vec<Skipped>,
}

impl Reader<'_> {
    fn all<K: EntryKind>(&mut self) -> Result<Vec<(EntryView, K)>> {
        let mut out = Vec::new();
        for view in self.record.list(K::SECTION)? {
            match view.typed::<K>() {
                Ok(typed) => out.push((view, typed)),
                Err(e) => self.skipped.push(Skipped {
                    section: K::SECTION,
                    id: view.id.clone(),
                    problem: e.to_string(),
                }),
            }
        }
        Ok(out)
    }
}

/// The name of an author key (hex), from the record's membership.
fn name_of(access: &AccessSet, record: &Record, author: &str) -> Option<String> {
    let key: PublicKey = author.parse().ok()?;
    if key == record.id() {
        return Some("the patient's root key".into());
    }
    access.name_of(&key)
}

/// Assemble what a report for `opts.audience` contains, from the record as this device holds it.
pub fn build(record: &Record, access: &AccessSet, opts: &Options) -> Result<Summary> {
    let audience = opts.audience;
    let since = opts.since.unwrap_or_else(|| {
        opts.today
            .checked_sub_days(Days::new(DEFAULT_DAYS))
            .unwrap_or(NaiveDate::MIN)
    });
    let mut reader = Reader {
        record,
        skipped: Vec::new(),
    };
    let sections = opts.sections();
    let wants = |s: Section| sections.contains(&s);

    // In this order: entries that do not read are listed as skipped in it.
    let patient = reader.patient(audience)?;
    let coverage = if wants(Section::Insurance) {
        Some(reader.coverage()?)
    } else {
        None
    };
    let diagnoses = if wants(Section::Conditions) {
        Some(reader.diagnoses(audience)?)
    } else {
        None
    };
    let procedures = if wants(Section::Procedures) {
        Some(reader.procedures(audience)?)
    } else {
        None
    };
    let allergies = if wants(Section::Allergies) {
        Some(reader.allergies()?)
    } else {
        None
    };
    let (medications, stopped_medications) = if wants(Section::Medications) {
        let (active, stopped) = reader.medications(audience)?;
        (Some(active), stopped)
    } else {
        (None, None)
    };
    let immunizations = if wants(Section::Immunizations) {
        Some(reader.immunizations()?)
    } else {
        None
    };
    let vitals = if wants(Section::Vitals) {
        Some(reader.vitals()?)
    } else {
        None
    };
    let goals = if wants(Section::Goals) {
        Some(reader.goals()?)
    } else {
        None
    };
    let (sessions, notes) = if wants(Section::Notes) {
        let (counts, notes) = reader.sessions(access, audience, since, opts.today)?;
        (Some(counts), notes)
    } else {
        (None, None)
    };
    let documents = if wants(Section::Documents) {
        Some(reader.documents(audience)?)
    } else {
        None
    };

    Ok(Summary {
        audience,
        generated: opts.today,
        since,
        patient,
        coverage,
        diagnoses,
        procedures,
        allergies,
        medications,
        stopped_medications,
        immunizations,
        vitals,
        goals,
        sessions,
        notes,
        documents,
        skipped: reader.skipped,
    })
}

/// The parts of a report, each read from its section as the audience may see it.
impl Reader<'_> {
    fn patient(&mut self, audience: Audience) -> Result<Option<PatientPart>> {
        Ok(match self.record.read_entry(Section::Profile, PATIENT_ENTRY)? {
            Some(view) => match view.typed::<Patient>() {
                Ok(p) => Some(patient_part(p, audience)),
                Err(e) => {
                    self.skipped.push(Skipped {
                        section: Section::Profile,
                        id: view.id,
                        problem: e.to_string(),
                    });
                    None
                }
            },
            None => None,
        })
    }

    fn coverage(&mut self) -> Result<Vec<Coverage>> {
        let mut list: Vec<Coverage> = self.all::<Coverage>()?.into_iter().map(|(_, c)| c).collect();
        list.sort_by_key(|c| std::cmp::Reverse(c.start));
        Ok(list)
    }

    fn diagnoses(&mut self, audience: Audience) -> Result<Vec<Condition>> {
        let mut list: Vec<Condition> = self
            .all::<Condition>()?
            .into_iter()
            .map(|(_, c)| c)
            // Payers need the diagnoses being treated; past ones are the specialist's business.
            .filter(|c| audience != Audience::Insurer || c.status == "active")
            .collect();
        list.sort_by_key(|c| c.status != "active");
        Ok(list)
    }

    fn procedures(&mut self, audience: Audience) -> Result<Vec<Procedure>> {
        let mut list: Vec<Procedure> = self
            .all::<Procedure>()?
            .into_iter()
            .map(|(_, p)| p)
            // A payer reviews what was done, not what was planned or not done.
            .filter(|p| audience != Audience::Insurer || p.status == "completed")
            .collect();
        list.sort_by_key(|p| std::cmp::Reverse(p.date));
        Ok(list)
    }

    fn immunizations(&mut self) -> Result<Vec<Immunization>> {
        let mut list: Vec<Immunization> = self.all::<Immunization>()?.into_iter().map(|(_, i)| i).collect();
        list.sort_by_key(|i| std::cmp::Reverse(i.date));
        Ok(list)
    }

    /// The newest measurement of each vital sign (by name), newest first.
    fn vitals(&mut self) -> Result<Vec<VitalSign>> {
        let mut latest: BTreeMap<String, VitalSign> = BTreeMap::new();
        for (_, v) in self.all::<VitalSign>()? {
            let newer = latest.get(&v.name).is_none_or(|seen| v.date > seen.date);
            if newer {
                latest.insert(v.name.clone(), v);
            }
        }
        let mut list: Vec<VitalSign> = latest.into_values().collect();
        list.sort_by_key(|v| std::cmp::Reverse(v.date));
        Ok(list)
    }

    fn allergies(&mut self) -> Result<Vec<Allergy>> {
        Ok(self
            .all::<Allergy>()?
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| a.status == "active")
            .collect())
    }

    /// The medications taken, and (for a specialist) those stopped, newest first.
    fn medications(&mut self, audience: Audience) -> Result<(Vec<Medication>, Option<Vec<Medication>>)> {
        let (mut stopped, active): (Vec<Medication>, Vec<Medication>) = self
            .all::<Medication>()?
            .into_iter()
            .map(|(_, m)| m)
            .partition(|m| m.status == "stopped");
        let active = if audience == Audience::Iep {
            // What a school needs is what is taken, how and when; why it is taken, who prescribed
            // it (a psychiatrist, say) or the notes on it would tell the school a diagnosis the
            // family did not choose to share.
            active
                .into_iter()
                .map(|m| Medication {
                    reason: None,
                    prescriber: None,
                    notes: None,
                    ..m
                })
                .collect()
        } else {
            active
        };
        stopped.sort_by_key(|m| std::cmp::Reverse(m.stopped));
        let stopped = (audience == Audience::Specialist).then_some(stopped);
        Ok((active, stopped))
    }

    fn goals(&mut self) -> Result<Vec<GoalPart>> {
        let mut list: Vec<GoalPart> = self
            .all::<Goal>()?
            .into_iter()
            .filter(|(_, g)| g.status == "active" || g.status == "on-hold")
            .map(|(view, mut goal)| {
                // Stable sort: two measurements on one day stay in the order they were logged.
                goal.progress.sort_by_key(|p| p.date);
                GoalPart { id: view.id, goal }
            })
            .collect();
        list.sort_by(|a, b| a.goal.discipline.cmp(&b.goal.discipline));
        Ok(list)
    }

    /// Sessions from `since` to `today` counted per discipline, and (except for a payer) their
    /// notes grouped the same way.
    fn sessions(
        &mut self,
        access: &AccessSet,
        audience: Audience,
        since: NaiveDate,
        today: NaiveDate,
    ) -> Result<(Vec<SessionCount>, Option<Vec<DisciplineNotes>>)> {
        let record = self.record;
        let mut by_discipline: BTreeMap<String, Vec<NotePart>> = BTreeMap::new();
        for (view, note) in self.all::<SessionNote>()? {
            if note.date < since || note.date > today {
                continue;
            }
            by_discipline
                .entry(note.discipline.clone())
                .or_default()
                .push(note_part(view, note, access, record));
        }
        let mut counts = Vec::new();
        let mut groups = Vec::new();
        for (discipline, mut list) in by_discipline {
            list.sort_by_key(|n| n.date);
            counts.push(SessionCount {
                title: discipline_title(&discipline),
                discipline: discipline.clone(),
                sessions: list.len(),
                minutes: list.iter().filter_map(|n| n.minutes).sum(),
                without_minutes: list.iter().filter(|n| n.minutes.is_none()).count(),
            });
            groups.push(DisciplineNotes {
                title: discipline_title(&discipline),
                discipline,
                notes: list,
            });
        }
        // Payers get how much therapy was given, not what was said in it.
        let notes = (audience != Audience::Insurer).then_some(groups);
        Ok((counts, notes))
    }

    fn documents(&mut self, audience: Audience) -> Result<Vec<Document>> {
        let mut list: Vec<Document> = self
            .all::<Document>()?
            .into_iter()
            .map(|(_, d)| d)
            .filter(|d| audience == Audience::Insurer || d.kind != INSURANCE_CARD)
            .collect();
        // Newest first; undated documents last.
        list.sort_by_key(|d| std::cmp::Reverse(d.date));
        Ok(list)
    }
}

fn patient_part(p: Patient, audience: Audience) -> PatientPart {
    let guardians = match audience {
        Audience::Iep | Audience::Specialist => p.guardians,
        // An insurer needs to know who the guardians are, not how to reach them.
        Audience::Insurer => p
            .guardians
            .into_iter()
            .map(|g| Contact {
                phone: None,
                email: None,
                ..g
            })
            .collect(),
    };
    PatientPart {
        name: p.name,
        dob: p.dob,
        sex: (audience != Audience::Iep).then_some(p.sex).flatten(),
        language: (audience != Audience::Insurer).then_some(p.language).flatten(),
        school: (audience == Audience::Iep).then_some(p.school).flatten(),
        guardians,
    }
}

fn note_part(view: EntryView, note: SessionNote, access: &AccessSet, record: &Record) -> NotePart {
    let soap = [
        ("Subjective", note.subjective),
        ("Objective", note.objective),
        ("Assessment", note.assessment),
        ("Plan", note.plan),
    ]
    .into_iter()
    .filter_map(|(label, text)| {
        text.filter(|t| !t.trim().is_empty())
            .map(|text| SoapPart { label, text })
    })
    .collect();
    let amendments = note
        .amendments
        .into_iter()
        .map(|a| AmendmentPart {
            by: name_of(access, record, &a.author),
            text: a.text,
            reason: a.reason,
            at: a.at,
        })
        .collect();
    NotePart {
        recorded_by: name_of(access, record, &view.author),
        id: view.id,
        date: note.date,
        clinician: note.clinician,
        minutes: note.minutes,
        soap,
        amendments,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::access::Statement;
    use crate::entry::parse_date;
    use crate::identity::{DeviceCert, KeyPair};

    fn day(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn fields(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not a map"),
        }
    }

    /// A record written by a device called "Mia's phone", holding a bit of every part.
    fn record() -> (Record, AccessSet) {
        let root = KeyPair::generate();
        let phone = KeyPair::generate();
        let mut access = AccessSet::default();
        access
            .insert(
                &root.public(),
                Statement::Device(DeviceCert::issue(&root, phone.public(), "Mia's phone", 0)),
            )
            .unwrap();
        let mut r = Record::new(root.public(), phone);
        r.insert_entry(
            Section::Profile,
            PATIENT_ENTRY,
            fields(json!({
                "name": "José Ñúñez", "dob": "2017-04-12", "sex": "male", "language": "Spanish",
                "school": "Lincoln Elementary, grade 2",
                "guardians": [{"name": "Ana Ñúñez", "relationship": "mother", "phone": "555-0101"}],
            })),
        )
        .unwrap();
        r.add(
            Section::Insurance,
            fields(json!({"payer": "Blue Shield", "member_id": "XYZ123"})),
        )
        .unwrap();
        r.add(
            Section::Conditions,
            fields(json!({"name": "Childhood apraxia of speech", "code": "R48.2"})),
        )
        .unwrap();
        r.add(
            Section::Conditions,
            fields(json!({"name": "Otitis media", "status": "resolved"})),
        )
        .unwrap();
        r.add(Section::Allergies, fields(json!({"substance": "Penicillin"})))
            .unwrap();
        r.add(
            Section::Allergies,
            fields(json!({"substance": "Latex", "status": "resolved"})),
        )
        .unwrap();
        r.add(
            Section::Medications,
            fields(json!({"name": "Methylphenidate", "dose": "5 mg", "reason": "ADHD", "prescriber": "Dr. Psych", "notes": "with breakfast"})),
        )
        .unwrap();
        let amox = r
            .add(Section::Medications, fields(json!({"name": "Amoxicillin"})))
            .unwrap();
        r.stop_medication(&amox, day("2024-03-10"), Some("course finished"))
            .unwrap();
        let goal = r
            .add(
                Section::Goals,
                fields(json!({"goal": "Produce /s/ in words", "discipline": "speech", "target": 80.0})),
            )
            .unwrap();
        // Logged out of order: the summary sorts them by day.
        r.goal_progress(&goal, day("2024-03-01"), 60.0, None).unwrap();
        r.goal_progress(&goal, day("2024-01-05"), 20.0, None).unwrap();
        r.goal_progress(&goal, day("2024-02-01"), 40.0, Some("4 of 10"))
            .unwrap();
        r.add(Section::Goals, fields(json!({"goal": "Tie shoes", "status": "met"})))
            .unwrap();
        let note = |d: &str, disc: &str, min: Option<f64>| {
            let mut v = json!({"discipline": disc, "clinician": "J. Ames", "date": d, "subjective": "Tired", "plan": "Practise"});
            if let Some(m) = min {
                v["minutes"] = json!(m);
            }
            fields(v)
        };
        let n1 = r.add(Section::Notes, note("2024-03-02", "speech", Some(45.0))).unwrap();
        r.add(Section::Notes, note("2024-02-20", "speech", Some(30.0))).unwrap();
        r.add(Section::Notes, note("2024-03-05", "occupational", None)).unwrap();
        r.add(Section::Notes, note("2023-11-01", "speech", Some(45.0))).unwrap();
        r.amend_note(&n1, "Arrived late", Some("clarify")).unwrap();
        r.add(
            Section::Documents,
            fields(json!({"title": "IEP 2024", "kind": "iep", "date": "2024-09-01"})),
        )
        .unwrap();
        r.add(
            Section::Documents,
            fields(json!({"title": "Card", "kind": "insurance-card"})),
        )
        .unwrap();
        r.add(
            Section::Procedures,
            fields(json!({"name": "Tympanostomy", "date": "2023-02-01", "code": "http://snomed.info/sct|34068001"})),
        )
        .unwrap();
        r.add(
            Section::Procedures,
            fields(json!({"name": "Hearing test", "status": "not-done"})),
        )
        .unwrap();
        r.add(
            Section::Immunizations,
            fields(json!({"vaccine": "MMR", "date": "2018-05-01"})),
        )
        .unwrap();
        for (d, kg) in [("2024-01-05", "20.1"), ("2024-03-05", "20.6")] {
            r.add(
                Section::Vitals,
                fields(json!({"name": "Body weight", "date": d, "value": kg, "unit": "kg"})),
            )
            .unwrap();
        }
        (r, access)
    }

    fn build_for(audience: Audience, since: Option<&str>) -> Summary {
        let (r, access) = record();
        let opts = Options {
            audience,
            since: since.map(day),
            today: day("2024-03-31"),
            with_immunizations: false,
        };
        build(&r, &access, &opts).unwrap()
    }

    #[test]
    fn a_school_gets_no_insurance_diagnoses_or_medication_reasons() {
        let s = build_for(Audience::Iep, None);
        assert!(s.coverage.is_none() && s.diagnoses.is_none() && s.stopped_medications.is_none());
        let meds = s.medications.unwrap();
        assert_eq!(meds.len(), 1);
        assert_eq!(meds[0].dose.as_deref(), Some("5 mg"));
        assert_eq!(
            (
                meds[0].reason.as_deref(),
                meds[0].prescriber.as_deref(),
                meds[0].notes.as_deref()
            ),
            (None, None, None)
        );
        let docs = s.documents.unwrap();
        assert_eq!(docs.len(), 1, "the insurance card stays out: {docs:?}");
        let p = s.patient.unwrap();
        assert_eq!(p.name, "José Ñúñez");
        assert_eq!(p.school.as_deref(), Some("Lincoln Elementary, grade 2"));
        assert_eq!(p.sex, None);
        assert_eq!(p.guardians[0].phone.as_deref(), Some("555-0101"));
        assert!(!Audience::Iep.sections().contains(&Section::Insurance));
    }

    #[test]
    fn notes_are_grouped_by_discipline_within_the_period_with_amendments_and_authors() {
        let s = build_for(Audience::Specialist, None);
        // 90 days before 2024-03-31 is 2024-01-01: the November note is out.
        assert_eq!(s.since, day("2024-01-01"));
        let notes = s.notes.unwrap();
        let names: Vec<&str> = notes.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(names, ["Occupational therapy", "Speech therapy"]);
        let speech = &notes[1].notes;
        assert_eq!(
            speech.iter().map(|n| n.date).collect::<Vec<_>>(),
            [day("2024-02-20"), day("2024-03-02")]
        );
        let latest = &speech[1];
        assert_eq!(
            latest.soap.iter().map(|p| p.label).collect::<Vec<_>>(),
            ["Subjective", "Plan"]
        );
        assert_eq!(latest.amendments[0].text, "Arrived late");
        assert_eq!(latest.amendments[0].by.as_deref(), Some("Mia's phone"));
        assert_eq!(latest.recorded_by.as_deref(), Some("Mia's phone"));
        let counts = s.sessions.unwrap();
        assert_eq!((counts[1].sessions, counts[1].minutes), (2, 75.0));
        assert_eq!((counts[0].sessions, counts[0].without_minutes), (1, 1));
    }

    #[test]
    fn since_moves_the_start_of_the_period() {
        let s = build_for(Audience::Specialist, Some("2024-03-01"));
        let notes = s.notes.unwrap();
        let total: usize = notes.iter().map(|g| g.notes.len()).sum();
        assert_eq!(total, 2);
        let s = build_for(Audience::Specialist, Some("2023-01-01"));
        let speech = &s.sessions.unwrap()[1];
        assert_eq!(speech.sessions, 3);
    }

    #[test]
    fn current_goals_carry_progress_sorted_by_day() {
        let s = build_for(Audience::Iep, None);
        let goals = s.goals.unwrap();
        assert_eq!(goals.len(), 1, "the met goal is not current");
        let values: Vec<f64> = goals[0].goal.progress.iter().map(|p| p.value).collect();
        assert_eq!(values, [20.0, 40.0, 60.0]);
    }

    #[test]
    fn a_specialist_sees_stopped_medications_and_every_diagnosis_but_no_insurance() {
        let s = build_for(Audience::Specialist, None);
        assert!(s.coverage.is_none());
        let stopped = s.stopped_medications.unwrap();
        assert_eq!(stopped[0].name, "Amoxicillin");
        assert_eq!(stopped[0].stop_reason.as_deref(), Some("course finished"));
        assert_eq!(s.medications.unwrap()[0].reason.as_deref(), Some("ADHD"));
        assert_eq!(s.diagnoses.unwrap().len(), 2);
        assert_eq!(s.allergies.unwrap().len(), 1, "only active allergies");
    }

    #[test]
    fn an_insurer_gets_coverage_diagnoses_and_counts_but_no_note_text_or_medications() {
        let s = build_for(Audience::Insurer, None);
        assert_eq!(
            s.parts(),
            [
                "patient",
                "coverage",
                "diagnoses",
                "procedures",
                "goals",
                "session counts",
                "documents"
            ]
        );
        assert_eq!(s.coverage.unwrap()[0].member_id, "XYZ123");
        let dx = s.diagnoses.unwrap();
        assert_eq!(dx.len(), 1);
        assert_eq!(dx[0].code.as_deref(), Some("R48.2"));
        assert!(s.notes.is_none() && s.medications.is_none() && s.allergies.is_none());
        assert_eq!(s.sessions.unwrap().len(), 2);
        assert_eq!(s.documents.unwrap().len(), 2, "the insurance card is theirs");
        let p = s.patient.unwrap();
        assert_eq!((p.language, p.guardians[0].phone.clone()), (None, None));
    }

    #[test]
    fn a_specialist_reads_procedures_immunizations_and_the_latest_vitals_under_their_own_parts() {
        let s = build_for(Audience::Specialist, None);
        let procedures = s.procedures.unwrap();
        assert_eq!(procedures.len(), 2);
        assert_eq!(procedures[0].name, "Tympanostomy");
        assert!(s.diagnoses.unwrap().iter().all(|c| c.name != "Tympanostomy"));
        assert_eq!(s.immunizations.unwrap()[0].vaccine, "MMR");
        let vitals = s.vitals.unwrap();
        assert_eq!(vitals.len(), 1, "the latest of each: {vitals:?}");
        assert_eq!(vitals[0].value.as_deref(), Some("20.6"));
        let insurer = build_for(Audience::Insurer, None);
        assert_eq!(insurer.procedures.unwrap().len(), 1, "only what was done");
        assert!(insurer.immunizations.is_none() && insurer.vitals.is_none());
    }

    #[test]
    fn a_school_gets_immunizations_only_when_the_family_adds_them() {
        let (r, access) = record();
        let mut opts = Options {
            audience: Audience::Iep,
            since: None,
            today: day("2024-03-31"),
            with_immunizations: false,
        };
        let s = build(&r, &access, &opts).unwrap();
        assert!(s.immunizations.is_none() && s.procedures.is_none());
        assert!(!opts.sections().contains(&Section::Immunizations));
        opts.with_immunizations = true;
        let s = build(&r, &access, &opts).unwrap();
        assert!(s.parts().contains(&"immunizations"));
        assert_eq!(s.immunizations.unwrap()[0].vaccine, "MMR");
        assert!(opts.sections().contains(&Section::Immunizations));
        assert!(s.vitals.is_none() && s.diagnoses.is_none());
    }

    #[test]
    fn audiences_parse_by_name_and_unknown_ones_name_the_choices() {
        for a in Audience::ALL {
            assert_eq!(a.name().parse::<Audience>().unwrap(), a);
        }
        assert_eq!(" IEP ".parse::<Audience>().unwrap(), Audience::Iep);
        let err = "school".parse::<Audience>().unwrap_err().to_string();
        assert!(err.contains("use iep, specialist or insurer"), "{err}");
    }

    #[test]
    fn an_entry_that_does_not_read_is_reported_as_skipped() {
        let (mut r, access) = record();
        // A goal as a newer phr might write it: its status is a number this one cannot read.
        let doc = r.doc(Section::Goals);
        let id = "ffff0000ffff0000";
        {
            use automerge::transaction::Transactable;
            let obj = doc.put_object(automerge::ROOT, id, automerge::ObjType::Map).unwrap();
            doc.put(&obj, "goal", "From the future").unwrap();
            doc.put(&obj, "status", 7_i64).unwrap();
        }
        let opts = Options {
            audience: Audience::Iep,
            since: None,
            today: day("2024-03-31"),
            with_immunizations: false,
        };
        let s = build(&r, &access, &opts).unwrap();
        assert_eq!(s.goals.unwrap().len(), 1);
        assert_eq!(s.skipped.len(), 1);
        assert_eq!((s.skipped[0].section, s.skipped[0].id.as_str()), (Section::Goals, id));
    }

    #[test]
    fn disciplines_print_as_words() {
        assert_eq!(discipline_title("aba"), "ABA therapy");
        assert_eq!(discipline_title("music"), "Music");
    }
}
