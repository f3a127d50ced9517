//! The patient's side of working with a clinic: secure messages, appointment requests and
//! intake forms. The clinic writes into the same sections (as a grant holder), so everything
//! here reads what either side wrote and names who wrote it.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use phr_engine::capability::Right;
use phr_engine::entry::{self, FieldKind, QuestionKind};
use phr_engine::record::EntryView;
use phr_engine::sync::Replica;
use phr_engine::threads;
use phr_engine::{Device, PublicKey, Record, Section};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::display;
use crate::output::{self, Names};
use crate::{Command, JsonFlag};

/// `phr messages …`.
#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum MessagesCmd {
    /// Send a message: `phr messages send --thread "Homework" "We practised every day"`.
    Send {
        /// Thread subject; a new subject starts a new thread.
        #[arg(long)]
        thread: String,
        /// Whom it is for, e.g. "Dr. Ames".
        #[arg(long)]
        to: Option<String>,
        /// Who it is from (default: on the patient's devices the guardian named in the profile,
        /// else the patient, with the device, e.g. "Ana Lopez (guardian) via Mia's phone";
        /// for anyone else the name their access was granted under).
        #[arg(long)]
        from: Option<String>,
        /// The message.
        text: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Messages grouped by thread, newest last, with who wrote each.
    List {
        /// Only this thread (its subject).
        #[arg(long)]
        thread: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `phr appointments …`.
#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum AppointmentsCmd {
    /// Ask the clinic for an appointment; it shows as `requested` until the clinic answers.
    Request {
        /// What the visit is for.
        #[arg(long)]
        reason: String,
        /// Date and time wanted, "YYYY-MM-DD HH:MM".
        #[arg(long)]
        start: String,
        /// Length in minutes.
        #[arg(long)]
        minutes: Option<u32>,
        /// Therapy discipline (see `phr fields appointments`).
        #[arg(long)]
        discipline: Option<String>,
        /// Anything the clinic should know.
        #[arg(long)]
        notes: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Appointments by date, with their status and who last changed it.
    List {
        /// Only those with this status: requested, scheduled, confirmed, cancelled, completed.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `phr forms …`.
#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum FormsCmd {
    /// Intake forms the clinic sent, and whether each has been answered.
    List(JsonFlag),
    /// A form's questions with their ids, and its latest answers once filled.
    Show {
        /// Form id (or a unique prefix).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Answer a form: `phr forms fill ID --answer allergies=no --answer age=7`.
    ///
    /// Without --answer, in a terminal, each question is asked in turn. The answers are
    /// written on this device and reach the clinic on the next sync.
    Fill {
        /// Form id (or a unique prefix).
        id: String,
        /// One answer, as QUESTION_ID=VALUE (repeatable; `phr forms show ID` lists the ids).
        #[arg(long = "answer", value_name = "QUESTION_ID=VALUE")]
        answers: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `YYYY-MM-DD HH:MM` of an RFC 3339 or `YYYY-MM-DDTHH:MM:SS` time, as the audit log shows
/// times; safe for a terminal (a peer wrote it).
fn minute(t: &str) -> String {
    display::text(&t.get(..16).unwrap_or(t).replace('T', " ")).into_owned()
}

fn text_field<'a>(e: &'a EntryView, name: &str) -> Option<&'a str> {
    e.fields.get(name).and_then(Value::as_str)
}

/// Print a newly written entry: as JSON when asked, else the one-line `note`.
fn written(out: &mut dyn Write, replica: &Replica, section: Section, id: &str, json: bool, note: &str) -> Result<()> {
    if json {
        let device = replica.lock();
        let e = device
            .record()
            .read_entry(section, id)?
            .with_context(|| format!("the new entry {id} went missing"))?;
        return output::print_json(out, &output::entry_json(&e, &Names::of(&device))?);
    }
    writeln!(out, "{note}")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// Carry out `phr messages …`.
pub(crate) fn messages(cmd: MessagesCmd, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    match cmd {
        MessagesCmd::Send {
            thread,
            to,
            from,
            text,
            json,
        } => {
            if thread.trim().is_empty() {
                bail!("a message needs a thread subject: --thread \"…\"");
            }
            // Unsigned text, for display: who really wrote a message is its author key.
            let from = from.unwrap_or_else(|| replica.lock().sender());
            let mut fields = Map::new();
            fields.insert("thread".into(), json!(thread));
            fields.insert("body".into(), json!(text));
            fields.insert("from".into(), json!(from));
            if let Some(to) = to {
                fields.insert("to".into(), json!(to));
            }
            let id = replica.write(|r| r.add(Section::Messages, fields))?;
            let note = format!("sent message {id} in thread `{thread}`");
            written(out, replica, Section::Messages, &id, json.json, &note)
        }
        MessagesCmd::List { thread, json } => {
            let device = replica.lock();
            let names = Names::of(&device);
            let mut threads = threads::threads(device.record())?;
            let known: Vec<String> = threads.iter().map(|(t, _)| t.clone()).collect();
            if let Some(wanted) = &thread {
                threads.retain(|(t, _)| threads::same_subject(t, wanted));
            }
            if json.json {
                let rows = threads
                    .iter()
                    .map(|(t, msgs)| Ok(json!({ "thread": t, "messages": output::entries_json(msgs, &names)? })))
                    .collect::<Result<Vec<_>>>()?;
                return output::print_json(out, &rows);
            }
            let known = display::text(&known.join(", ")).into_owned();
            match (thread.as_deref().map(display::text), threads.is_empty()) {
                (None, true) => writeln!(out, "no messages yet")?,
                (Some(t), true) if known.is_empty() => writeln!(out, "no thread `{t}`: there are no messages yet")?,
                (Some(t), true) => writeln!(out, "no thread `{t}`; the threads are: {known}")?,
                _ => {}
            }
            for (i, (subject, msgs)) in threads.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                let n = msgs.len();
                let subject = display::text(subject);
                writeln!(out, "== {subject} ({n} message{})", if n == 1 { "" } else { "s" })?;
                for m in msgs {
                    writeln!(out, "  {}  {}", minute(&m.created), sender(m, &names))?;
                    for line in display::lines(text_field(m, "body").unwrap_or_default()) {
                        writeln!(out, "      {line}")?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// Who a message is from: its `from` text, and the name of the key that wrote it when that
/// differs (the `from` text is whatever the writer typed; the key is verified). Safe for a
/// terminal: neither text can rewrite the line or start one of its own.
fn sender(m: &EntryView, names: &Names) -> String {
    let author = names.name(&m.author);
    let from = text_field(m, "from")
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(display::text);
    // `Ana Lopez (guardian) via Mia's phone`, written on Mia's phone, already names its key.
    let via = format!(" via {author}");
    let mut who = match from {
        Some(from) if from == author || from.ends_with(&via) => from.into_owned(),
        Some(from) => format!("{from} (sent by {author})"),
        None => author,
    };
    if let Some(to) = text_field(m, "to").filter(|t| !t.trim().is_empty()) {
        who.push_str(&format!(" → {}", display::text(to)));
    }
    who
}

// ---------------------------------------------------------------------------------------------
// Appointments
// ---------------------------------------------------------------------------------------------

/// The statuses an appointment can have, as the engine defines them.
fn appointment_statuses() -> &'static [&'static str] {
    entry::fields(Section::Appointments)
        .iter()
        .find(|f| f.name == "status")
        .and_then(|f| match f.kind {
            FieldKind::Choice(options) => Some(options),
            _ => None,
        })
        .unwrap_or(&[])
}

/// Carry out `phr appointments …`.
pub(crate) fn appointments(cmd: AppointmentsCmd, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    match cmd {
        AppointmentsCmd::Request {
            reason,
            start,
            minutes,
            discipline,
            notes,
            json,
        } => {
            let mut pairs = vec![
                ("reason".to_string(), reason.clone()),
                ("start".to_string(), start),
                ("status".to_string(), "requested".to_string()),
            ];
            let optional = [
                ("minutes", minutes.map(|m| m.to_string())),
                ("discipline", discipline),
                ("notes", notes),
            ];
            pairs.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))));
            let fields = entry::parse_fields(Section::Appointments, &pairs)?;
            let when = fields
                .get("start")
                .and_then(Value::as_str)
                .map(minute)
                .unwrap_or_default();
            let id = replica.write(|r| r.add(Section::Appointments, fields))?;
            let note = format!(
                "requested appointment {id} for {when}: {reason}; it stays `requested` until the clinic schedules it"
            );
            written(out, replica, Section::Appointments, &id, json.json, &note)
        }
        AppointmentsCmd::List { status, json } => list_appointments(status, json.json, replica, out),
    }
}

/// `phr appointments list`: by date, with each one's status and who last set it.
fn list_appointments(status: Option<String>, json: bool, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    let statuses = appointment_statuses();
    let status = status.map(|s| s.trim().to_lowercase());
    if let Some(s) = &status
        && !statuses.contains(&s.as_str())
    {
        bail!("`{s}` is not an appointment status: use one of {}", statuses.join(", "));
    }
    let device = replica.lock();
    let names = Names::of(&device);
    let record = device.record();
    let mut list = record.list(Section::Appointments)?;
    if let Some(s) = &status {
        list.retain(|e| text_field(e, "status") == Some(s.as_str()));
    }
    // By when they are, as a calendar reads; `start` is stored as sortable text.
    list.sort_by(|a, b| {
        text_field(a, "start")
            .cmp(&text_field(b, "start"))
            .then(a.created.cmp(&b.created))
    });
    let by: Vec<Option<PublicKey>> = list
        .iter()
        .map(|e| record.field_author(Section::Appointments, &e.id, "status"))
        .collect();
    if json {
        let rows = list
            .iter()
            .zip(&by)
            .map(|(e, key)| {
                let mut v = output::entry_json(e, &names)?;
                if let Value::Object(m) = &mut v {
                    let hex = key.map(|k| k.to_string());
                    m.insert(
                        "status_by_name".into(),
                        json!(hex.as_deref().and_then(|h| names.known(h))),
                    );
                    m.insert("status_by".into(), json!(hex));
                }
                Ok(v)
            })
            .collect::<Result<Vec<_>>>()?;
        return output::print_json(out, &rows);
    }
    if list.is_empty() {
        match &status {
            Some(s) => writeln!(out, "no {s} appointments")?,
            None => writeln!(out, "no appointments yet")?,
        }
    }
    for (e, key) in list.iter().zip(&by) {
        let mut what = display::text(text_field(e, "reason").unwrap_or_default()).into_owned();
        if let Some(m) = e.fields.get("minutes").filter(|m| !m.is_null()) {
            what.push_str(&format!(" · {} min", display::value(m)));
        }
        for (field, prefix) in [("discipline", ""), ("clinician", "with "), ("location", "at ")] {
            if let Some(v) = text_field(e, field) {
                what.push_str(&format!(" · {prefix}{}", display::text(v)));
            }
        }
        let status = display::text(text_field(e, "status").unwrap_or("requested"));
        let who = key.map_or_else(|| names.name(&e.author), |k| names.name(&k.to_string()));
        writeln!(
            out,
            "{}  {}  {:<10} {what}  ({status} by {who})",
            display::text(&e.id[..e.id.len().min(8)]),
            minute(text_field(e, "start").unwrap_or_default()),
            status,
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------------

/// How a question of `kind` asks for its answer.
fn hint(kind: QuestionKind) -> &'static str {
    match kind {
        QuestionKind::Text => "text",
        QuestionKind::YesNo => "yes/no",
        QuestionKind::Number => "a number",
        QuestionKind::Date => "a date, YYYY-MM-DD",
    }
}

/// An answer to a question of `kind` in its canonical form (`yes`/`no`, a plain number,
/// `YYYY-MM-DD`), or why not.
fn normalize(kind: QuestionKind, raw: &str) -> std::result::Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("the answer is empty (leave a question out to skip it)".into());
    }
    match kind {
        QuestionKind::Text => Ok(raw.to_string()),
        QuestionKind::YesNo => match raw.to_lowercase().as_str() {
            "yes" | "y" | "true" | "1" => Ok("yes".into()),
            "no" | "n" | "false" | "0" => Ok("no".into()),
            _ => Err(format!("`{raw}` is not yes or no")),
        },
        QuestionKind::Number => match raw.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(output::scalar(&json!(n))),
            _ => Err(format!("`{raw}` is not a number")),
        },
        QuestionKind::Date => entry::parse_date(raw)
            .map(|d| d.to_string())
            .map_err(|_| format!("`{raw}` is not a valid date: use YYYY-MM-DD")),
    }
}

/// One question of a form template.
#[derive(Debug, Clone)]
struct Question {
    /// Its `id`, or its number (from 1) when the template gives none.
    id: String,
    text: String,
    kind: QuestionKind,
    required: bool,
}

impl Question {
    /// One line: id (padded to `width`), text, kind and whether it must be answered; safe for
    /// a terminal (the clinic wrote the question).
    fn describe(&self, width: usize) -> String {
        let required = if self.required { ", required" } else { "" };
        format!(
            "{:<width$}  {} ({}{required})",
            display::text(&self.id),
            display::text(&self.text),
            hint(self.kind)
        )
    }
}

/// The width of the longest question id, to line the questions up.
fn id_width(questions: &[Question]) -> usize {
    questions.iter().map(|q| q.id.chars().count()).max().unwrap_or(0)
}

fn questions(fields: &Map<String, Value>) -> Vec<Question> {
    let Some(Value::Array(items)) = fields.get("questions") else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let get = |k: &str| {
                q.get(k)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            // Read as stored rather than through the engine's typed struct, so a marker a
            // clinic's template carries beyond it (`required`) is still honoured.
            let required = match q.get("required") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => matches!(s.trim().to_lowercase().as_str(), "yes" | "true"),
                _ => false,
            };
            Question {
                id: get("id").map_or_else(|| (i + 1).to_string(), str::to_string),
                text: get("text").unwrap_or_default().to_string(),
                kind: QuestionKind::parse(get("kind")),
                required,
            }
        })
        .collect()
}

fn is_response(e: &EntryView) -> bool {
    text_field(e, "kind") == Some("response")
}

/// A form template with the responses given to it, oldest first.
struct Form {
    entry: EntryView,
    questions: Vec<Question>,
    responses: Vec<EntryView>,
}

impl Form {
    fn title(&self) -> &str {
        text_field(&self.entry, "title").unwrap_or_default()
    }

    fn short_id(&self) -> &str {
        &self.entry.id[..self.entry.id.len().min(8)]
    }

    /// The response that counts: the newest completed one, else the newest of any status.
    fn response(&self) -> Option<&EntryView> {
        let completed = |e: &&EntryView| text_field(e, "status").is_none_or(|s| s == "completed");
        self.responses.iter().rev().find(completed).or(self.responses.last())
    }

    /// `answered`, `in-progress` or `not answered`.
    fn state(&self) -> &'static str {
        let Some(r) = self.response() else {
            return "not answered";
        };
        match text_field(r, "status") {
            Some("in-progress") | Some("sent") => "in-progress",
            _ => "answered",
        }
    }

    fn answers(&self) -> Vec<(String, String)> {
        let Some(Value::Array(items)) = self.response().and_then(|r| r.fields.get("answers")) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|a| {
                let q = a.get("question")?.as_str()?;
                Some((q.to_string(), output::scalar(a.get("answer")?)))
            })
            .collect()
    }
}

