//! `phr report` with the real binary: a record with goals measured over several days and
//! session notes in two disciplines, summarized for a school's IEP team, a specialist and an
//! insurer, as HTML and as PDF; the period, the audit trail, refusals, and a report made while
//! `phr serve` holds the home.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use chrono::{Days, Local, NaiveDate};
use common::devices::progress_unchecked;
use common::processes::Dev;
use common::{Home, PASSPHRASE, phr_bin};
use serde_json::Value;

const PATIENT: &str = "José Ñúñez";
const GOAL_S: &str = "Produce /s/ in single words";
const GOAL_SHOES: &str = "Tie shoelaces independently";
const SPEECH_NOTE: &str = "Practised /s/ with picture cards";
const OT_NOTE: &str = "Worked on bilateral coordination";
const OLD_NOTE: &str = "First evaluation session";
const LONG_NOTE_END: &str = "That was all for the week.";

fn days_ago(n: u64) -> NaiveDate {
    Local::now().date_naive() - Days::new(n)
}

/// The store of a record made for reports, built once and copied into each test's home.
fn store() -> &'static [u8] {
    static STORE: OnceLock<Vec<u8>> = OnceLock::new();
    STORE.get_or_init(|| {
        let home = Home::init(PATIENT);
        home.ok([
            "edit",
            "profile",
            "patient",
            "--dob",
            "2017-04-12",
            "--language",
            "Spanish",
            "--school",
            "Lincoln Elementary, grade 2",
            "--guardian",
            "name=Ana Ñúñez; relationship=mother; phone=555-0101",
            "--guardian",
            "name=Ελένη Παπαδοπούλου; relationship=grandmother",
            "--guardian",
            "name=李小明; relationship=uncle",
        ]);
        home.add("insurance", &["--payer", "Blue Shield", "--member-id", "XYZ123"]);
        home.add(
            "conditions",
            &["--name", "Childhood apraxia of speech", "--code", "R48.2"],
        );
        home.add("allergies", &["--substance", "Penicillin", "--reaction", "Hives"]);
        home.add(
            "medications",
            &[
                "--name",
                "Guanfacine",
                "--dose",
                "1 mg",
                "--reason",
                "Attention difficulties",
            ],
        );
        let stopped = home.add("medications", &["--name", "Amoxicillin", "--dose", "250 mg"]);
        home.ok(["stop", "medications", &stopped, "--reason", "course finished"]);
        home.add(
            "documents",
            &["--title", "Speech evaluation 2024", "--kind", "assessment"],
        );
        home.add("documents", &["--title", "Member card", "--kind", "insurance-card"]);

        let s = home.add(
            "goals",
            &[
                "--goal",
                GOAL_S,
                "--discipline",
                "speech",
                "--baseline",
                "20",
                "--target",
                "80",
                "--unit",
                "% correct",
            ],
        );
        for (ago, value) in [(80, "20"), (60, "35"), (30, "50"), (5, "65")] {
            let date = days_ago(ago).to_string();
            home.ok(["goal", "progress", &s, "--value", value, "--date", &date]);
        }
        let shoes = home.add("goals", &["--goal", GOAL_SHOES, "--discipline", "occupational"]);
        for (ago, value) in [(50, "1"), (20, "3")] {
            let date = days_ago(ago).to_string();
            home.ok(["goal", "progress", &shoes, "--value", value, "--date", &date]);
        }

        let note = |discipline: &str, ago: u64, subjective: &str, minutes: &str| {
            let date = days_ago(ago).to_string();
            home.add(
                "notes",
                &[
                    "--discipline",
                    discipline,
                    "--clinician",
                    "J. Ames",
                    "--date",
                    &date,
                    "--minutes",
                    minutes,
                    "--subjective",
                    subjective,
                    "--plan",
                    "Continue twice weekly",
                ],
            )
        };
        let speech = note("speech", 10, SPEECH_NOTE, "45");
        note("speech", 40, "Tired after school", "30");
        note("occupational", 15, OT_NOTE, "60");
        // Longer than a page: it wraps, and runs onto the next page.
        let long = format!(
            "{}{LONG_NOTE_END}",
            "The family described the week in detail. ".repeat(150)
        );
        note("psychology", 8, &long, "50");
        note("speech", 200, OLD_NOTE, "60");
        home.ok([
            "amend",
            "notes",
            &speech,
            "--text",
            "Session ended ten minutes early",
            "--reason",
            "clarify",
        ]);
        home.store_bytes()
    })
}

