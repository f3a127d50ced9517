//! The patient's side of working with a clinic, with the real `phr` binary: secure messages,
//! appointment requests, intake forms, and entries named by who wrote them. The clinic's own
//! writes are stood in for by `phr add` (the same entries its node writes); a caregiver joins
//! with a share ticket over loopback to show writes within a grant and commands forwarded to
//! a running `phr serve`.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use common::processes::spawn_phr;
use common::{Home, Run};
use serde_json::{Value, json};

/// A new record whose device is called "Mia's phone".
fn mias_phone() -> Home {
    let home = Home::new();
    home.ok(["init", "--name", "Mia Lopez", "--device-name", "Mia's phone"]);
    home
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}"))
}

/// The intake form a clinic sends, written as its node would write it; returns its id.
fn send_intake(home: &Home) -> String {
    home.add(
        "forms",
        &[
            "--title",
            "Speech intake",
            "--status",
            "sent",
            "--question",
            "text=Any allergies?; id=allergies; kind=yesno",
            "--question",
            "text=Age in years; id=age; kind=number",
            "--question",
            "text=Date of the last hearing test; id=hearing; kind=date",
            "--question",
            "Anything else we should know?",
        ],
    )
}

#[test]
fn messages_are_sent_and_listed_by_thread_with_who_wrote_them() {
    let home = mias_phone();
    let out = home.ok(["messages", "send", "--thread", "Homework", "We practised /s/ every day"]);
    assert!(out.stdout.starts_with("sent message "), "{}", out.stdout);
    // A reply as the clinic writes it: its own `from`, to the family.
    home.add(
        "messages",
        &[
            "--thread",
            "Homework",
            "--body",
            "Great, keep going",
            "--from",
            "J. Ames",
            "--to",
            "Mia's family",
        ],
    );
    let sent = home.json([
        "messages",
        "send",
        "--thread",
        "Billing",
        "--to",
        "Front desk",
        "Is the May invoice covered?",
        "--json",
    ]);
    assert_eq!(sent["fields"]["to"], "Front desk");
    assert_eq!(sent["author_name"], "Mia's phone");

    let threads = home.json(["messages", "list", "--json"]);
    let threads = list(&threads);
    let subjects: Vec<&Value> = threads.iter().map(|t| &t["thread"]).collect();
    assert_eq!(subjects, ["Homework", "Billing"], "the newest thread comes last");
    let homework = list(&threads[0]["messages"]);
    let bodies: Vec<&Value> = homework.iter().map(|m| &m["fields"]["body"]).collect();
    assert_eq!(bodies, ["We practised /s/ every day", "Great, keep going"]);
    assert_eq!(
        homework[0]["fields"]["from"], "Mia Lopez via Mia's phone",
        "`from` defaults to the person, with the device"
    );
    assert_eq!(homework[0]["author_name"], "Mia's phone");
    assert_eq!(homework[1]["fields"]["from"], "J. Ames");

    let text = home.ok(["messages", "list"]).stdout;
    assert!(text.contains("== Homework (2 messages)"), "{text}");
    assert!(text.contains("J. Ames (sent by Mia's phone) → Mia's family"), "{text}");
    assert!(text.contains("      Is the May invoice covered?"), "{text}");
    assert!(text.find("Homework").unwrap() < text.find("Billing").unwrap(), "{text}");

    let one = home.json(["messages", "list", "--thread", "homework", "--json"]);
    assert_eq!(list(&one).len(), 1, "{one}");
    assert_eq!(list(&one[0]["messages"]).len(), 2);
    let none = home.ok(["messages", "list", "--thread", "Holidays"]).stdout;
    assert!(
        none.contains("no thread `Holidays`; the threads are: Homework, Billing"),
        "{none}"
    );
    let empty = home.phr(["messages", "send", "--thread", " ", "hello"]).refused();
    assert!(empty.contains("thread subject"), "{empty}");
}