/// Every template of the record with its responses.
fn forms(record: &Record) -> Result<Vec<Form>> {
    let all = record.in_write_order(Section::Forms, record.list(Section::Forms)?);
    let (responses, templates): (Vec<_>, Vec<_>) = all.into_iter().partition(is_response);
    Ok(templates
        .into_iter()
        .map(|t| Form {
            questions: questions(&t.fields),
            responses: responses
                .iter()
                .filter(|r| text_field(r, "template") == Some(t.id.as_str()))
                .cloned()
                .collect(),
            entry: t,
        })
        .collect())
}

/// The template `prefix` names; refuses a response or an id no form has.
fn form(record: &Record, prefix: &str) -> Result<Form> {
    let id = record.resolve_id(Section::Forms, prefix).map_err(|e| match e {
        phr_engine::Error::NoSuchEntry { .. } => {
            anyhow!("no form `{prefix}`: `phr forms list` shows the forms and their ids")
        }
        other => other.into(),
    })?;
    let mut all = forms(record)?;
    if let Some(i) = all.iter().position(|f| f.entry.id == id) {
        return Ok(all.swap_remove(i));
    }
    let answered = record
        .read_entry(Section::Forms, &id)?
        .and_then(|e| text_field(&e, "template").map(str::to_string))
        .unwrap_or_default();
    bail!("{id} is a response to form {answered}, not a form to fill: `phr forms list` shows the forms")
}