fn home() -> Home {
    Home::with_store(store())
}

/// `phr report --for AUDIENCE --out FILE [EXTRA…]`, run in the home's scratch directory.
fn report(home: &Home, audience: &str, file: &str, extra: &[&str]) -> String {
    let mut args = vec!["report", "--for", audience, "--out", file];
    args.extend_from_slice(extra);
    home.ok(args);
    std::fs::read_to_string(home.scratch(file)).expect("the report file")
}

fn position(page: &str, needle: &str) -> usize {
    page.find(needle)
        .unwrap_or_else(|| panic!("`{needle}` is not in the report"))
}

#[test]
fn a_school_report_in_html_has_the_patient_charts_per_goal_and_notes_by_discipline_but_no_insurance() {
    let home = home();
    let page = report(&home, "iep", "school.html", &[]);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains(PATIENT), "{page}");
    assert!(page.contains("Lincoln Elementary, grade 2"));
    assert!(page.contains("Ana Ñúñez (mother) · 555-0101"));
    // The page is UTF-8 text: every script shows as the browser's fonts allow.
    assert!(page.contains("Ελένη Παπαδοπούλου (grandmother)") && page.contains("李小明 (uncle)"));

    // Each goal is one block with its own chart.
    let goals: Vec<&str> = page.split("<div class=\"keep goal\">").skip(1).collect();
    assert_eq!(goals.len(), 2, "{page}");
    for text in [GOAL_S, GOAL_SHOES] {
        let heading = format!("<h3>{text}</h3>");
        let goal = goals
            .iter()
            .find(|g| g.contains(&heading))
            .unwrap_or_else(|| panic!("no block for {text}"));
        let goal = goal.split("</section>").next().unwrap_or_default();
        assert!(goal.contains("<svg"), "no chart for {text}");
        assert!(goal.contains("<circle"), "no measurements drawn for {text}");
    }
    assert!(page.contains("Latest: 65% correct"), "{page}");

    // Notes sit under their discipline: occupational therapy, then speech therapy.
    let ot = position(&page, "<h3>Occupational therapy (1 note)</h3>");
    let psychology = position(&page, "<h3>Psychology (1 note)</h3>");
    let speech = position(&page, "<h3>Speech therapy (2 notes)</h3>");
    assert!(ot < position(&page, OT_NOTE) && position(&page, OT_NOTE) < psychology);
    assert!(psychology < position(&page, LONG_NOTE_END) && position(&page, LONG_NOTE_END) < speech);
    assert!(speech < position(&page, SPEECH_NOTE));
    assert!(page.contains("Session ended ten minutes early (reason: clarify)"));
    assert!(page.contains("Amended "));
    assert!(
        !page.contains(OLD_NOTE),
        "a note older than 90 days is outside the default period"
    );

    // What a school does not get.
    for secret in [
        "Blue Shield",
        "XYZ123",
        "Member card",
        "Insurance",
        "R48.2",
        "Attention difficulties",
        "Amoxicillin",
    ] {
        assert!(!page.contains(secret), "the school's report shows `{secret}`");
    }
    assert!(page.contains("Guanfacine") && page.contains("Penicillin"));
    assert!(page.contains("Speech evaluation 2024"));

    // Self-contained and printable.
    for external in ["<link", "<script", "<img", "src=", "@import", "url("] {
        assert!(
            !page.contains(external),
            "`{external}` would load something from elsewhere"
        );
    }
    assert!(page.contains("@media print"));
}