#[test]
fn appointments_are_requested_and_listed_with_their_status_and_who_set_it() {
    let home = mias_phone();
    let out = home.ok([
        "appointments",
        "request",
        "--reason",
        "Speech evaluation",
        "--start",
        "2024-05-02 14:30",
        "--minutes",
        "60",
        "--discipline",
        "speech",
        "--notes",
        "Afternoons only",
    ]);
    assert!(out.stdout.contains("requested appointment"), "{}", out.stdout);
    // One the clinic scheduled, earlier in the calendar.
    let scheduled = home.add(
        "appointments",
        &[
            "--reason",
            "Hearing screen",
            "--start",
            "2024-04-20 09:00",
            "--status",
            "scheduled",
            "--clinician",
            "J. Ames",
        ],
    );

    let rows = home.json(["appointments", "list", "--json"]);
    let rows = list(&rows);
    let reasons: Vec<&Value> = rows.iter().map(|r| &r["fields"]["reason"]).collect();
    assert_eq!(reasons, ["Hearing screen", "Speech evaluation"], "by date");
    let request = &rows[1];
    assert_eq!(request["fields"]["status"], "requested");
    assert_eq!(request["fields"]["start"], "2024-05-02T14:30:00");
    assert_eq!(request["fields"]["minutes"], 60.0);
    assert_eq!(request["fields"]["notes"], "Afternoons only");
    assert_eq!(request["status_by_name"], "Mia's phone");
    assert_eq!(request["status_by"], home.status()["device"]);

    home.ok(["edit", "appointments", &scheduled, "--status", "confirmed"]);
    let text = home.ok(["appointments", "list"]).stdout;
    assert!(
        text.contains("confirmed  Hearing screen · with J. Ames  (confirmed by Mia's phone)"),
        "{text}"
    );
    assert!(
        text.contains("2024-05-02 14:30  requested  Speech evaluation · 60 min · speech"),
        "{text}"
    );
    let confirmed = home.json(["appointments", "list", "--status", "confirmed", "--json"]);
    assert_eq!(list(&confirmed).len(), 1);
    assert_eq!(
        home.ok(["appointments", "list", "--status", "cancelled"]).stdout.trim(),
        "no cancelled appointments"
    );

    let before = home.json(["history", "--json"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["appointments", "list", "--status", "maybe"],
            "`maybe` is not an appointment status",
        ),
        (
            &["appointments", "request", "--reason", "Visit", "--start", "tomorrow"],
            "`tomorrow` is not a date and time",
        ),
        (
            &[
                "appointments",
                "request",
                "--reason",
                "Visit",
                "--start",
                "2024-05-02 10:00",
                "--discipline",
                "astrology",
            ],
            "`astrology` is not one of: speech",
        ),
    ];
    for (args, message) in cases {
        let refused = home.phr(*args).refused();
        assert!(refused.contains(message), "`phr {}`: {refused}", args.join(" "));
    }
    assert_eq!(
        home.json(["history", "--json"]),
        before,
        "a refused request writes nothing"
    );
}

