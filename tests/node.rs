//! The clinic's node as a clinic runs it: a real `phr-node` daemon on 127.0.0.1, fed over its
//! HTTP API and driven with its own subcommands, and patients' devices running the real `phr`
//! binary (`PHR_NET=local`: no relays, no discovery). Every process a test starts is killed
//! when the test ends, however it ends, and every wait is bounded.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::fhir_validator::assert_valid_fhir;
use common::processes::{CLINIC, Dev as Device, Node, PATIENCE, Proc, session_note};
use common::{PASSPHRASE, Run, phr_bin};
use phr::sync::clinic::ClinicTicket;
use serde_json::{Value, json};

/// Jane Roe, the clinic's speech-language pathologist, as patients' devices name her.
const JANE: &str = "Jane Roe, SLP — Bright Steps Therapy";

/// Assert that a command was refused with `reason`: exit code 1 and no panic.
#[track_caller]
fn assert_refused(out: &Run, reason: &str) {
    assert!(
        !out.stderr.contains("panicked"),
        "`{}` panicked:\n{}",
        out.line,
        out.stderr
    );
    assert_eq!(
        out.code,
        Some(1),
        "`{}` should have been refused; stdout:\n{}\nstderr:\n{}",
        out.line,
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains(reason),
        "`{}` was refused without saying `{reason}`:\n{}",
        out.line,
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// FHIR resources as the clinic's EHR sends them
// ---------------------------------------------------------------------------------------------

/// The clinic's speech intake form.
fn intake_form() -> Value {
    json!({
        "resourceType": "Questionnaire",
        "id": "speech-intake",
        "status": "active",
        "title": "Speech intake",
        "item": [
            { "linkId": "allergies", "text": "Any allergies?", "type": "boolean", "required": true },
            { "linkId": "age", "text": "Age in years", "type": "integer" },
            { "linkId": "concerns", "text": "What worries you most?", "type": "text" }
        ]
    })
}

/// The family fills in the intake form `form` on `phone`, as a parent would.
fn fill_intake_form(phone: &Device, form: &str) -> Run {
    phone.ok([
        "forms",
        "fill",
        &form[..8],
        "--answer",
        "allergies=no",
        "--answer",
        "age=7",
        "--answer",
        "concerns=Lisps on /s/ at school",
    ])
}

/// The resource with `id` among `resources`.
#[track_caller]
fn find<'a>(resources: &'a [Value], id: &str) -> &'a Value {
    resources
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no {id} among {resources:#?}"))
}

fn ids(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The stories
// ---------------------------------------------------------------------------------------------

#[test]
fn a_clinicians_note_reaches_every_device_of_its_patient_and_no_other_patient() {
    let node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    // Mia's family: the phone made the record, the laptop was paired with it.
    let mia_phone = Device::init("Mia Lopez", "Mia's phone");
    let mia_laptop = mia_phone.pair("Mia's laptop");
    mia_phone.connect(&node);
    let sam_phone = Device::init("Sam Okafor", "Sam's phone");
    sam_phone.connect(&node);
    let (mia, sam) = (mia_phone.record(), sam_phone.record());

    // The EHR posts Jane's note over HTTP, naming her only by display name.
    let pushed = node.push(
        &mia,
        "notes",
        &session_note(
            "visit-0302",
            "Subjective: Tired after school\nPlan: Practise /s/ blends daily",
        ),
    );
    assert_eq!(pushed["outcome"], "created", "{pushed}");
    assert_eq!(pushed["author"], JANE, "{pushed}");
    let note = pushed["id"].as_str().expect("the note's id").to_string();

    mia_phone.sync(&node);
    let on_phone = mia_phone.notes();
    assert_eq!(ids(&on_phone), std::slice::from_ref(&note), "{on_phone:#?}");
    assert_eq!(
        on_phone[0]["author_name"], JANE,
        "signed by Jane's own key: {on_phone:#?}"
    );
    assert_eq!(on_phone[0]["fields"]["clinician"], "Jane Roe");
    assert_eq!(on_phone[0]["fields"]["discipline"], "speech");
    assert_eq!(on_phone[0]["fields"]["plan"], "Practise /s/ blends daily");

    // The laptop syncs with the node alone: the phone is off (no phr process runs on it).
    mia_laptop.sync(&node);
    let on_laptop = mia_laptop.notes();
    assert_eq!(
        on_laptop, on_phone,
        "the laptop holds the same note, named the same way"
    );

    // Sam's record is hosted by the same node, and his note goes only to him. The clinician
    // is named with --clinician this time, through `phr-node push`.
    let file = sam_phone.home.scratch("sam-note.json");
    let sams_note = session_note("visit-0303", "Plan: Read the /r/ word list aloud");
    std::fs::write(&file, sams_note.to_string()).expect("writing the FHIR file");
    let file = file.to_string_lossy().into_owned();
    let out = node.cli_ok([
        "push",
        "note",
        "--patient",
        &sam[..12],
        "--file",
        &file,
        "--clinician",
        "Jane Roe",
    ]);
    assert!(out.stdout.starts_with("created note "), "{}", out.stdout);
    sam_phone.sync(&node);
    let on_sams_phone = sam_phone.notes();
    assert_eq!(on_sams_phone.len(), 1, "Sam gets his own note only: {on_sams_phone:#?}");
    assert_eq!(on_sams_phone[0]["fields"]["plan"], "Read the /r/ word list aloud");
    assert!(!ids(&on_sams_phone).contains(&note), "Sam received Mia's note");
    mia_phone.sync(&node);
    assert_eq!(ids(&mia_phone.notes()), [note], "Mia never receives Sam's note");
}

#[test]
fn an_intake_form_filled_offline_reaches_the_clinic_on_the_next_sync() {
    let mut node = Node::start_new();
    let phone = Device::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    let mia = phone.record();
    let form = node.push(&mia, "forms", &intake_form())["id"]
        .as_str()
        .expect("the form's id")
        .to_string();
    phone.sync(&node);
    let forms = phone.json(["forms", "list", "--json"]);
    assert_eq!(forms[0]["id"], form.as_str(), "{forms}");
    assert_eq!(forms[0]["state"], "not answered", "{forms}");

    // The clinic's node is down for the night; the family fills the form at home.
    node.stop();
    let filled = fill_intake_form(&phone, &form);
    assert!(
        filled.stdout.contains("reaches the clinic on the next sync"),
        "{}",
        filled.stdout
    );

    node.start();
    let completed = format!("/v1/patients/{mia}/forms?status=completed");
    assert!(node.bundle(&completed).is_empty(), "nothing answered before the sync");
    phone.sync(&node);
    let responses = node.bundle(&completed);
    assert_eq!(responses.len(), 1, "{responses:#?}");
    let response = &responses[0];
    assert_eq!(response["resourceType"], "QuestionnaireResponse", "{response:#}");
    assert_eq!(response["status"], "completed", "{response:#}");
    // The clinic's own questionnaire, as it sent it, not the entry the record keeps it as.
    assert_eq!(response["questionnaire"], "Questionnaire/speech-intake", "{response:#}");
    assert_ne!(form, "speech-intake");
    // The answers, typed by the questions they answer.
    let answer = |link: &str| {
        let items = response["item"].as_array().cloned().unwrap_or_default();
        let item = items.iter().find(|i| i["linkId"] == link).cloned();
        item.unwrap_or_else(|| panic!("no answer to {link}: {response:#}"))["answer"][0].clone()
    };
    assert_eq!(answer("allergies"), json!({ "valueBoolean": false }));
    assert_eq!(answer("age"), json!({ "valueInteger": 7 }));
    assert_eq!(answer("concerns"), json!({ "valueString": "Lisps on /s/ at school" }));
}

#[test]
fn a_familys_message_reaches_the_clinic_from_the_guardian_via_the_device() {
    let node = Node::start_new();
    let phone = Device::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    phone.ok([
        "edit",
        "profile",
        "patient",
        "--guardian",
        "name=Ana Lopez; relationship=mother",
    ]);
    phone.ok(["messages", "send", "--thread", "Homework", "We practised /s/ every day"]);
    phone.sync(&node);
    let messages = node.bundle(&format!("/v1/patients/{}/messages", phone.record()));
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[0]["sender"]["display"], "Ana Lopez (guardian) via Mia's phone",
        "{:#}",
        messages[0]
    );
}

#[test]
fn an_appointment_the_family_requests_is_confirmed_by_the_clinic_and_the_phone_sees_it() {
    let node = Node::start_new();
    node.staff("Ana Diaz", "front desk");
    let phone = Device::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    let mia = phone.record();

    let requested = phone.json([
        "appointments",
        "request",
        "--reason",
        "Speech evaluation",
        "--start",
        "2024-05-02 14:30",
        "--minutes",
        "60",
        "--json",
    ]);
    let id = requested["id"].as_str().expect("the request's id").to_string();
    phone.sync(&node);

    // The front desk sees the request among the requested appointments.
    let listed = node.cli_ok(["appointments", "list", "--patient", &mia, "--status", "requested"]);
    let bundle = listed.json();
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    let resources: Vec<Value> = entries.iter().map(|e| e["resource"].clone()).collect();
    let request = find(&resources, &id);
    assert_eq!(request["description"], "Speech evaluation", "{request:#}");
    // 14:30 on the phone's clock, in the clinic's zone (summer time in New York).
    assert_eq!(request["start"], "2024-05-02T14:30:00-04:00", "{request:#}");

    let confirmed = node.cli_ok([
        "appointments",
        "confirm",
        "--patient",
        &mia,
        &id[..8],
        "--clinician",
        "Ana Diaz",
    ]);
    assert!(
        confirmed.stdout.contains(&format!("appointment {id} confirmed")),
        "{}",
        confirmed.stdout
    );
    let still_requested = node.bundle(&format!("/v1/patients/{mia}/appointments?status=requested"));
    assert!(still_requested.is_empty(), "{still_requested:#?}");

    phone.sync(&node);
    let on_phone = phone.json(["appointments", "list", "--json"]);
    let mine = on_phone
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("the appointment is gone from the phone: {on_phone:#}"));
    assert_eq!(mine["fields"]["status"], "confirmed", "{mine:#}");
    assert_eq!(
        mine["status_by_name"], "Ana Diaz, front desk — Bright Steps Therapy",
        "the phone shows who confirmed it: {mine:#}"
    );
}