#[test]
fn a_specialist_pdf_is_a_real_pdf_with_extractable_text() {
    let home = home();
    let run = home.ok(["report", "--for", "specialist", "--out", "specialist.pdf"]);
    assert!(run.stdout.contains("wrote the specialist report to"), "{}", run.stdout);
    // DejaVu Sans has Latin, Greek and Cyrillic but no Chinese: the gap is said, not hidden.
    assert!(
        run.stdout
            .contains("3 character(s) the bundled font (DejaVu Sans) cannot draw")
            && run.stdout.contains('李'),
        "{}",
        run.stdout
    );
    let bytes = std::fs::read(home.scratch("specialist.pdf")).expect("the PDF");
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    assert!(
        String::from_utf8_lossy(&bytes).trim_end().ends_with("%%EOF"),
        "the PDF does not end with %%EOF"
    );
    // The fonts are cut down to the glyphs used, not embedded whole (~700 KB each).
    assert!(bytes.len() < 200_000, "{} bytes", bytes.len());

    let Some(text) = pdftotext(&home.scratch("specialist.pdf")) else {
        eprintln!("skipping the PDF text check: pdftotext (poppler-utils) is not installed");
        return;
    };
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        PATIENT,
        GOAL_S,
        GOAL_SHOES,
        SPEECH_NOTE,
        OT_NOTE,
        "Childhood apraxia of speech",
        "Amoxicillin",
        "course finished",
        "Stopped medications",
        "Ελένη Παπαδοπούλου (grandmother)",
        "\u{FFFD}\u{FFFD}\u{FFFD} (uncle)",
        LONG_NOTE_END,
        "Page 1 of",
    ] {
        assert!(
            flat.contains(expected),
            "`{expected}` is not in the PDF's text:\n{text}"
        );
    }
    assert!(!flat.contains("XYZ123"), "a specialist gets no insurance");
    let pages = text.matches('\u{c}').count();
    assert!(pages >= 3, "{pages} pages: the long note should run over a page break");
}

/// The text of a PDF, if poppler's pdftotext is installed.
fn pdftotext(pdf: &Path) -> Option<String> {
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "pdftotext could not read the PDF: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn an_insurer_gets_coverage_diagnoses_and_session_counts_but_no_note_text() {
    let home = home();
    let page = report(&home, "insurer", "insurer.html", &[]);
    for expected in ["Blue Shield", "XYZ123", "R48.2", "Member card", "Therapy sessions"] {
        assert!(page.contains(expected), "`{expected}` missing");
    }
    // Speech: two sessions in the last 90 days, 45 + 30 minutes; occupational: one of 60.
    assert!(page.contains("<td>Speech therapy</td><td>2</td><td>75</td>"), "{page}");
    assert!(
        page.contains("<td>Occupational therapy</td><td>1</td><td>60</td>"),
        "{page}"
    );
    assert!(page.contains("<td>Psychology</td><td>1</td><td>50</td>"), "{page}");
    assert!(page.contains("<td>Total</td><td>4</td><td>185</td>"), "{page}");
    for private in [SPEECH_NOTE, OT_NOTE, "Guanfacine", "Penicillin", "555-0101"] {
        assert!(!page.contains(private), "an insurer's report shows `{private}`");
    }
}

#[test]
fn since_sets_the_start_of_the_period() {
    let home = home();
    let since = days_ago(365).to_string();
    let page = report(&home, "specialist", "year.html", &["--since", &since]);
    assert!(page.contains(OLD_NOTE), "{page}");
    assert!(page.contains("Speech therapy (3 notes)"));
    let since = days_ago(12).to_string();
    let page = report(&home, "specialist", "recent.html", &["--since", &since]);
    assert!(page.contains(SPEECH_NOTE) && !page.contains(OT_NOTE) && !page.contains(OLD_NOTE));

    let future = (Local::now().date_naive() + Days::new(3)).to_string();
    let why = home
        .phr(["report", "--for", "iep", "--since", &future, "--out", "x.html"])
        .refused();
    assert!(why.contains("is in the future"), "{why}");
    let why = home
        .phr(["report", "--for", "iep", "--since", "01/02/2024", "--out", "x.html"])
        .refused();
    assert!(why.contains("use YYYY-MM-DD"), "{why}");
    assert!(!home.scratch("x.html").exists());
}

fn exports(home: &Home) -> Vec<Value> {
    let events = home.json(["audit", "--json"]);
    events
        .as_array()
        .expect("a list of events")
        .iter()
        .filter(|e| e["fields"]["kind"] == "export")
        .cloned()
        .collect()
}