/// Refuse, before asking or checking anything, a device whose grant may not write forms: the
/// engine refuses the write anyway, but only after every question was answered.
fn may_fill(device: &Device) -> std::result::Result<(), String> {
    match device.credential().scope() {
        Some(scope) if !scope.get(&Section::Forms).is_some_and(|r| r.covers(Right::Write)) => Err(format!(
            "the access granted to `{}` does not allow filling in forms (it may not write forms); \
             ask the patient's family to answer it",
            device.name()
        )),
        _ => Ok(()),
    }
}

/// The answers `--answer QUESTION_ID=VALUE` give, each normalized to its question's kind, in
/// the form's question order; refuses unknown questions, bad values, repeats and missing
/// required answers, naming the question.
fn parse_answers(form: &Form, raw: &[String]) -> Result<Vec<(String, String)>> {
    let mut given: Vec<(usize, String)> = Vec::new();
    for arg in raw {
        // Longest matching id first, so an id containing `=` still finds its question.
        let found = form
            .questions
            .iter()
            .enumerate()
            .filter(|(_, q)| arg.starts_with(&format!("{}=", q.id)))
            .max_by_key(|(_, q)| q.id.len());
        let Some((i, q)) = found else {
            let Some((qid, _)) = arg.split_once('=') else {
                bail!("`--answer {arg}`: write each answer as QUESTION_ID=VALUE");
            };
            let ids: Vec<&str> = form.questions.iter().map(|q| q.id.as_str()).collect();
            bail!(
                "form `{}` has no question `{qid}`; its questions are: {}",
                form.title(),
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            );
        };
        let value = &arg[q.id.len() + 1..];
        let normal = normalize(q.kind, value).map_err(|why| anyhow!("question `{}` ({}): {why}", q.id, q.text))?;
        if given.iter().any(|(j, _)| *j == i) {
            bail!("question `{}` is answered twice", q.id);
        }
        given.push((i, normal));
    }
    let missing: Vec<String> = form
        .questions
        .iter()
        .enumerate()
        .filter(|(i, q)| q.required && !given.iter().any(|(j, _)| j == i))
        .map(|(_, q)| format!("{} ({})", q.id, q.text))
        .collect();
    if !missing.is_empty() {
        bail!("required questions are not answered: {}", missing.join(", "));
    }
    given.sort_by_key(|(i, _)| *i);
    Ok(given
        .into_iter()
        .map(|(i, v)| (form.questions[i].id.clone(), v))
        .collect())
}