/// An appointment as the clinic's EHR books it.
fn booked_appointment() -> Value {
    json!({
        "resourceType": "Appointment",
        "id": "appt-5521",
        "status": "booked",
        "description": "Follow-up speech session",
        "start": "2024-03-12T15:30:00-04:00",
        "end": "2024-03-12T16:15:00-04:00",
        "participant": [
            { "actor": { "reference": "Patient/p-1", "display": "Mia Lopez" }, "status": "accepted" },
            { "actor": { "reference": "Practitioner/pr-7", "display": "Jane Roe" }, "status": "accepted" }
        ]
    })
}

#[test]
fn every_fhir_answer_of_the_clinic_api_is_valid_r4() {
    let node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    let phone = Device::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    let mia = phone.record();

    // What the EHR sends, and what the family sends back: a request with no length yet, a
    // message, the intake form filled in.
    node.push(&mia, "appointments", &booked_appointment());
    node.push(&mia, "messages", &front_desk_message("Please bring the practice sheet"));
    let form = node.push(&mia, "forms", &intake_form())["id"]
        .as_str()
        .expect("the form's id")
        .to_string();
    phone.ok([
        "appointments",
        "request",
        "--reason",
        "Hearing screen",
        "--start",
        "2024-06-03 09:15",
    ]);
    phone.ok(["messages", "send", "--thread", "Homework", "We practised /s/ every day"]);
    phone.sync(&node);
    fill_intake_form(&phone, &form);
    phone.sync(&node);

    // Every list the EHR reads (`Node::bundle` validates each), none of them empty.
    for list in [
        "appointments",
        "appointments?status=requested",
        "messages",
        "forms",
        "forms?status=completed",
    ] {
        let found = node.bundle(&format!("/v1/patients/{mia}/{list}"));
        assert!(!found.is_empty(), "{list}");
    }
    let appointments = node.bundle(&format!("/v1/patients/{mia}/appointments"));
    let booked = appointments
        .iter()
        .find(|a| a["status"] == "booked")
        .expect("the booked appointment");
    assert_eq!(
        booked["participant"][0]["actor"]["identifier"]["value"], mia,
        "the patient is a participant, named by record id: {booked:#}"
    );

    // Refusals are OperationOutcomes, valid too.
    let lab = json!({ "resourceType": "Observation", "status": "final", "code": { "text": "Hemoglobin" },
        "valueQuantity": { "value": "high" } });
    let labs = format!("/v1/patients/{mia}/labs");
    for (method, path, token, body) in [
        ("GET", "/v1/patients".to_string(), None, None),
        ("POST", labs, Some(node.token.as_str()), Some(lab.to_string())),
        (
            "GET",
            format!("/v1/patients/{}/messages", "f".repeat(64)),
            Some(&node.token),
            None,
        ),
        (
            "GET",
            format!("/v1/patients/{mia}/forms?status=sent"),
            Some(&node.token),
            None,
        ),
    ] {
        let (status, answer) = node.call(method, &path, token, body.as_deref());
        assert!((400..500).contains(&status), "{method} {path}: {status} {answer}");
        assert_valid_fhir(&format!("{method} {path} answering {status}"), &answer);
    }
}