#[test]
fn the_audit_log_names_the_audience_and_what_was_disclosed() {
    let home = home();
    assert!(exports(&home).is_empty());
    home.ok(["report", "--for", "iep", "--out", "school.pdf"]);
    assert!(home.scratch("school.pdf").exists());
    let events = exports(&home);
    assert_eq!(events.len(), 1, "{events:?}");
    let detail = events[0]["fields"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("School IEP team (iep)"), "{detail}");
    assert!(detail.contains("goals") && detail.contains("therapy notes"), "{detail}");
    assert!(detail.contains("school.pdf"), "{detail}");
    let sections: Vec<&str> = events[0]["fields"]["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        sections,
        ["profile", "allergies", "medications", "goals", "notes", "documents"]
    );
    let text = home.ok(["audit"]).stdout;
    assert!(text.contains("export  report for School IEP team"), "{text}");
}

#[test]
fn an_unknown_audience_or_format_is_refused_and_writes_nothing() {
    let home = home();
    let why = home.phr(["report", "--for", "teacher", "--out", "r.pdf"]).refused();
    assert!(
        why.contains("`teacher` is not a report audience: use iep, specialist or insurer"),
        "{why}"
    );
    for bad in ["r.docx", "r.txt", "report"] {
        let why = home.phr(["report", "--for", "iep", "--out", bad]).refused();
        assert!(why.contains("does not end in .pdf or .html"), "{why}");
        assert!(!home.scratch(bad).exists());
    }
    assert!(!home.scratch("r.pdf").exists());
    let leftovers: Vec<_> = std::fs::read_dir(home.scratch(""))
        .expect("scratch dir")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "home")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(exports(&home).is_empty(), "a refused report is not an export");
}

#[test]
fn help_says_what_each_audience_gets() {
    let home = Home::new();
    let help = home.ok(["report", "--help"]).stdout;
    for line in [
        "iep ",
        "never insurance, diagnoses,",
        "immunizations only if the",
        "--with-immunizations",
        "specialist",
        "insurer",
        ".pdf or .html",
    ] {
        assert!(help.contains(line), "`{line}` is not in:\n{help}");
    }
}

/// `phr serve` on a home, in another working directory; killed when dropped.
struct Serving {
    child: Child,
    _cwd: tempfile::TempDir,
}

impl Serving {
    fn start(home: &Home) -> Serving {
        let cwd = tempfile::tempdir().expect("a directory for the server");
        let mut child = Command::new(phr_bin())
            .arg("--home")
            .arg(home.path())
            .args(["--net", "local", "serve"])
            .current_dir(cwd.path())
            .env("PHR_PASSPHRASE", PASSPHRASE)
            .env_remove("PHR_HOME")
            .env_remove("PHR_LOG")
            .env_remove("PHR_BIND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting phr serve");
        let lines = lines_of(&mut child);
        let serving = Serving { child, _cwd: cwd };
        // It prints how peers reach it once it accepts commands.
        loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(l) if l.contains("phr sync --peer ") => break,
                Ok(_) => {}
                Err(_) => panic!("phr serve did not start"),
            }
        }
        assert!(home.path().join("serve.sock").exists());
        serving
    }
}