/// Carry out `phr forms …`.
pub(crate) fn forms_cmd(cmd: FormsCmd, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    match cmd {
        FormsCmd::List(j) => list_forms(j.json, replica, out),
        FormsCmd::Show { id, json } => show_form(&id, json.json, replica, out),
        FormsCmd::Fill { id, answers, json } => fill_form(&id, &answers, json.json, replica, out),
    }
}

/// `phr forms list`: every form the clinic sent and whether it has been answered.
fn list_forms(json: bool, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    let device = replica.lock();
    let names = Names::of(&device);
    let all = forms(device.record())?;
    if json {
        let rows: Vec<Value> = all
            .iter()
            .map(|f| {
                json!({
                    "id": f.entry.id,
                    "title": f.title(),
                    "questions": f.questions.len(),
                    "created": f.entry.created,
                    "author": f.entry.author,
                    "author_name": names.known(&f.entry.author),
                    "state": f.state(),
                    "answered": f.state() == "answered",
                    "response": f.response().map(|r| r.id.clone()),
                    "answered_at": f.response().map(|r| r.created.clone()),
                })
            })
            .collect();
        return output::print_json(out, &rows);
    }
    if all.is_empty() {
        writeln!(out, "no forms yet: the clinic's intake forms appear here after a sync")?;
    }
    for f in &all {
        let state = match f.response() {
            Some(r) if f.state() == "answered" => {
                format!("answered {} by {}", minute(&r.created), names.name(&r.author))
            }
            _ => f.state().to_string(),
        };
        let n = f.questions.len();
        writeln!(
            out,
            "{}  {}  {}  {n} question{}  from {}  [{state}]",
            display::text(f.short_id()),
            display::text(f.entry.created.get(..10).unwrap_or(&f.entry.created)),
            display::text(f.title()),
            if n == 1 { "" } else { "s" },
            names.name(&f.entry.author),
        )?;
    }
    Ok(())
}

