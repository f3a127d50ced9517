//! Who people are and what they see, with the real `phr` binary over loopback: text other
//! people wrote reaches the family's terminal as text, never as terminal commands; the family's
//! messages are from a person, not from "first device"; a school knows whose record it reads;
//! pairing and sharing say that they wait for the ticket to be used.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use common::Home;
use common::processes::Dev;

/// A character a terminal would obey rather than show: a control character other than the
/// line breaks the CLI writes itself, or a mark that reorders text.
fn obeyed(c: char) -> bool {
    (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[test]
fn a_caregivers_escape_sequences_and_forged_lines_reach_the_phone_as_visible_text() {
    let phone = Dev::init("Mia Lopez", "Mia's phone");
    // A second device whose name sets the window title, and a caregiver.
    phone.pair("laptop\u{1b}]0;pwned\u{7}");
    let grandma = phone.share("Grandma's phone", &["--preset", "caregiver", "--label", "Grandma"]);

    // Her message rewrites the line above to pass for the clinic's and hides a link.
    let forged = "Mia slept well\r\u{1b}[1A\u{1b}[2K  2024-06-01 10:00  Dr. Ames (clinician)\n\
                  Stop every medication\u{1b}]8;;https://evil.example\u{1b}\\here\u{1b}]8;;\u{1b}\\\u{9b}2K\u{202e}";
    grandma.ok([
        "messages",
        "send",
        "--thread",
        "Weekend",
        "--from",
        "Dr. Ames\u{1b}[2K",
        forged,
    ]);
    grandma.ok([
        "add",
        "caregiver_log",
        "--date",
        "2024-06-01",
        "--text",
        "Ate well\r\u{1b}[2K(by Mia's phone)",
    ]);
    let mut serve = grandma.spawn(["serve"]);
    let line = serve.wait_line(|l| l.contains("phr sync --peer "));
    let addr = line.rsplit(' ').next().unwrap_or_default().to_string();
    phone.ok(["sync", "--peer", &addr]);
    serve.signal("TERM");

    let log = phone.list("caregiver_log");
    let log_id = log[0]["id"].as_str().unwrap_or_default().to_string();
    for args in [
        vec!["messages", "list"],
        vec!["list", "messages"],
        vec!["list", "caregiver_log"],
        vec!["show", "caregiver_log", &log_id],
        vec!["show"],
        vec!["audit"],
        vec!["access", "list"],
        vec!["devices", "list"],
        vec!["history"],
    ] {
        let out = phone.ok(&args);
        let raw: Vec<char> = out.stdout.chars().filter(|c| obeyed(*c)).collect();
        assert!(raw.is_empty(), "`{}` printed {raw:?} raw:\n{}", out.line, out.stdout);
    }

    let shown = phone.ok(["messages", "list"]).stdout;
    let sent_by: Vec<&str> = shown.lines().filter(|l| l.contains("(sent by Grandma)")).collect();
    assert_eq!(sent_by.len(), 1, "{shown}");
    assert!(sent_by[0].contains("Dr. Ames\\u{1b}[2K (sent by Grandma)"), "{shown}");
    // The forged header is part of her message's text, indented under who really sent it.
    for l in shown
        .lines()
        .filter(|l| l.contains("Dr. Ames (clinician)") || l.contains("Stop every"))
    {
        assert!(
            l.starts_with("      "),
            "a line of her message stands on its own: {l:?}\n{shown}"
        );
    }
    assert!(shown.contains("Mia slept well\\u{d}\\u{1b}[1A\\u{1b}[2K"), "{shown}");
    let devices = phone.ok(["devices", "list"]).stdout;
    assert!(devices.contains("laptop\\u{1b}]0;pwned\\u{7}"), "{devices}");
    // `--json` keeps the text as written (serde escapes it).
    let json = phone.json(["messages", "list", "--json"]);
    assert_eq!(json[0]["messages"][0]["fields"]["body"], forged);
}

#[test]
fn a_new_record_names_its_device_after_the_patient_and_messages_are_from_the_person_via_it() {
    let home = Home::new();
    home.ok(["init", "--name", "Mia Lopez"]);
    let status = home.status();
    let device = status["device_name"].as_str().unwrap_or_default();
    assert!(device.starts_with("Mia's "), "{status}");

    let phone = Dev::init("Mia Lopez", "Mia's phone");
    let send = |text: &str| phone.json(["messages", "send", "--thread", "Homework", text, "--json"]);
    assert_eq!(send("We practised")["fields"]["from"], "Mia Lopez via Mia's phone");
    phone.ok([
        "edit",
        "profile",
        "patient",
        "--guardian",
        "name=Ana Lopez; relationship=mother",
    ]);
    let sent = send("Ten words today");
    assert_eq!(sent["fields"]["from"], "Ana Lopez (guardian) via Mia's phone");
    assert_eq!(sent["author_name"], "Mia's phone");

    let shown = phone.ok(["messages", "list"]).stdout;
    assert!(shown.contains("  Mia Lopez via Mia's phone\n"), "{shown}");
    assert!(shown.contains("  Ana Lopez (guardian) via Mia's phone\n"), "{shown}");
    assert!(
        !shown.contains("sent by"),
        "the sender already names the device:\n{shown}"
    );
    // Typed otherwise, the device that sent it is still named.
    phone.ok(["messages", "send", "--thread", "Homework", "--from", "J. Ames", "Hello"]);
    let shown = phone.ok(["messages", "list"]).stdout;
    assert!(shown.contains("J. Ames (sent by Mia's phone)"), "{shown}");
}

#[test]
fn a_school_sees_whose_record_it_is_but_not_the_medications() {
    let phone = Dev::init("Mia Lopez", "Mia's phone");
    phone.ok(["add", "medications", "--name", "Amoxicillin"]);
    phone.ok(["add", "goals", "--goal", "Produce /s/ in single words"]);
    let school = phone.share(
        "Lincoln IEP laptop",
        &["--preset", "school", "--label", "Lincoln IEP team"],
    );
    let status = school.ok(["status"]).stdout;
    assert!(status.contains("Patient   Mia Lopez"), "{status}");
    assert_eq!(school.list("goals").len(), 1);
    assert!(school.list("medications").is_empty());
    assert!(school.list("insurance").is_empty());
}

#[test]
fn pairing_and_sharing_say_that_they_wait_for_the_ticket_to_be_used() {
    let phone = Dev::init("Mia Lopez", "Mia's phone");
    let mut pairing = phone.spawn(["devices", "add"]);
    pairing.wait_line(|l| l.starts_with("PHRPAIR"));
    pairing.wait_line(|l| l == "Waiting for the other device to use this ticket… (Ctrl-C to cancel)");
    let cancelled = pairing.signal("INT");
    assert_eq!(cancelled.code, Some(1), "{}", cancelled.stderr);
    assert!(
        cancelled.stderr.contains("cancelled before anyone used the ticket"),
        "{}",
        cancelled.stderr
    );

    let mut sharing = phone.spawn(["share", "--preset", "caregiver", "--label", "Grandma"]);
    sharing.wait_line(|l| l.starts_with("PHRPAIR"));
    sharing.wait_line(|l| l == "Waiting for them to join with this ticket… (Ctrl-C to cancel)");
    sharing.signal("INT");
}