#[test]
fn devices_the_record_does_not_vouch_for_are_refused_and_the_node_keeps_serving_the_others() {
    let node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    let phone = Device::init("Mia Lopez", "Mia's phone");
    let tablet = phone.pair("old tablet");
    phone.connect(&node);
    let mia = phone.record();
    node.push(
        &mia,
        "notes",
        &session_note("visit-1", "Plan: Practise /s/ blends daily"),
    );
    // While it is one of the record's devices, the node serves the tablet too.
    tablet.sync(&node);
    assert_eq!(tablet.notes().len(), 1);

    // A stranger's device: a record of its own, which this node does not host.
    let stranger = Device::init("Eve Stranger", "stranger's phone");
    let out = stranger.try_sync(&node);
    assert_refused(&out, &format!("does not hold record {}", &stranger.record()[..8]));
    assert_eq!(stranger.notes().len(), 0);

    // The tablet is lost: the family removes it, and the node learns of it at the phone's sync.
    let key = tablet.key();
    phone.ok(["devices", "remove", &key[..8]]);
    phone.sync(&node);
    node.push(
        &mia,
        "notes",
        &session_note("visit-2", "Plan: Read the /s/ story twice"),
    );
    let out = tablet.try_sync(&node);
    assert_refused(&out, &format!("device {} was removed from this record", &key[..8]));
    assert_eq!(tablet.notes().len(), 1, "nothing new reached the removed tablet");

    // The node is still up and serves the family's phone.
    phone.sync(&node);
    assert_eq!(phone.notes().len(), 2);
    assert_eq!(node.get("/health")["status"], "ok");
    let log = node.log();
    assert!(
        log.contains("was removed from this record"),
        "the node logs the refusal:\n{log}"
    );
}