fn lines_of(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_report_made_while_serving_is_written_where_the_caller_asked() {
    let home = home();
    let serving = Serving::start(&home);
    let run = home.ok(["report", "--for", "iep", "--out", "served/school.html"]);
    assert!(run.stdout.contains("wrote the iep report"), "{}", run.stdout);
    let page = std::fs::read_to_string(home.scratch("served/school.html")).expect("the report, beside the caller");
    assert!(page.contains(PATIENT) && page.contains(GOAL_S));
    assert_eq!(exports(&home).len(), 1);
    drop(serving);
}

#[test]
fn a_report_over_progress_values_no_device_accepts_ends_and_stays_small() {
    // Values a hostile caregiver's device (or an old phr) could have put into the record.
    let dev = Dev::init(PATIENT, "Mum's phone");
    let goal = dev.home.add("goals", &["--goal", GOAL_S]);
    {
        let mut device = phr::Device::open(&dev.home.path(), PASSPHRASE).expect("the home");
        let steps: Vec<_> = [(4, -1e20), (3, 1e308), (2, -1e308), (1, 1e-300)]
            .into_iter()
            .map(|(ago, value)| (days_ago(ago), value))
            .collect();
        device
            .write(|r| progress_unchecked(r, &goal, &steps))
            .expect("written unchecked");
    }
    for file in ["hostile.html", "hostile.pdf"] {
        // Bounded: a report that never ends is killed after PATIENCE and the test fails.
        let run = dev
            .spawn([
                "report",
                "--for",
                "iep",
                "--out",
                &dev.home.scratch(file).display().to_string(),
            ])
            .finish()
            .ok();
        assert!(run.stdout.contains("wrote the iep report"), "{}", run.stdout);
        let size = std::fs::metadata(dev.home.scratch(file)).expect("the report").len();
        assert!(size < 2_000_000, "{file} is {size} bytes");
    }
    let page = std::fs::read_to_string(dev.home.scratch("hostile.html")).expect("the report");
    assert!(page.contains(GOAL_S) && page.contains("-1e20"), "{page}");
}

/// The first sample bundle with procedures and immunizations, imported into a new home.
fn imported_patient() -> Option<(Home, Value)> {
    let path = common::fhir_roundtrip::fhir_samples().into_iter().find(|p| {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        text.contains("\"Procedure\"") && text.contains("\"Immunization\"") && text.contains("\"Condition\"")
    })?;
    let home = Home::init("Imported patient");
    home.ok(["import", "--fhir", path.to_str().unwrap_or_default()]);
    let bundle = common::fhir_roundtrip::read_json(&path);
    Some((home, bundle))
}

/// The `text` (else the first coding's display) of the `code`-like element of the first
/// resource of type `ty` in `bundle`.
fn first_label(bundle: &Value, ty: &str, key: &str) -> String {
    let res = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == ty)
        .unwrap_or_else(|| panic!("no {ty}"));
    res[key]["text"]
        .as_str()
        .or(res[key]["coding"][0]["display"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_specialist_reads_an_imported_patients_diagnoses_procedures_and_immunizations_under_their_own_headings() {
    let Some((home, bundle)) = imported_patient() else {
        eprintln!("skipped: no FHIR samples");
        return;
    };
    let page = report(&home, "specialist", "specialist.html", &[]);
    let diagnoses = position(&page, "<h2>Diagnoses</h2>");
    let procedures = position(&page, "<h2>Procedures</h2>");
    let immunizations = position(&page, "<h2>Immunizations</h2>");
    assert!(diagnoses < procedures && procedures < immunizations);
    assert!(!page.contains("Procedure: "), "no procedure is listed as a diagnosis");
    let procedure = first_label(&bundle, "Procedure", "code");
    let vaccine = first_label(&bundle, "Immunization", "vaccineCode");
    assert!(position(&page, &procedure) > procedures, "{procedure}");
    assert!(position(&page, &vaccine) > immunizations, "{vaccine}");
    assert!(page.contains("<h2>Vital signs (latest)</h2>"));
}

#[test]
fn a_school_report_has_immunizations_only_when_the_family_adds_them() {
    let Some((home, bundle)) = imported_patient() else {
        eprintln!("skipped: no FHIR samples");
        return;
    };
    let vaccine = first_label(&bundle, "Immunization", "vaccineCode");
    let page = report(&home, "iep", "school.html", &[]);
    assert!(!page.contains("Immunizations"), "not offered by default");
    let page = report(&home, "iep", "school-with.html", &["--with-immunizations"]);
    assert!(position(&page, &vaccine) > position(&page, "<h2>Immunizations</h2>"));
    assert!(!page.contains("<h2>Procedures</h2>") && !page.contains("<h2>Diagnoses</h2>"));
    let disclosed = exports(&home);
    let with = disclosed
        .iter()
        .find(|e| {
            e["fields"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("school-with.html"))
        })
        .expect("the report's audit event");
    let sections = with["fields"]["sections"].as_array().expect("sections");
    assert!(sections.iter().any(|s| s == "immunizations"), "{with}");
    let without = disclosed
        .iter()
        .find(|e| {
            e["fields"]["detail"]
                .as_str()
                .is_some_and(|d| d.ends_with("school.html"))
        })
        .expect("the first report's audit event");
    assert!(!without.to_string().contains("immunizations"), "{without}");
    let refused = home
        .phr(["report", "--for", "insurer", "--out", "x.html", "--with-immunizations"])
        .refused();
    assert!(refused.contains("--for iep"), "{refused}");
}