/// `phr forms show ID`: the form's questions with their ids, and its latest answers.
fn show_form(id: &str, json: bool, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    let device = replica.lock();
    let names = Names::of(&device);
    let form = form(device.record(), id)?;
    let answers = form.answers();
    let answer_to = |q: &Question| answers.iter().find(|(a, _)| *a == q.id).map(|(_, v)| v.clone());
    if json {
        let questions: Vec<Value> = form
            .questions
            .iter()
            .map(|q| {
                json!({
                    "id": q.id,
                    "text": q.text,
                    "kind": q.kind.word(),
                    "required": q.required,
                    "answer": answer_to(q),
                })
            })
            .collect();
        let response = form.response().map(|r| output::entry_json(r, &names)).transpose()?;
        return output::print_json(
            out,
            &json!({
                "id": form.entry.id,
                "title": form.title(),
                "created": form.entry.created,
                "author": form.entry.author,
                "author_name": names.known(&form.entry.author),
                "state": form.state(),
                "may_fill": may_fill(&device).is_ok(),
                "questions": questions,
                "response": response,
            }),
        );
    }
    writeln!(
        out,
        "form {}  {}",
        display::text(&form.entry.id),
        display::text(form.title())
    )?;
    writeln!(
        out,
        "  from        {} on {}",
        names.name(&form.entry.author),
        display::text(form.entry.created.get(..10).unwrap_or(&form.entry.created))
    )?;
    match form.response() {
        Some(r) => writeln!(
            out,
            "  {:<11} {} by {}",
            form.state(),
            minute(&r.created),
            names.name(&r.author)
        )?,
        None => writeln!(
            out,
            "  not answered yet: `phr forms fill {}`",
            display::text(form.short_id())
        )?,
    }
    let width = id_width(&form.questions);
    for q in &form.questions {
        writeln!(out, "  {}", q.describe(width))?;
        if let Some(a) = answer_to(q) {
            writeln!(out, "  {:<width$}    → {}", "", display::text(&a))?;
        }
    }
    Ok(())
}

