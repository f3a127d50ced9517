//! The `phr` command line as a patient's family uses it: every test runs the real binary, and
//! every command is a new process, so each read is a reload of the sealed store from disk.

mod common;

use std::sync::OnceLock;

use common::Home;
use serde_json::Value;

/// One valid entry for every section but `profile` (which `phr init` creates), as `--field value`.
const ENTRIES: &[(&str, &[(&str, &str)])] = &[
    (
        "conditions",
        &[
            ("name", "Childhood apraxia of speech"),
            ("code", "R48.2"),
            ("onset", "2019-03-01"),
        ],
    ),
    (
        "allergies",
        &[
            ("substance", "Penicillin"),
            ("reaction", "Hives"),
            ("severity", "moderate"),
        ],
    ),
    (
        "medications",
        &[("name", "Amoxicillin"), ("dose", "250 mg"), ("schedule", "twice daily")],
    ),
    (
        "labs",
        &[
            ("test", "Ferritin"),
            ("value", "30"),
            ("unit", "ng/mL"),
            ("low", "15"),
            ("high", "150"),
            ("date", "2024-03-01"),
        ],
    ),
    (
        "notes",
        &[
            ("discipline", "speech"),
            ("clinician", "J. Ames"),
            ("date", "2024-02-01"),
            ("minutes", "45"),
            ("subjective", "Tired today"),
        ],
    ),
    (
        "goals",
        &[
            ("goal", "Produce /s/ in words"),
            ("discipline", "speech"),
            ("baseline", "20"),
            ("target", "80"),
            ("unit", "% correct"),
            ("milestone", "10 words"),
            ("milestone", "text=sentences; due=2025-06-01"),
        ],
    ),
    (
        "plans",
        &[
            ("title", "Speech therapy block"),
            ("discipline", "speech"),
            ("start", "2024-01-01"),
            ("frequency", "2x weekly"),
        ],
    ),
    (
        "documents",
        &[("title", "IEP 2024"), ("kind", "iep"), ("date", "2024-09-01")],
    ),
    (
        "insurance",
        &[("payer", "Blue Shield"), ("member-id", "XYZ123"), ("group", "G-77")],
    ),
    (
        "appointments",
        &[
            ("reason", "Speech evaluation"),
            ("start", "2024-05-02 14:30"),
            ("minutes", "60"),
            ("status", "scheduled"),
        ],
    ),
    (
        "messages",
        &[
            ("thread", "Homework"),
            ("body", "Please practice /s/ daily"),
            ("from", "J. Ames"),
        ],
    ),
    (
        "forms",
        &[
            ("title", "Intake"),
            ("question", "text=Any allergies?; id=allergies; kind=yesno"),
        ],
    ),
    (
        "caregiver_log",
        &[
            ("date", "2024-03-03"),
            ("text", "Slept 10 hours"),
            ("category", "sleep"),
            ("by", "Mom"),
        ],
    ),
    (
        "procedures",
        &[
            ("name", "Tympanostomy"),
            ("code", "http://snomed.info/sct|34068001"),
            ("date", "2023-02-01"),
        ],
    ),
    (
        "immunizations",
        &[
            ("vaccine", "MMR"),
            ("code", "http://hl7.org/fhir/sid/cvx|03"),
            ("date", "2018-05-01"),
            ("lot", "A12"),
        ],
    ),
    (
        "vitals",
        &[
            ("name", "Blood pressure"),
            ("date", "2024-03-02"),
            ("component", "name=Systolic; value=118; unit=mm[Hg]"),
            ("component", "name=Diastolic; value=76; unit=mm[Hg]"),
        ],
    ),
    (
        "encounters",
        &[
            ("type", "Well child visit"),
            ("start", "2024-03-02 10:00"),
            ("class", "AMB"),
        ],
    ),
    (
        "care_team",
        &[("name", "Dr. Lee"), ("role", "pediatrician"), ("phone", "555-0199")],
    ),
];

/// `--field value` words for `phr`.
fn args(fields: &[(&str, &str)]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|(k, v)| [format!("--{k}"), v.to_string()])
        .collect()
}

const SECTIONS: [&str; 19] = [
    "profile",
    "conditions",
    "allergies",
    "medications",
    "labs",
    "notes",
    "goals",
    "plans",
    "documents",
    "insurance",
    "appointments",
    "messages",
    "forms",
    "caregiver_log",
    "procedures",
    "immunizations",
    "vitals",
    "encounters",
    "care_team",
];