#[test]
fn an_invitation_handed_to_the_wrong_family_is_withdrawn_and_then_refused() {
    let node = Node::start_new();
    let out = node.cli_ok(["invite", "--label", "Mia Lopez"]);
    let ticket = out.stdout.lines().nth(1).unwrap_or_default().trim().to_string();
    let listed = node.cli_ok(["invite", "--list"]).stdout;
    let invites: Value = serde_json::from_str(&listed).unwrap_or_else(|e| panic!("{e}: {listed}"));
    let id = invites
        .as_array()
        .and_then(|all| all.iter().find(|i| i["label"] == "Mia Lopez"))
        .and_then(|i| i["id"].as_str())
        .unwrap_or_else(|| panic!("the invitation is listed: {invites}"))
        .to_string();

    let out = node.cli_ok(["invite", "--withdraw", &id]);
    assert!(out.stdout.contains("nobody can connect with it"), "{}", out.stdout);
    let listed = node.cli_ok(["invite", "--list"]).stdout;
    assert!(!listed.contains(&id), "{listed}");

    let wrong_family = Device::init("Noah Park", "Noah's phone");
    let out = wrong_family.phr(["clinic", "connect", &ticket]);
    assert_refused(&out, "withdrawn");
    assert!(node.get("/v1/patients").as_array().is_some_and(|p| p.is_empty()));
    // Withdrawing it again, or an id that never existed, says so.
    let again = node.cli(["invite", "--withdraw", &id]);
    assert!(again.stderr.contains("no invitation"), "{}", again.stderr);
}

#[test]
fn a_refused_clinic_invitation_leaves_the_clinic_no_access() {
    let node = Node::start_new();
    let phone = Device::init("Mia Lopez", "Mia's phone");
    // An invitation whose secret is wrong (mistyped, or forged): the node refuses it.
    let mut ticket = ClinicTicket::parse(&node.invite()).expect("the node's invitation parses");
    ticket.secret[0] ^= 1;
    let out = phone.phr(["clinic", "connect", &ticket.to_text()]);
    assert_refused(&out, "not one this clinic holds");
    assert_refused(&out, "no new access was granted");
    assert!(!out.stdout.contains("Granted"), "{}", out.stdout);
    let grants = phone.json(["access", "list", "--json"]);
    assert_eq!(grants, json!([]), "a refused connection leaves no grant behind");
    assert!(node.get("/v1/patients").as_array().is_some_and(|p| p.is_empty()));

    // With the clinic's real invitation, the grant is made, and kept once the node took it.
    phone.connect(&node);
    let grants = phone.json(["access", "list", "--json"]);
    let grants = grants.as_array().cloned().unwrap_or_default();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["label"], CLINIC, "{grants:?}");
    assert_eq!(grants[0]["status"], "active", "{grants:?}");
}