/// `phr forms fill ID --answer QUESTION_ID=VALUE …`: write a response to the form.
fn fill_form(id: &str, answers: &[String], json: bool, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    let (form, fields) = {
        let device = replica.lock();
        let form = form(device.record(), id)?;
        may_fill(&device).map_err(|why| anyhow!(why))?;
        if answers.is_empty() && !form.questions.is_empty() {
            let width = id_width(&form.questions);
            let list: Vec<String> = form
                .questions
                .iter()
                .map(|q| format!("  {}", q.describe(width)))
                .collect();
            bail!(
                "no answers given for form `{}` ({}): answer with --answer QUESTION_ID=VALUE, \
                 or run `phr forms fill` in a terminal to be asked. Its questions:\n{}",
                form.title(),
                form.short_id(),
                list.join("\n")
            );
        }
        let answers = parse_answers(&form, answers)?;
        let mut fields = Map::new();
        fields.insert("title".into(), json!(form.title()));
        fields.insert("kind".into(), json!("response"));
        fields.insert("template".into(), json!(form.entry.id));
        fields.insert("status".into(), json!("completed"));
        let items: Vec<Value> = answers
            .iter()
            .map(|(q, a)| json!({ "question": q, "answer": a }))
            .collect();
        fields.insert("answers".into(), Value::Array(items));
        (form, fields)
    };
    let n = fields.get("answers").and_then(Value::as_array).map_or(0, Vec::len);
    let again = if form.responses.is_empty() {
        ""
    } else {
        " (it was answered before; this newer response is the one shown)"
    };
    let rid = replica.write(|r| r.add(Section::Forms, fields))?;
    let note = format!(
        "answered form `{}` with {n} answer{}: response {rid}{again}. It reaches the clinic on the next sync.",
        form.title(),
        if n == 1 { "" } else { "s" },
    );
    written(out, replica, Section::Forms, &rid, json, &note)
}