/// A new record with one entry in every section; returns the home and the entries' ids by section.
fn record_everything() -> (Home, Vec<(&'static str, String)>) {
    let home = Home::init("Mia Lopez");
    home.ok([
        "edit",
        "profile",
        "patient",
        "--dob",
        "2017-04-12",
        "--language",
        "Spanish",
        "--guardian",
        "name=Ana Lopez; relationship=mother; phone=555-0100",
    ]);
    let ids = ENTRIES
        .iter()
        .map(|(section, fields)| {
            let args = args(fields);
            (
                *section,
                home.add(section, &args.iter().map(String::as_str).collect::<Vec<_>>()),
            )
        })
        .collect();
    (home, ids)
}

/// The store of a record with an entry in every section (and some progress on its goal),
/// with the entries' ids by section.
struct Everything {
    store: Vec<u8>,
    ids: Vec<(&'static str, String)>,
}

/// [`Everything`], built once and shared by the tests that only read it.
fn everything() -> &'static Everything {
    static EVERYTHING: OnceLock<Everything> = OnceLock::new();
    EVERYTHING.get_or_init(|| {
        let (home, ids) = record_everything();
        let goal = ids
            .iter()
            .find(|(section, _)| *section == "goals")
            .map(|(_, id)| id)
            .unwrap();
        home.ok(["goal", "progress", goal, "--value", "35"]);
        Everything {
            store: home.store_bytes(),
            ids,
        }
    })
}

/// A home of its own holding a copy of [`everything`]'s store.
fn full_record() -> (Home, &'static [(&'static str, String)]) {
    let everything = everything();
    (Home::with_store(&everything.store), &everything.ids)
}

fn entries(list: &Value) -> &Vec<Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list of entries: {list}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_parent_records_every_section_and_sees_it_after_reopening() {
    let (home, ids) = record_everything();
    let status = home.status();
    let device = status["device"].as_str().unwrap().to_string();

    // The whole record, read back by a new process.
    let record = home.json(["show", "--json"]);
    assert_eq!(record["record"], status["record"]);
    let profile = entries(&record["profile"]);
    assert_eq!(profile.len(), 1);
    assert_eq!(profile[0]["id"], "patient");
    assert_eq!(profile[0]["fields"]["name"], "Mia Lopez");
    assert_eq!(profile[0]["fields"]["dob"], "2017-04-12");
    assert_eq!(profile[0]["fields"]["language"], "Spanish");
    assert_eq!(profile[0]["fields"]["guardians"][0]["name"], "Ana Lopez");
    assert_eq!(profile[0]["fields"]["guardians"][0]["relationship"], "mother");
    for (section, id) in &ids {
        let list = entries(&record[*section]);
        assert_eq!(list.len(), 1, "{section}: {list:?}");
        assert_eq!(list[0]["id"], id.as_str());
        assert_eq!(list[0]["author"], device.as_str());
    }

    // Section by section, each field as typed (normalized where the section says so).
    for ((section, fields), (_, id)) in ENTRIES.iter().zip(&ids) {
        let list = home.json(["list", section, "--json"]);
        let list = entries(&list);
        assert_eq!(list.len(), 1, "{section}");
        let entry = &list[0];
        assert_eq!(entry["id"], id.as_str());
        assert_eq!(entry["section"], *section);
        assert_eq!(
            entry,
            &home.entry(section, id),
            "`list` and `show` disagree on {section}"
        );
        let (name, value) = fields[0];
        assert_eq!(entry["fields"][name], value, "{section}.{name}: {entry}");
    }
    let list = |section: &str| home.json(["list", section, "--json"])[0]["fields"].clone();
    assert_eq!(list("medications")["dose"], "250 mg");
    assert_eq!(list("medications")["status"], "active");
    assert_eq!(list("labs")["value"], "30");
    assert_eq!(list("labs")["low"], 15.0);
    assert_eq!(list("insurance")["member_id"], "XYZ123");
    assert_eq!(list("appointments")["start"], "2024-05-02T14:30:00");
    assert_eq!(list("goals")["milestones"][1]["due"], "2025-06-01");
    assert_eq!(list("forms")["questions"][0]["kind"], "yesno");
    assert_eq!(list("caregiver_log")["category"], "sleep");
    assert_eq!(list("procedures")["status"], "completed");
    assert_eq!(list("vitals")["components"][1]["value"], "76");
    assert_eq!(list("encounters")["start"], "2024-03-02T10:00:00");

    let status = home.status();
    assert_eq!(status["patient"], "Mia Lopez");
    assert_eq!(status["holds_root_key"], true);
    assert_eq!(status["conflicts"], 0);
    for section in SECTIONS {
        assert_eq!(status["sections"][section], 1, "{section} in {status}");
    }

    // Plain-text views name what was recorded.
    let shown = home.ok(["show"]).stdout;
    assert!(shown.contains("Health record of Mia Lopez"), "{shown}");
    assert!(shown.contains("Amoxicillin"), "{shown}");
    let listed = home.ok(["list", "medications"]).stdout;
    assert!(listed.contains("Amoxicillin · 250 mg"), "{listed}");
}