#[test]
fn sigterm_during_a_sync_loses_no_acknowledged_push() {
    let mut node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    let phone = Device::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    let mia = phone.record();

    // The EHR pushes notes one after another until the node goes away, keeping the entry ids
    // of every push it got a 2xx answer for: those must survive whatever happens next.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let pusher = {
        let (agent, acked) = (node.agent.clone(), acked.clone());
        let url = format!("{}/v1/patients/{mia}/notes", node.http);
        let auth = format!("Bearer {}", node.token);
        std::thread::spawn(move || {
            // A page of text per note, so the phone's sync has some weight to it.
            let filler = "The child practised /s/ in initial position with picture cards. ".repeat(20);
            let mut answers = Vec::new();
            for i in 0..2_000 {
                let note = session_note(&format!("bulk-{i}"), &format!("Plan: session {i}. {filler}"));
                let Ok(mut res) = agent.post(&url).header("Authorization", &auth).send_json(&note) else {
                    break; // the node is gone
                };
                let status = res.status().as_u16();
                let body: Value = res.body_mut().read_json().unwrap_or_default();
                if (200..300).contains(&status) {
                    let id = body["id"].as_str().unwrap_or_default().to_string();
                    acked.lock().unwrap_or_else(PoisonError::into_inner).push(id);
                } else {
                    answers.push(format!("{status}: {body}"));
                }
            }
            answers
        })
    };
    let count = || acked.lock().unwrap_or_else(PoisonError::into_inner).len();
    let until = Instant::now() + PATIENCE;
    while count() < 200 {
        assert!(Instant::now() < until, "only {} pushes in {PATIENCE:?}", count());
        assert!(!pusher.is_finished(), "the pusher stopped early:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }

    // The phone syncs while the pushes go on; the node is stopped once the session is open.
    // A sync can end before it is seen open, so a few are tried (each has more to fetch).
    let mut caught = None;
    for _ in 0..5 {
        let mut cmd = Command::new(phr_bin());
        cmd.arg("--home")
            .arg(phone.home.path())
            .args(["sync", "--peer", &node.sync, "--json"])
            .env("PHR_PASSPHRASE", PASSPHRASE)
            .env("PHR_NET", "local")
            .env_remove("PHR_HOME")
            .env_remove("PHR_LOG");
        let mut sync = Proc::spawn(cmd, "phr sync (on Mia's phone)".into());
        let until = Instant::now() + PATIENCE;
        let seen = loop {
            if sync.exited() || Instant::now() > until {
                break false;
            }
            if node.metric("phr_connections_active") >= 1.0 {
                break true;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if seen {
            caught = Some(sync);
            break;
        }
        sync.finish().ok();
    }
    let Some(sync) = caught else {
        node.fail("no phone sync was ever seen in progress on the node".into());
    };
    let pushed_before_stop = count();
    node.stop();
    let refused = pusher.join().expect("the pusher thread");
    assert!(
        refused.iter().all(|r| !r.starts_with('4')),
        "the node refused notes it should have taken: {refused:#?}"
    );
    // The interrupted sync may fail or finish; either way it ends, and nothing of it is lost.
    let interrupted = sync.finish();
    let acked = acked.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert!(acked.len() >= pushed_before_stop);
    eprintln!(
        "SIGTERM after {pushed_before_stop} acknowledged pushes ({} in all); the interrupted sync exited {:?}: {}",
        acked.len(),
        interrupted.code,
        interrupted.stderr.trim()
    );

    node.start();
    phone.sync(&node);
    let on_phone = ids(&phone.notes());
    let missing: Vec<&String> = acked.iter().filter(|id| !on_phone.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged notes were lost across the SIGTERM: {missing:?}\n\
         interrupted sync: {interrupted:?}\nnode's log:\n{}",
        missing.len(),
        acked.len(),
        node.log()
    );
    // The phone has caught up completely: another sync brings nothing new.
    let again = phone.sync(&node);
    assert_eq!(again["received"], json!({}), "{again:#}");
}

#[test]
fn a_restarted_node_serves_the_same_records_staff_and_identity() {
    let mut node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    node.staff("Ana Diaz", "front desk");
    let mia_phone = Device::init("Mia Lopez", "Mia's phone");
    mia_phone.connect(&node);
    let sam_phone = Device::init("Sam Okafor", "Sam's phone");
    sam_phone.connect(&node);
    let mia = mia_phone.record();
    node.push(
        &mia,
        "notes",
        &session_note("visit-1", "Plan: Practise /s/ blends daily"),
    );

    let patients = node.get("/v1/patients");
    let staff = node.get("/v1/staff");
    let clinic = node.get("/v1/clinic");
    assert_eq!(patients.as_array().map(Vec::len), Some(2), "{patients:#}");
    assert_eq!(staff.as_array().map(Vec::len), Some(2), "{staff:#}");

    node.stop();
    let before = node.sync.clone();
    node.start();
    assert_eq!(node.get("/v1/patients"), patients, "the same patients");
    assert_eq!(node.get("/v1/staff"), staff, "the same staff, with the same keys");
    assert_eq!(node.get("/v1/clinic")["key"], clinic["key"], "the same clinic identity");
    let key = |addr: &str| addr.split('@').next().unwrap_or_default().to_string();
    assert_eq!(key(&node.sync), key(&before), "devices reach the same node key");

    // Jane's key still writes after the restart, and the phone finds the node where node.addr
    // says it now listens (with --listen 127.0.0.1:0 the port may have changed).
    node.push(
        &mia,
        "notes",
        &session_note("visit-2", "Plan: Read the /s/ story twice"),
    );
    let addr = node.addr_file()["sync"].as_str().expect("a sync address").to_string();
    let synced = mia_phone.ok(["sync", "--peer", &addr]);
    assert!(synced.stdout.contains("received"), "{}", synced.stdout);
    let notes = mia_phone.notes();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(notes.iter().all(|n| n["author_name"] == JANE), "{notes:#?}");
}

#[test]
fn the_http_api_answers_health_openly_guards_everything_else_and_refuses_bad_fhir_whole() {
    let node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    let phone = Device::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    Device::init("Sam Okafor", "Sam's phone").connect(&node);
    let mia = phone.record();

    // Health checks and Prometheus need no token.
    let (status, health) = node.call("GET", "/health", None, None);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["clinic"], CLINIC, "{health}");
    let hosted = node.get("/v1/patients").as_array().map_or(0, Vec::len);
    assert_eq!(hosted, 2);
    assert_eq!(node.metric("phr_records_hosted"), hosted as f64);
    let status = node.cli_ok(["status"]);
    assert!(
        status.stdout.contains(&format!("clinic {CLINIC} — ok")),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("phr_records_hosted 2"), "{}", status.stdout);

    // Everything else needs the token in the node's `api-token` file.
    let (status, body) = node.call("GET", "/v1/patients", None, None);
    assert_eq!(status, 401, "{body}");
    assert!(error_of(&body).contains("Authorization: Bearer"), "{body}");
    let (status, body) = node.call("GET", "/v1/patients", Some("not-the-token"), None);
    assert_eq!(status, 401, "{body}");
    assert!(error_of(&body).contains("wrong"), "{body}");
    let note = session_note("visit-1", "Plan: Practise /s/ blends daily").to_string();
    let notes = format!("/v1/patients/{mia}/notes");
    let (status, body) = node.call("POST", &notes, Some("not-the-token"), Some(&note));
    assert_eq!(status, 401, "{body}");

    // A resource that is not valid FHIR is refused with the path of its problem.
    let written = node.metric("phr_changes_written_total");
    let mut lab = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": { "text": "Hemoglobin" },
        "effectiveDateTime": "2024-03-02",
        "valueQuantity": { "value": "high", "unit": "g/dL" }
    });
    let labs = format!("/v1/patients/{mia}/labs");
    let (status, body) = node.call("POST", &labs, Some(&node.token), Some(&lab.to_string()));
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("Observation.valueQuantity.value"), "{body}");
    assert_eq!(
        body["resourceType"], "OperationOutcome",
        "FHIR clients get an OperationOutcome"
    );
    let mut bad_note = session_note("visit-1", "Plan: Practise /s/ blends daily");
    bad_note["context"]["period"]["start"] = json!("last Tuesday");
    let (status, body) = node.call("POST", &notes, Some(&node.token), Some(&bad_note.to_string()));
    assert_eq!(status, 422, "{body}");
    assert!(
        error_of(&body).contains("DocumentReference.context.period.start"),
        "{body}"
    );
    let (status, body) = node.call("POST", &notes, Some(&node.token), Some("{\"resourceType\": "));
    assert!((400..500).contains(&status), "a body that is not JSON: {status} {body}");

    // None of it wrote anything: the node's counter stands still and the phone gets nothing.
    assert_eq!(node.metric("phr_changes_written_total"), written);
    let report = phone.sync(&node);
    assert_eq!(report["received"], json!({}), "{report:#}");
    assert_eq!(phone.notes().len(), 0);

    // The same lab, fixed, goes through.
    lab["valueQuantity"]["value"] = json!(13.2);
    assert_eq!(node.push(&mia, "labs", &lab)["outcome"], "created");
    phone.sync(&node);
    let labs_on_phone = phone.json(["list", "labs", "--json"]);
    assert_eq!(labs_on_phone.as_array().map(Vec::len), Some(1), "{labs_on_phone:#}");
    // The lab keeps the resource as the clinic sent it, for the family's exports.
    let kept: Value = serde_json::from_str(labs_on_phone[0]["fields"]["fhir"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the kept source is JSON: {e}: {labs_on_phone:#}"));
    assert_eq!(kept, lab);
}

/// A message from the front desk, as the EHR sends it.
fn front_desk_message(text: &str) -> Value {
    json!({
        "resourceType": "Communication",
        "status": "completed",
        "sent": "2024-03-05T10:00:00Z",
        "payload": [{ "contentString": text }],
        "topic": { "text": "Scheduling" }
    })
}

/// What an API refusal says: its OperationOutcome's diagnostics.
fn error_of(body: &Value) -> &str {
    body["issue"][0]["diagnostics"].as_str().unwrap_or_default()
}

#[test]
fn an_invitation_for_longer_than_ten_years_is_refused_naming_expires_and_nothing_is_made() {
    let node = Node::start_new();
    // Durations whose seconds overflowed: the first made an invitation that had expired hours
    // before it was made, the second one that never expired.
    for expires in ["213503982334601d", "9223372036854775807s", "3651d", "0d", "7 days"] {
        let body = json!({ "expires": expires, "label": "Mia Lopez" }).to_string();
        let (status, answer) = node.call("POST", "/v1/invites", Some(&node.token), Some(&body));
        assert_eq!(status, 422, "expires {expires}: {answer}");
        assert!(
            error_of(&answer).starts_with("expires: "),
            "expires {expires}: {answer}"
        );
    }
    let (_, answer) = node.call(
        "POST",
        "/v1/invites",
        Some(&node.token),
        Some(r#"{"expires": "213503982334601d"}"#),
    );
    assert!(error_of(&answer).contains("at most 3650 days"), "{answer}");
    assert_eq!(node.get("/v1/invites"), json!([]), "no invitation was made");

    // The same from the command line.
    let out = node.cli(["invite", "--expires", "213503982334601d"]);
    assert_refused(&out, "expires: `213503982334601d` is too long");

    // Ten years is the longest, and it ends ten years from now.
    let (status, made) = node.call(
        "POST",
        "/v1/invites",
        Some(&node.token),
        Some(r#"{"expires": "3650d"}"#),
    );
    assert_eq!(status, 201, "{made}");
    let ends = made["expires"].as_str().unwrap_or_default();
    let ends = chrono::DateTime::parse_from_rfc3339(ends).unwrap_or_else(|e| panic!("{made}: {e}"));
    let from_now = ends.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (3649 * 86_400..=3650 * 86_400).contains(&from_now),
        "expires in {from_now} s: {made}"
    );
}

#[test]
fn a_stray_character_never_chooses_a_record_or_signs_as_a_clinician() {
    let node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    node.staff("Janet Poe", "OTR/L");
    let phone = Device::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    let mia = phone.record();
    let jane = node.get("/v1/staff")[0]["key"]
        .as_str()
        .expect("Jane's key")
        .to_string();
    let written = node.metric("phr_changes_written_total");
    let message = front_desk_message("See you on Tuesday.").to_string();

    // The only hosted record, named by one character, or fifteen: refused.
    for prefix in [&mia[..1], &mia[..15], "", "zz"] {
        let path = format!("/v1/patients/{prefix}/messages");
        let (status, body) = node.call("POST", &path, Some(&node.token), Some(&message));
        assert!(matches!(status, 404 | 405), "POST {path}: {status} {body}");
    }
    let (status, body) = node.call(
        "POST",
        &format!("/v1/patients/{}/messages", &mia[..1]),
        Some(&node.token),
        Some(&message),
    );
    assert!(error_of(&body).contains("at least 16"), "{status} {body}");

    // A clinician named by one letter, the start of a key, or a name not quite theirs: refused.
    let full = format!("/v1/patients/{mia}/messages");
    for who in ["J", "Jane", &jane[..8], "Jane Roe, SLP"] {
        let path = format!("{full}?clinician={}", who.replace(' ', "%20"));
        let (status, body) = node.call("POST", &path, Some(&node.token), Some(&message));
        assert_eq!(status, 422, "?clinician={who}: {body}");
        assert!(error_of(&body).starts_with("clinician: "), "{body}");
        assert!(
            error_of(&body).contains("Jane Roe, Janet Poe"),
            "the staff are listed: {body}"
        );
    }
    // A note whose author names a key prefix is not taken as that clinician's either.
    let mut note = session_note("visit-9", "Plan: Practise /s/ blends daily");
    note["author"] = json!([{ "reference": format!("Practitioner/{}", &jane[..8]) }]);
    let (status, body) = node.call(
        "POST",
        &format!("/v1/patients/{mia}/notes"),
        Some(&node.token),
        Some(&note.to_string()),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(node.metric("phr_changes_written_total"), written, "nothing was written");

    // Exact names (letter case aside), full keys and 16 characters of the record do.
    let sixteen = format!("/v1/patients/{}/messages?clinician=jane%20roe", &mia[..16]);
    let (status, pushed) = node.call("POST", &sixteen, Some(&node.token), Some(&message));
    assert_eq!(status, 201, "{pushed}");
    assert_eq!(pushed["patient"], mia.as_str(), "{pushed}");
    assert_eq!(pushed["author"], JANE, "{pushed}");
    note["author"] = json!([{ "reference": format!("Practitioner/{jane}") }]);
    assert_eq!(node.push(&mia, "notes", &note)["author"], JANE);

    // `phr-node` keeps short prefixes for people, but one that fits several is a question.
    let file = phone.home.scratch("message.json");
    std::fs::write(&file, &message).expect("writing the FHIR file");
    let file = file.to_string_lossy().into_owned();
    let out = node.cli([
        "push",
        "message",
        "--patient",
        &mia[..4],
        "--file",
        &file,
        "--clinician",
        "Jan",
    ]);
    assert_refused(&out, "`Jan` fits 2 staff members");
    assert!(
        out.stderr.contains("Jane Roe") && out.stderr.contains("Janet Poe"),
        "{}",
        out.stderr
    );
    let out = node.cli_ok([
        "push",
        "message",
        "--patient",
        &mia[..4],
        "--file",
        &file,
        "--clinician",
        "Janet",
    ]);
    assert!(
        out.stdout.contains(&format!("in {mia} (by Janet Poe")),
        "{}",
        out.stdout
    );
}

#[test]
fn a_request_left_half_sent_is_dropped_and_only_the_nodes_own_names_are_answered() {
    let node = Node::start_new();
    node.staff("Jane Roe", "SLP");
    let phone = Device::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    let mia = phone.record();
    let port = node.http_addr().port();

    // A client that starts a request and never finishes its headers is cut off (after 10 s;
    // the wait here is bounded by PATIENCE) instead of holding the connection for ever.
    let (reply, closed) = node.raw_http(&format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"));
    assert!(
        closed,
        "a half-sent request was still open after {PATIENCE:?}; got: {reply}"
    );
    assert!(!reply.contains(" 200 "), "a half-sent request was answered: {reply}");

    // A web page reaching the API through a name of its own (DNS rebinding) is refused before
    // anything is read or written, even with the right token.
    let written = node.metric("phr_changes_written_total");
    let note = session_note("visit-7", "Plan: Practise /s/ blends daily").to_string();
    let request = |method: &str, path: &str, host: &str, body: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            node.token,
            body.len()
        )
    };
    for (method, path, body) in [
        ("POST", format!("/v1/patients/{mia}/notes"), note.as_str()),
        ("GET", "/v1/patients".to_string(), ""),
        ("GET", "/health".to_string(), ""),
    ] {
        let (reply, _) = node.raw_http(&request(method, &path, &format!("evil.example:{port}"), body));
        assert!(reply.starts_with("HTTP/1.1 421"), "{method} {path}: {reply}");
        assert!(reply.contains("does not answer to the host `evil.example"), "{reply}");
        assert!(!reply.contains(&mia), "nothing about the patient leaks: {reply}");
    }
    assert_eq!(node.metric("phr_changes_written_total"), written, "nothing was written");

    // Its own names are answered: localhost, and 127.0.0.1 (which the test's client sends).
    let (reply, _) = node.raw_http(&request("GET", "/v1/patients", &format!("localhost:{port}"), ""));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(&mia), "{reply}");
    assert_eq!(
        node.push(&mia, "notes", &serde_json::from_str(&note).expect("JSON"))["outcome"],
        "created"
    );
}

/// `phr-node --data DIR init --name CLINIC` with its passphrase only in the config's
/// `passphrase_file`, which holds `passphrase`.
fn init_with_passphrase_file(dir: &std::path::Path, passphrase: &str) -> Run {
    let file = dir.with_extension("passphrase");
    std::fs::write(&file, format!("{passphrase}\n")).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let config = format!("passphrase_file = {:?}\n", file.display().to_string());
    std::fs::write(dir.join("phr-node.toml"), config).unwrap();
    let args = ["init", "--name", CLINIC];
    let mut cmd = Command::new(common::phr_node_bin());
    cmd.arg("--data")
        .arg(dir)
        .args(args)
        .env_remove("PHR_PASSPHRASE")
        .env_remove("PHR_NODE_DATA");
    common::processes::run(cmd, common::processes::describe("phr-node", &args))
}

#[test]
fn a_weak_passphrase_file_makes_no_clinic_and_a_good_one_makes_a_private_one() {
    let data = tempfile::tempdir().unwrap();
    for weak in ["", "x", "1234567"] {
        let dir = data.path().join("weak");
        let out = init_with_passphrase_file(&dir, weak);
        assert_refused(&out, "too weak");
        assert!(out.stderr.contains("passphrase file"), "{}", out.stderr);
        assert!(!dir.join("clinic.redb").exists(), "{weak:?} made a store");
    }

    let dir = data.path().join("clinic");
    let out = init_with_passphrase_file(&dir, PASSPHRASE);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            let m = std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
            (name.to_string(), m)
        };
        assert_eq!(
            [mode(""), mode("clinic.redb"), mode("api-token")],
            [
                ("".into(), 0o700),
                ("clinic.redb".into(), 0o600),
                ("api-token".into(), 0o600)
            ]
        );
    }
}