// ---------------------------------------------------------------------------------------------
// Asking a form's questions on the terminal
// ---------------------------------------------------------------------------------------------

/// The form to ask about, if `command` is a `forms fill` without answers typed at a terminal.
fn form_to_ask(command: &Command) -> Option<String> {
    use std::io::IsTerminal;
    match command {
        Command::Forms {
            action: FormsCmd::Fill { id, answers, .. },
        } if answers.is_empty() && std::io::stdin().is_terminal() => Some(id.clone()),
        _ => None,
    }
}

/// Before `command` runs: a `forms fill` without answers, at a terminal, asks each question
/// there and adds the answers to the command. `run` carries out a command where the record is
/// (in this process, or in the one serving it) and returns what it printed: the questions are
/// read from `phr forms show ID --json`, so asking works the same in both places.
pub(crate) fn ask_on_terminal(command: &mut Command, run: impl FnOnce(Command) -> Result<Vec<u8>>) -> Result<()> {
    let Some(id) = form_to_ask(command) else {
        return Ok(());
    };
    let shown = run(Command::Forms {
        action: FormsCmd::Show {
            id,
            json: JsonFlag { json: true },
        },
    })?;
    let shown: Value = serde_json::from_slice(&shown).context("reading the form's questions")?;
    // A form this device may not fill, or one without questions: filling it as it is gives the
    // reason (or the empty response) without asking anything first.
    if shown["may_fill"] != Value::Bool(true) {
        return Ok(());
    }
    // The shown questions carry their resolved ids (numbers where the template gives none).
    let questions = questions(shown.as_object().unwrap_or(&Map::new()));
    if questions.is_empty() {
        return Ok(());
    }
    let title = shown["title"].as_str().unwrap_or("the form");
    let stdin = std::io::stdin();
    let given = ask(title, &questions, &mut stdin.lock(), &mut std::io::stderr())?;
    if let Command::Forms {
        action: FormsCmd::Fill { answers, .. },
    } = command
    {
        *answers = given;
    }
    Ok(())
}