#[test]
fn the_fields_of_every_section_are_described() {
    let home = Home::new();
    for section in SECTIONS {
        let out = home.ok(["fields", section]).stdout;
        assert!(out.starts_with(&format!("fields of {section}:")), "{out}");
    }
    let labs = home.ok(["fields", "labs"]).stdout;
    assert!(labs.contains("--value") && labs.contains("(required)"), "{labs}");
    assert!(home.ok(["fields", "insurance"]).stdout.contains("--member-id"));
}

#[test]
fn history_names_this_device_as_the_author_of_every_change() {
    let home = Home::init("Mia Lopez");
    let device = home.status()["device"].as_str().unwrap().to_string();
    let amox = home.add("medications", &["--name", "Amoxicillin"]);
    let allergy = home.add("allergies", &["--substance", "Peanuts"]);
    let ibu = home.add("medications", &["--name", "Ibuprofen", "--dose", "100 mg"]);
    home.ok(["edit", "medications", &ibu, "--dose", "150 mg"]);

    let history = home.json(["history", "--json"]);
    let history = entries(&history);
    // History is ordered by time, which has one-second resolution: changes to different
    // sections within one second may be listed in either order.
    let mut messages: Vec<&str> = history.iter().map(|h| h["message"].as_str().unwrap()).collect();
    messages.sort_unstable();
    let mut expected = [
        "add profile patient".to_string(),
        format!("add medications {amox}"),
        format!("add allergies {allergy}"),
        format!("add medications {ibu}"),
        format!("edit medications {ibu}: dose"),
    ];
    expected.sort_unstable();
    assert_eq!(messages, expected, "{history:?}");
    let times: Vec<i64> = history.iter().map(|h| h["time"].as_i64().unwrap()).collect();
    assert!(times.is_sorted(), "{times:?}");
    for h in history {
        assert_eq!(h["author"], device.as_str(), "{h}");
        assert_eq!(h["hash"].as_str().unwrap().len(), 64, "{h}");
        assert!(h["time"].as_i64().unwrap() > 1_600_000_000, "{h}");
    }

    // One section's changes are listed in the order they were made.
    let meds = home.json(["history", "medications", "--json"]);
    let meds: Vec<&str> = entries(&meds)
        .iter()
        .inspect(|h| assert_eq!(h["section"], "medications", "{h}"))
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        meds,
        [
            format!("add medications {amox}"),
            format!("add medications {ibu}"),
            format!("edit medications {ibu}: dose"),
        ]
    );

    let text = home.ok(["history", "allergies"]).stdout;
    assert!(
        text.contains("this device") && text.contains(&format!("add allergies {allergy}")),
        "{text}"
    );
}

#[test]
fn a_medication_is_edited_then_stopped_and_stays_listed_with_its_stop_date() {
    let home = Home::init("Mia Lopez");
    let id = home.add("medications", &["--name", "Amoxicillin", "--dose", "250 mg"]);
    let short = &id[..6];
    assert!(
        home.ok(["edit", "medications", short, "--dose", "500 mg"])
            .stdout
            .contains(&id)
    );
    assert_eq!(home.entry("medications", &id)["fields"]["dose"], "500 mg");

    let out = home.ok([
        "stop",
        "medications",
        short,
        "--date",
        "2024-05-01",
        "--reason",
        "course done",
    ]);
    assert!(out.stdout.contains("stopped medication"), "{}", out.stdout);
    let med = home.entry("medications", &id);
    assert_eq!(med["fields"]["status"], "stopped");
    assert_eq!(med["fields"]["stopped"], "2024-05-01");
    assert_eq!(med["fields"]["stop_reason"], "course done");
    assert_eq!(med["fields"]["dose"], "500 mg");

    let list = home.json(["list", "medications", "--json"]);
    assert_eq!(entries(&list).len(), 1, "a stopped medication stays in the record");
    let listed = home.ok(["list", "medications"]).stdout;
    assert!(listed.contains("stopped 2024-05-01 (course done)"), "{listed}");
    assert!(
        home.phr(["stop", "allergies", short])
            .refused()
            .contains("only medications can be stopped")
    );
    let last = home.json(["history", "medications", "--json"]);
    assert!(
        entries(&last).last().unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("stop medications {id}")),
        "{last}"
    );
}