#[test]
fn an_intake_form_is_listed_filled_with_typed_answers_and_then_listed_as_answered() {
    let home = mias_phone();
    let form = send_intake(&home);

    let forms = home.json(["forms", "list", "--json"]);
    let forms = list(&forms);
    assert_eq!(forms.len(), 1, "{forms:?}");
    assert_eq!(forms[0]["id"], form.as_str());
    assert_eq!(forms[0]["title"], "Speech intake");
    assert_eq!(forms[0]["questions"], 4);
    assert_eq!(forms[0]["answered"], false);
    assert!(home.ok(["forms", "list"]).stdout.contains("[not answered]"));
    let shown = home.ok(["forms", "show", &form[..6]]).stdout;
    assert!(shown.contains("allergies  Any allergies? (yes/no)"), "{shown}");
    assert!(
        shown.contains("4          Anything else we should know? (text)"),
        "{shown}"
    );

    // Refused, naming the problem, and nothing written.
    let history = home.json(["history", "--json"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--answer", "allergies=no", "--answer", "shoe=9"],
            "form `Speech intake` has no question `shoe`; its questions are: allergies, age, hearing, 4",
        ),
        (
            &["--answer", "allergies=maybe"],
            "question `allergies` (Any allergies?): `maybe` is not yes or no",
        ),
        (
            &["--answer", "age=seven"],
            "question `age` (Age in years): `seven` is not a number",
        ),
        (
            &["--answer", "hearing=last spring"],
            "`last spring` is not a valid date: use YYYY-MM-DD",
        ),
        (&["--answer", "allergies"], "write each answer as QUESTION_ID=VALUE"),
        (
            &["--answer", "age=3", "--answer", "age=4"],
            "question `age` is answered twice",
        ),
    ];
    for (answers, message) in cases {
        let mut args = vec!["forms", "fill", form.as_str()];
        args.extend_from_slice(answers);
        let refused = home.phr(&args).refused();
        assert!(refused.contains(message), "`phr {}`: {refused}", args.join(" "));
    }
    let unknown = home.phr(["forms", "fill", "0000", "--answer", "age=3"]).refused();
    assert!(unknown.contains("no form `0000`"), "{unknown}");
    // Not a terminal (the harness gives no stdin): the questions and their ids are listed.
    let unasked = home.phr(["forms", "fill", &form]).refused();
    for line in [
        "no answers given for form `Speech intake`",
        "allergies  Any allergies? (yes/no)",
        "age        Age in years (a number)",
        "hearing    Date of the last hearing test (a date, YYYY-MM-DD)",
        "4          Anything else we should know? (text)",
    ] {
        assert!(unasked.contains(line), "{line:?} in:\n{unasked}");
    }
    assert_eq!(
        home.json(["history", "--json"]),
        history,
        "refused answers write nothing"
    );

    let out = home.ok([
        "forms",
        "fill",
        &form[..6],
        "--answer",
        "4=Loves trains",
        "--answer",
        "allergies=Y",
        "--answer",
        "age=07",
        "--answer",
        "hearing=2024-3-5",
    ]);
    assert!(
        out.stdout.contains("answered form `Speech intake` with 4 answers"),
        "{}",
        out.stdout
    );

    let forms = home.json(["forms", "list", "--json"]);
    let forms = list(&forms);
    assert_eq!(forms.len(), 1, "a response is not listed as a form of its own");
    assert_eq!(forms[0]["answered"], true);
    assert!(home.ok(["forms", "list"]).stdout.contains("[answered "));
    let response = home.entry("forms", forms[0]["response"].as_str().unwrap());
    assert_eq!(response["fields"]["kind"], "response");
    assert_eq!(response["fields"]["template"], form.as_str());
    assert_eq!(response["fields"]["status"], "completed");
    assert_eq!(response["fields"]["title"], "Speech intake");
    // Each answer typed by its question (yes/no, a plain number, a full date), in form order.
    assert_eq!(
        response["fields"]["answers"],
        json!([
            { "question": "allergies", "answer": "yes" },
            { "question": "age", "answer": "7" },
            { "question": "hearing", "answer": "2024-03-05" },
            { "question": "4", "answer": "Loves trains" },
        ])
    );
    let shown = home.json(["forms", "show", &form, "--json"]);
    assert_eq!(shown["state"], "answered");
    assert_eq!(shown["questions"][2]["answer"], "2024-03-05");
    let refused = home
        .phr(["forms", "fill", response["id"].as_str().unwrap(), "--answer", "age=1"])
        .refused();
    assert!(refused.contains("is a response to form"), "{refused}");
}