/// Ask each question in turn on `prompt`, reading answers from `input`; an empty line skips an
/// optional question, a value of the wrong kind is asked again. Returns `ID=VALUE` answers.
fn ask(title: &str, questions: &[Question], input: &mut dyn BufRead, prompt: &mut dyn Write) -> Result<Vec<String>> {
    let n = questions.len();
    let title = display::text(title);
    writeln!(prompt, "{title}: {n} question(s). Press Enter to skip an optional one.")?;
    let mut answers = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        loop {
            let required = if q.required { ", required" } else { "" };
            write!(
                prompt,
                "{}/{n} {} ({}{required}): ",
                i + 1,
                display::text(&q.text),
                hint(q.kind)
            )?;
            prompt.flush()?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                bail!("the input ended before the last question; nothing was written");
            }
            let raw = line.trim();
            if raw.is_empty() {
                if q.required {
                    writeln!(prompt, "    this question needs an answer")?;
                    continue;
                }
                break;
            }
            match normalize(q.kind, raw) {
                Ok(_) => {
                    answers.push(format!("{}={raw}", q.id));
                    break;
                }
                Err(why) => writeln!(prompt, "    {why}; try again")?,
            }
        }
    }
    if answers.is_empty() {
        bail!("no question was answered; nothing was written");
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(questions: Value) -> Form {
        let fields = json!({ "title": "Intake", "kind": "template", "questions": questions });
        let fields = fields.as_object().cloned().unwrap_or_default();
        Form {
            questions: super::questions(&fields),
            entry: EntryView {
                id: "3f2a1b2c3d4e5f60".into(),
                section: Section::Forms,
                author: String::new(),
                created: String::new(),
                updated: String::new(),
                fields,
            },
            responses: Vec::new(),
        }
    }

    fn intake() -> Form {
        template(json!([
            { "text": "Any allergies?", "id": "allergies", "kind": "yesno", "required": true },
            { "text": "Age", "id": "age", "kind": "number" },
            { "text": "Last visit", "id": "last", "kind": "date" },
            { "text": "Anything else?" },
        ]))
    }

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_are_typed_ordered_and_checked() {
        let f = intake();
        let got = parse_answers(
            &f,
            &strings(&["4=Loves trains", "age=07", "allergies=Y", "last=2024-3-5"]),
        )
        .unwrap();
        let want = [
            ("allergies", "yes"),
            ("age", "7"),
            ("last", "2024-03-05"),
            ("4", "Loves trains"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(got, want);

        let err = |args: &[&str]| parse_answers(&f, &strings(args)).unwrap_err().to_string();
        assert!(err(&["allergies=no", "shoe=9"]).contains("no question `shoe`"));
        assert!(err(&["allergies=maybe"]).contains("`maybe` is not yes or no"));
        assert!(err(&["allergies=no", "age=old"]).contains("`old` is not a number"));
        assert!(err(&["allergies=no", "last=yesterday"]).contains("not a valid date"));
        assert!(err(&["age=3"]).contains("required questions are not answered: allergies"));
        assert!(err(&["allergies=no", "allergies=yes"]).contains("answered twice"));
        assert!(err(&["allergies"]).contains("QUESTION_ID=VALUE"));
    }

    #[test]
    fn questions_are_asked_in_turn_until_answered_well() {
        let f = intake();
        // Required left empty, then a bad yes/no, then fine; age skipped; a bad date retried.
        let typed = "\nperhaps\nno\n\n12/03/2024\n2024-03-12\nLoves trains\n";
        let mut prompts = Vec::new();
        let got = ask("Intake", &f.questions, &mut typed.as_bytes(), &mut prompts).unwrap();
        assert_eq!(got, strings(&["allergies=no", "last=2024-03-12", "4=Loves trains"]));
        let shown = String::from_utf8_lossy(&prompts);
        assert!(shown.contains("this question needs an answer"), "{shown}");
        assert!(shown.contains("`perhaps` is not yes or no; try again"), "{shown}");
        assert!(parse_answers(&f, &got).is_ok());

        let ended = ask("Intake", &f.questions, &mut "no\n".as_bytes(), &mut Vec::new()).unwrap_err();
        assert!(ended.to_string().contains("nothing was written"), "{ended}");
    }
}