#[test]
fn a_session_note_is_amended_never_rewritten() {
    let home = Home::init("Mia Lopez");
    let id = home.add(
        "notes",
        &[
            "--discipline",
            "speech",
            "--clinician",
            "J. Ames",
            "--date",
            "2024-02-01",
            "--subjective",
            "Tired today",
        ],
    );
    let before = home.json(["history", "--json"]);

    let refused = home.phr(["edit", "notes", &id, "--subjective", "Rested"]).refused();
    assert!(refused.contains("amend"), "{refused}");
    assert_eq!(
        home.json(["history", "--json"]),
        before,
        "a refused edit records nothing"
    );

    let out = home.ok([
        "amend",
        "notes",
        &id,
        "--text",
        "Was tired after school",
        "--reason",
        "clarify",
    ]);
    assert!(out.stdout.contains("the original text is kept"), "{}", out.stdout);
    let note = home.entry("notes", &id);
    assert_eq!(note["fields"]["subjective"], "Tired today");
    let amendments = entries(&note["fields"]["amendments"]);
    assert_eq!(amendments.len(), 1);
    assert_eq!(amendments[0]["text"], "Was tired after school");
    assert_eq!(amendments[0]["reason"], "clarify");
    assert_eq!(amendments[0]["author"], home.status()["device"]);

    home.ok(["amend", "notes", &id, "--text", "Seen with mother present"]);
    let note = home.entry("notes", &id);
    let texts: Vec<_> = entries(&note["fields"]["amendments"])
        .iter()
        .map(|a| a["text"].clone())
        .collect();
    assert_eq!(texts, ["Was tired after school", "Seen with mother present"]);
    assert_eq!(note["fields"]["subjective"], "Tired today");
    let shown = home.ok(["show", "notes", &id]).stdout;
    assert!(
        shown.contains("Tired today") && shown.contains("Was tired after school"),
        "{shown}"
    );
}

#[test]
fn goal_progress_is_appended_in_order() {
    let home = Home::init("Mia Lopez");
    let id = home.add(
        "goals",
        &["--goal", "Produce /s/ in words", "--baseline", "20", "--target", "80"],
    );
    home.ok([
        "goal",
        "progress",
        &id,
        "--value",
        "35",
        "--date",
        "2024-04-01",
        "--note",
        "better",
    ]);
    home.ok(["goal", "progress", &id[..5], "--value", "52.5", "--date", "2024-05-01"]);
    let goal = home.entry("goals", &id);
    let progress = entries(&goal["fields"]["progress"]);
    assert_eq!(progress.len(), 2, "{goal}");
    assert_eq!(progress[0]["date"], "2024-04-01");
    assert_eq!(progress[0]["value"], 35.0);
    assert_eq!(progress[0]["note"], "better");
    assert_eq!(progress[1]["date"], "2024-05-01");
    assert_eq!(progress[1]["value"], 52.5);
    assert_eq!(goal["fields"]["goal"], "Produce /s/ in words");
    let refused = home.phr(["goal", "progress", "nosuchgoal", "--value", "1"]).refused();
    assert!(refused.contains("no entry `nosuchgoal` in goals"), "{refused}");
}

#[test]
fn invalid_input_is_refused_with_a_clear_message_and_records_nothing() {
    let home = Home::init("Mia Lopez");
    home.add("medications", &["--name", "Amoxicillin"]);
    let record = home.json(["show", "--json"]);
    let history = home.json(["history", "--json"]);

    let cases: &[(&[&str], &str)] = &[
        (
            &["add", "labs", "--test", "Ferritin", "--date", "2024-03-01"],
            "labs.value: is required",
        ),
        (
            &[
                "add",
                "labs",
                "--test",
                "Ferritin",
                "--value",
                "30",
                "--date",
                "03/01/2024",
            ],
            "labs.date: `03/01/2024` is not a valid date: use YYYY-MM-DD",
        ),
        (
            &["add", "appointments", "--reason", "Visit", "--start", "tomorrow"],
            "not a date and time",
        ),
        (&["add", "billing", "--amount", "30"], "unknown section `billing`"),
        (&["list", "billing"], "unknown section `billing`"),
        (
            &["add", "medications", "--name", "X", "--colour", "red"],
            "medications has no field `colour`",
        ),
        (&["add", "notes", "--discipline", "astrology"], "is not one of: speech"),
        (
            &["add", "labs", "--test", "Iron", "--value", "1", "--low", "abc"],
            "`abc` is not a number",
        ),
        (&["add", "medications", "--name"], "`--name` needs a value"),
        (
            &["add", "profile", "--name", "Someone Else"],
            "already has its patient profile",
        ),
        (
            &["edit", "medications", "nosuchid", "--dose", "1 mg"],
            "no entry `nosuchid` in medications",
        ),
        (&["edit", "medications", "0"], "nothing to change"),
    ];
    for (args, message) in cases {
        let refused = home.phr(*args).refused();
        assert!(
            refused.contains(message),
            "`phr {}`: expected {message:?} in:\n{refused}",
            args.join(" ")
        );
    }
    assert!(
        home.phr(["add", "billing"]).stderr.contains("caregiver_log"),
        "an unknown section lists the real ones"
    );
    assert_eq!(home.json(["show", "--json"]), record, "nothing was recorded");
    assert_eq!(home.json(["history", "--json"]), history, "no change was stored");
}