#[test]
fn entries_are_listed_and_shown_with_the_name_of_who_wrote_them() {
    let home = mias_phone();
    let note = home.add(
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
    let listed = home.ok(["list", "notes"]).stdout;
    assert!(listed.contains("speech · J. Ames · 2024-02-01"), "{listed}");
    assert!(listed.trim_end().ends_with("(by Mia's phone)"), "{listed}");
    let shown = home.ok(["show", "notes", &note]).stdout;
    let device = home.status()["device"].as_str().unwrap().to_string();
    assert!(
        shown.contains(&format!("  author      Mia's phone ({})", &device[..8])),
        "{shown}"
    );
    let json = home.json(["list", "notes", "--json"]);
    assert_eq!(json[0]["author"], device.as_str());
    assert_eq!(json[0]["author_name"], "Mia's phone");
    assert_eq!(home.entry("notes", &note)["author_name"], "Mia's phone");
    assert_eq!(home.json(["show", "--json"])["notes"][0]["author_name"], "Mia's phone");
}

/// `phr --net local ARGS` on a home.
fn local(home: &Home, args: &[&str]) -> Run {
    let mut all = vec!["--net", "local"];
    all.extend_from_slice(args);
    home.phr(all)
}

#[test]
fn a_caregiver_messages_and_requests_but_may_not_fill_forms_and_the_family_sees_her_name_while_serving() {
    let owner = mias_phone();
    let form = send_intake(&owner);

    let mut share = spawn_phr(&owner, &["share", "--preset", "caregiver", "--label", "Grandma"]);
    let ticket = share.wait_line(|l| l.starts_with("PHRPAIR1"));
    let grandma = Home::new();
    local(&grandma, &["join", &ticket, "--name", "Grandma's phone"]).ok();
    share.finish().ok();

    // Within her grant (messages write, appointments request): `from` is her grant's label.
    let sent = grandma.json([
        "messages",
        "send",
        "--thread",
        "Weekend",
        "Mia said ten /s/ words",
        "--json",
    ]);
    assert_eq!(sent["fields"]["from"], "Grandma");
    assert_eq!(sent["author_name"], "Grandma");
    grandma.ok([
        "appointments",
        "request",
        "--reason",
        "Extra session before the holidays",
        "--start",
        "2024-12-20 10:00",
    ]);
    // Forms are hers to read, not to answer: told why, before any question is checked.
    assert_eq!(grandma.json(["forms", "list", "--json"])[0]["answered"], false);
    let why = grandma
        .phr(["forms", "fill", &form, "--answer", "allergies=no"])
        .refused();
    assert!(
        why.contains("access granted to `Grandma` does not allow filling in forms"),
        "{why}"
    );
    let why = grandma.phr(["forms", "fill", &form, "--answer", "shoe=9"]).refused();
    assert!(why.contains("does not allow filling in forms"), "{why}");

    // The family's device serves; her writes reach it, and commands run inside the server.
    let mut serve = spawn_phr(&owner, &["serve"]);
    let line = serve.wait_line(|l| l.contains("phr sync --peer "));
    let addr = line.rsplit(' ').next().unwrap().to_string();
    local(&grandma, &["sync", "--peer", &addr]).ok();

    let threads = owner.json(["messages", "list", "--json"]);
    let weekend = &list(&threads)[0]["messages"][0];
    assert_eq!(weekend["fields"]["body"], "Mia said ten /s/ words");
    assert_eq!(weekend["author_name"], "Grandma");
    assert!(owner.ok(["list", "messages"]).stdout.contains("(by Grandma)"));
    let text = owner.ok(["appointments", "list"]).stdout;
    assert!(text.contains("(requested by Grandma)"), "{text}");

    owner.ok([
        "messages",
        "send",
        "--thread",
        "Weekend",
        "--to",
        "Grandma",
        "Wonderful!",
    ]);
    let threads = owner.json(["messages", "list", "--thread", "weekend", "--json"]);
    let names: Vec<&Value> = list(&threads[0]["messages"])
        .iter()
        .map(|m| &m["author_name"])
        .collect();
    assert_eq!(names, ["Grandma", "Mia's phone"]);

    let unasked = owner.phr(["forms", "fill", &form]).refused();
    assert!(
        unasked.contains("hearing    Date of the last hearing test"),
        "{unasked}"
    );
    owner.ok(["forms", "fill", &form, "--answer", "allergies=no", "--answer", "age=7"]);
    assert_eq!(owner.json(["forms", "list", "--json"])[0]["answered"], true);

    // While serving, `phr sync` runs too: the serving process dials the peer on its endpoint.
    grandma.ok(["messages", "send", "--thread", "Weekend", "Bedtime story done"]);
    let mut grandma_serves = spawn_phr(&grandma, &["serve"]);
    let line = grandma_serves.wait_line(|l| l.contains("phr sync --peer "));
    let grandma_addr = line.rsplit(' ').next().unwrap().to_string();
    let synced = local(&owner, &["sync", "--peer", &grandma_addr]).ok().stdout;
    let grandma_key = &grandma_addr[..grandma_addr.find('@').unwrap()];
    assert!(synced.contains(&grandma_key[..5]), "{synced}");
    let threads = owner.json(["messages", "list", "--thread", "weekend", "--json"]);
    let bodies: Vec<&Value> = list(&threads[0]["messages"])
        .iter()
        .map(|m| &m["fields"]["body"])
        .collect();
    assert!(bodies.contains(&&Value::from("Bedtime story done")), "{bodies:?}");
    let json = local(&owner, &["sync", "--peer", &grandma_addr, "--json"]).ok().stdout;
    let reports: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(reports[0]["ok"], true, "{reports}");
    drop(grandma_serves);
    drop(serve);
}