#[test]
fn a_home_without_a_record_says_to_run_init() {
    let home = Home::new();
    let refused = home.phr(["status"]).refused();
    assert!(
        refused.contains("no phr record at") && refused.contains("phr init"),
        "{refused}"
    );
    assert!(!home.store().exists());
    home.ok(["init", "--name", "Mia Lopez"]);
    let again = home.phr(["init", "--name", "Someone Else"]).refused();
    assert!(again.contains("already exists"), "{again}");
    assert_eq!(home.status()["patient"], "Mia Lopez");
}

#[test]
fn a_wrong_passphrase_is_refused_and_the_store_is_left_byte_identical() {
    let home = Home::init("Mia Lopez");
    home.add("medications", &["--name", "Amoxicillin"]);
    let before = home.store_bytes();
    for args in [
        &["status"][..],
        &["list", "medications"],
        &["add", "medications", "--name", "Ibuprofen"],
        &["recovery", "export"],
    ] {
        let run = home.phr_as("not the passphrase", args);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let refused = run.refused();
        assert!(refused.contains("wrong passphrase"), "{refused}");
    }
    assert!(home.phr_as("", ["status"]).refused().contains("wrong passphrase"));
    assert!(home.store_bytes() == before, "a refused unlock changed the store file");
    assert_eq!(
        home.json(["list", "medications", "--json"]).as_array().unwrap().len(),
        1
    );
}

/// A record, the bytes of its store as closed, and what it reads as.
struct Pristine {
    bytes: Vec<u8>,
    record: Value,
    history: Value,
}

fn pristine() -> Pristine {
    let (home, _) = full_record();
    let bytes = home.store_bytes();
    Pristine {
        record: home.json(["show", "--json"]),
        history: home.json(["history", "--json"]),
        bytes,
    }
}

/// Open a damaged store: it must be refused cleanly and left as it was.
#[track_caller]
fn assert_refused_untouched(damaged: &[u8]) -> String {
    let home = Home::with_store(damaged);
    let refused = home.phr(["show", "--json"]).refused();
    assert!(home.store_bytes() == damaged, "a refused store was modified");
    refused
}

#[test]
fn a_store_damaged_in_the_middle_is_refused_and_left_untouched() {
    let p = pristine();
    let n = p.bytes.len();
    let mut damaged = p.bytes.clone();
    for b in &mut damaged[n / 3..2 * n / 3] {
        *b ^= 0xff;
    }
    let refused = assert_refused_untouched(&damaged);
    assert!(refused.contains("damaged"), "{refused}");
    assert!(refused.contains("left untouched"), "{refused}");
}

#[test]
fn a_truncated_store_is_refused_and_left_untouched() {
    let p = pristine();
    for len in [p.bytes.len() / 2, p.bytes.len() - 1, 4096, 100, 0] {
        let refused = assert_refused_untouched(&p.bytes[..len]);
        assert!(refused.contains("damaged"), "cut to {len} bytes: {refused}");
    }
}

/// Open a copy of the pristine store damaged by `damage`: it must either be refused cleanly (a
/// clear message, no panic, the file untouched) or read back exactly the original record. Bytes
/// a store does not use (free pages, the unused tail of pages) may be damaged harmlessly; what
/// must never happen is a panic, a silently different record, or a refused file written to.
/// Returns whether it was refused.
#[track_caller]
fn refused_cleanly_or_unharmed(p: &Pristine, what: &str, damage: impl FnOnce(&mut Vec<u8>)) -> bool {
    let mut damaged = p.bytes.clone();
    damage(&mut damaged);
    let home = Home::with_store(&damaged);
    let run = home.phr(["show", "--json"]);
    if run.code == Some(0) {
        assert_eq!(run.json(), p.record, "{what} changed what the record reads as");
        assert_eq!(
            home.json(["history", "--json"]),
            p.history,
            "{what} changed the history"
        );
        return false;
    }
    let message = run.refused();
    // A damaged wrapped key or salt cannot be told from a wrong passphrase.
    assert!(
        message.contains("damaged") || message.contains("wrong passphrase"),
        "{what}: {message}"
    );
    assert!(home.store_bytes() == damaged, "{what}: the refused file was modified");
    true
}

#[test]
fn damage_anywhere_is_refused_cleanly_or_reads_back_the_original_record() {
    let p = pristine();
    let n = p.bytes.len();
    let mut refused = 0;
    for k in 0..10 {
        let at = n * (2 * k + 1) / 20;
        let flip = |bytes: &mut Vec<u8>| bytes[at..(at + 16).min(n)].iter_mut().for_each(|b| *b ^= 0xff);
        refused += usize::from(refused_cleanly_or_unharmed(&p, &format!("damage at byte {at}"), flip));
    }
    eprintln!("{refused} of 10 damaged spots were refused; the rest were in bytes the store does not use");
}

/// The same, one flipped byte every 97 bytes of the file (about a thousand opens): this reaches
/// redb's branch pages and allocator state, which a plain open trusts without checking.
#[test]
#[ignore = "slow (a thousand runs of phr); run with `cargo test --test cli -- --ignored`"]
fn damage_to_any_byte_is_refused_cleanly_or_reads_back_the_original_record() {
    let p = pristine();
    let offsets: Vec<usize> = (0..p.bytes.len()).step_by(97).collect();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let refused: usize = std::thread::scope(|s| {
        let handles: Vec<_> = offsets
            .chunks(offsets.len().div_ceil(workers))
            .map(|chunk| {
                let p = &p;
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter(|&&at| {
                            refused_cleanly_or_unharmed(p, &format!("a flipped byte at {at}"), |b| b[at] ^= 0xff)
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    eprintln!("{refused} of {} damaged bytes were refused", offsets.len());
}

#[test]
fn a_store_from_a_newer_phr_is_refused_with_a_hint_to_upgrade() {
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    let home = Home::init("Mia Lopez");
    {
        let db = redb::Database::open(home.store()).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format", 2u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let before = home.store_bytes();
    let refused = home.phr(["status"]).refused();
    assert!(refused.contains("format version 2"), "{refused}");
    assert!(refused.contains("upgrade phr"), "{refused}");
    assert!(home.store_bytes() == before, "a store from a newer phr was modified");
}

#[test]
fn a_store_left_open_by_a_crash_is_recovered_with_everything_committed() {
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    let (home, _) = full_record();
    let record = home.json(["show", "--json"]);
    // A copy taken after a commit but before redb closed the file cleanly is what a crash
    // leaves behind: redb must replay its recovery, which the read-only first look cannot do.
    let crashed = {
        let db = redb::Database::open(home.store()).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META).unwrap().insert("probe", b"1".as_slice()).unwrap();
        txn.commit().unwrap();
        Home::with_store(&home.store_bytes())
    };
    assert!(
        redb::ReadOnlyDatabase::open(crashed.store()).is_err(),
        "the copy should need crash recovery"
    );
    assert_eq!(crashed.json(["show", "--json"]), record);
    crashed.add("medications", &["--name", "Ibuprofen"]);
    assert_eq!(
        crashed
            .json(["list", "medications", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn nothing_the_patient_typed_appears_in_the_store_file_in_plaintext() {
    let home = Home::init("Mia Zanzibarquist");
    home.ok(["edit", "profile", "patient", "--address", "17 Quillowbrook Lane"]);
    home.add("medications", &["--name", "Zyloprimquux", "--dose", "250 mg"]);
    let note = home.add(
        "notes",
        &[
            "--discipline",
            "speech",
            "--clinician",
            "Dr. Hollowmere",
            "--date",
            "2024-02-01",
            "--subjective",
            "Frobnicated vowels",
        ],
    );
    home.ok(["amend", "notes", &note, "--text", "Wobbleberry correction"]);
    let secrets = [
        "Mia Zanzibarquist",
        "Zanzibarquist",
        "Quillowbrook",
        "Zyloprimquux",
        "Hollowmere",
        "Frobnicated vowels",
        "Wobbleberry",
    ];
    let check = |when: &str| {
        for file in std::fs::read_dir(home.path()).unwrap() {
            let path = file.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for secret in secrets {
                assert!(
                    !contains(&bytes, secret.as_bytes()),
                    "`{secret}` is readable in {} {when}",
                    path.display()
                );
            }
        }
    };
    check("after adding entries");
    home.ok(["compact"]);
    check("after compacting into snapshots");
    assert_eq!(
        home.json(["list", "medications", "--json"])[0]["fields"]["name"],
        "Zyloprimquux"
    );
}

#[test]
fn a_fresh_record_has_no_conflicts() {
    let home = Home::init("Mia Lopez");
    home.add("medications", &["--name", "Amoxicillin"]);
    assert_eq!(home.ok(["conflicts"]).stdout.trim(), "no conflicts");
    assert_eq!(home.json(["conflicts", "--json"]), serde_json::json!([]));
    assert_eq!(home.status()["conflicts"], 0);
}

#[test]
fn the_recovery_kit_restores_the_same_record_on_a_new_device() {
    let home = Home::init("Mia Lopez");
    let original = home.status();
    let kit = home.scratch("kit.txt");
    home.ok(["recovery", "export", "--out", kit.to_str().unwrap()]);
    let text = std::fs::read_to_string(&kit).unwrap();
    assert!(
        text.contains(&format!("record {}", original["record"].as_str().unwrap())),
        "{text}"
    );
    assert!(text.contains("24. "), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&kit).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = home
        .phr(["recovery", "export", "--out", kit.to_str().unwrap()])
        .refused();
    assert!(again.contains("must not exist yet"), "{again}");
    let printed = home.ok(["recovery", "export"]).stdout;
    assert!(printed.starts_with(text.trim_end()), "{printed}");

    let other = Home::new();
    let out = other.ok([
        "recovery",
        "restore",
        "--file",
        kit.to_str().unwrap(),
        "--device-name",
        "laptop",
    ]);
    assert!(
        out.stdout.contains(original["record"].as_str().unwrap()),
        "{}",
        out.stdout
    );
    let restored = other.status();
    assert_eq!(restored["record"], original["record"]);
    assert_ne!(restored["device"], original["device"]);
    assert_eq!(restored["device_name"], "laptop");
    assert_eq!(restored["holds_root_key"], true);
}

#[test]
fn a_recovery_kit_with_one_word_changed_is_refused() {
    let home = Home::init("Mia Lopez");
    let kit = home.scratch("kit.txt");
    home.ok(["recovery", "export", "--out", kit.to_str().unwrap()]);
    let text = std::fs::read_to_string(&kit).unwrap();
    let line = text.lines().find(|l| l.trim_start().starts_with("7. ")).unwrap();
    let word = line.split_whitespace().nth(1).unwrap();
    let other_word = if word == "abandon" { "ability" } else { "abandon" };
    let changed = home.scratch("changed.txt");
    std::fs::write(&changed, text.replace(line, &line.replace(word, other_word))).unwrap();

    let fresh = Home::new();
    let refused = fresh
        .phr(["recovery", "restore", "--file", changed.to_str().unwrap()])
        .refused();
    assert!(refused.contains("invalid recovery kit"), "{refused}");
    assert!(!fresh.store().exists(), "a refused kit created a store");

    let words: Vec<&str> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(words.len(), 24, "{text}");
    let short = fresh
        .phr_fed(words[..23].join(" ").as_bytes(), ["recovery", "restore", "--file", "-"])
        .refused();
    assert!(short.contains("expected 24 words, found 23"), "{short}");
    assert!(!fresh.store().exists());
}

#[test]
fn exporting_as_json_writes_one_readable_file_per_section() {
    let (home, ids) = full_record();
    let dir = home.scratch("export");
    let out = home.ok(["export", "--format", "json", "--out", dir.to_str().unwrap()]);
    assert!(out.stdout.contains("wrote 20 files"), "{}", out.stdout);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = SECTIONS.iter().map(|s| format!("{s}.json")).collect();
    expected.push("record.json".into());
    expected.sort();
    assert_eq!(names, expected);

    let read = |name: &str| -> Value { serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap() };
    let index = read("record.json");
    assert_eq!(index["record"], home.status()["record"]);
    assert_eq!(index["patient"], "Mia Lopez");
    let meds = read("medications.json");
    assert_eq!(meds[0]["fields"]["name"], "Amoxicillin");
    for (section, id) in ids {
        let list = read(&format!("{section}.json"));
        assert_eq!(list, home.json(["list", section, "--json"]), "{section}");
        assert_eq!(list[0]["id"], id.as_str());
    }
    assert_eq!(read("profile.json")[0]["fields"]["name"], "Mia Lopez");
}

#[test]
fn exporting_as_automerge_writes_every_section_document() {
    let (home, _) = full_record();
    let dir = home.scratch("automerge");
    let out = home.ok(["export", "--format", "automerge", "--out", dir.to_str().unwrap()]);
    assert!(out.stdout.contains("wrote 19 files"), "{}", out.stdout);
    for section in SECTIONS {
        let bytes = std::fs::read(dir.join(format!("{section}.automerge"))).unwrap();
        // Every saved Automerge document starts with its magic bytes.
        assert_eq!(&bytes[..4], &[0x85, 0x6f, 0x4a, 0x83], "{section}");
        assert!(bytes.len() > 8, "{section}");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 19);
    let meds = std::fs::read(dir.join("medications.automerge")).unwrap();
    assert!(
        contains(&meds, b"Amoxicillin"),
        "the export is the readable document, not the sealed store"
    );
}

#[test]
fn json_output_can_be_asked_for_before_or_after_the_fields() {
    let home = Home::init("Mia Lopez");
    let after = home.json(["add", "medications", "--name", "Amoxicillin", "--json"]);
    let before = home.json(["add", "--json", "medications", "--name", "Ibuprofen"]);
    assert_eq!(after["fields"]["name"], "Amoxicillin");
    assert_eq!(before["fields"]["name"], "Ibuprofen");
    let value = home.json(["add", "messages", "--thread", "t", "--body", "--json", "--json"]);
    assert_eq!(
        value["fields"]["body"], "--json",
        "a value may still be the word --json"
    );
    assert!(
        home.ok(["add", "medications", "--name", "Cetirizine"])
            .stdout
            .starts_with("added medications ")
    );
}

#[test]
fn recovery_words_come_from_a_file_or_standard_input_never_the_command_line() {
    let home = Home::init("Mia Lopez");
    let record = home.status()["record"].clone();
    let kit = home.ok(["recovery", "export"]).stdout;
    let words: Vec<&str> = kit
        .lines()
        .filter(|l| {
            l.trim_start()
                .split('.')
                .next()
                .is_some_and(|n| n.parse::<u8>().is_ok())
        })
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(words.len(), 24, "{kit}");

    // On a command line other users see them in `ps`, and the shell's history keeps them.
    let fresh = Home::new();
    let typed = fresh
        .phr(["recovery", "restore", "--words", &words.join(" ")])
        .refused();
    assert!(
        typed.contains("--words is not accepted") && typed.contains("--file -"),
        "{typed}"
    );
    assert!(!fresh.store().exists());
    // Neither a file nor a terminal to ask in: told how to give them.
    let none = fresh.phr(["recovery", "restore"]).refused();
    assert!(none.contains("--file KIT.txt"), "{none}");
    assert!(!fresh.store().exists());

    let piped = fresh.phr_fed(words.join(" ").as_bytes(), ["recovery", "restore", "--file", "-"]);
    assert!(piped.ok().stdout.contains(record.as_str().unwrap()));
    assert_eq!(fresh.status()["record"], record);
}

#[test]
fn a_weak_passphrase_protects_no_new_record_but_an_old_record_still_opens() {
    for weak in ["", "x", "1234567", "        "] {
        let home = Home::new();
        let refused = home.phr_as(weak, ["init", "--name", "Mia Lopez"]).refused();
        assert!(
            refused.contains("PHR_PASSPHRASE") && refused.contains("too weak"),
            "{weak:?}: {refused}"
        );
        assert!(!home.store().exists(), "{weak:?} made a store");
    }
    let kit = Home::init("Mia Lopez");
    let kit_file = kit.scratch("kit.txt");
    kit.ok(["recovery", "export", "--out", kit_file.to_str().unwrap()]);
    let fresh = Home::new();
    let refused = fresh
        .phr_as("x", ["recovery", "restore", "--file", kit_file.to_str().unwrap()])
        .refused();
    assert!(refused.contains("too weak"), "{refused}");
    assert!(!fresh.store().exists());

    // A record made before the rule (here, by the library) still opens with its passphrase.
    let old = Home::new();
    phr::Device::init(
        &old.path(),
        "pw",
        phr::InitOptions {
            name: "Mia Lopez".into(),
            dob: None,
            device_name: "old phone".into(),
            kdf: phr::crypto::KdfParams::default(),
        },
    )
    .unwrap();
    assert_eq!(
        old.phr_as("pw", ["status", "--json"]).ok().json()["device_name"],
        "old phone"
    );
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file and directory under `dir`, with its mode, that anyone but the owner may use.
#[cfg(unix)]
fn open_to_others(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut open = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let m = mode(&path);
        if m & 0o077 != 0 {
            open.push((path.clone(), m));
        }
        if path.is_dir() {
            open.extend(open_to_others(&path));
        }
    }
    open
}

#[cfg(unix)]
#[test]
fn the_home_and_everything_written_from_the_record_is_for_the_user_only() {
    let home = Home::new();
    std::fs::remove_dir(home.path()).unwrap();
    home.ok(["init", "--name", "Mia Lopez"]);
    let scan = home.scratch("scan.txt");
    std::fs::write(&scan, "a letter from the school").unwrap();
    home.ok(["attach", scan.to_str().unwrap(), "--title", "Letter", "--kind", "other"]);
    assert_eq!(mode(&home.path()), 0o700);
    assert_eq!(mode(&home.store()), 0o600);
    assert_eq!(open_to_others(&home.path()), vec![], "the store, blobs and the rest");

    // Reports and exports: private, and an existing one is replaced only when asked.
    for (args, out) in [
        (vec!["report", "--for", "iep", "--out"], "school.html"),
        (vec!["export", "--format", "fhir", "--out"], "bundle.json"),
        (vec!["export", "--format", "json", "--out"], "export"),
        (vec!["export", "--format", "automerge", "--out"], "documents"),
    ] {
        let path = home.scratch(out);
        let mut args: Vec<&str> = args;
        let target = path.to_str().unwrap();
        args.push(target);
        home.ok(&args);
        assert_eq!(mode(&path), if path.is_dir() { 0o700 } else { 0o600 }, "{out}");
        if path.is_dir() {
            assert_eq!(open_to_others(&path), vec![], "{out}");
        }
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let again = home.phr(&args).refused();
        assert!(again.contains("--force") && again.contains(target), "{again}");
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before, "{out}");
        args.push("--force");
        home.ok(&args);
        assert_eq!(mode(&path), if path.is_dir() { 0o700 } else { 0o600 }, "{out}");
    }
}
