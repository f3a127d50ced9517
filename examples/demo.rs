//! The phr demo: a parent's phone and laptop pair, edit offline, converge, stay in live sync,
//! share scoped access with Grandma, connect a therapy clinic whose node delivers a
//! clinician's signed note, and carry an encrypted IEP and a FHIR import, all over real iroh
//! connections on 127.0.0.1 with no internet and no setup.
//!
//! Run: `cargo run --example demo`. In a terminal it ends by serving the phone's record in the
//! patient portal on 127.0.0.1 until Ctrl-C; `--no-portal` skips that, and `--portal` serves it
//! even when stdout is not a terminal (scripts and tests).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use phr::clinic::Clinic;
use phr::crypto::KdfParams;
use phr::entry::parse_fields;
use phr::sync::HostService;
use phr::sync::clinic::{self as clinic_connect, CLINIC_ALPN, ClinicTicket, ConnectHandler};
use phr::sync::net::{NetConfig, Service};
use phr::sync::pair::{self, PairTicket};
use phr::sync::{Replica, SessionOptions};
use phr::{Device, InitOptions, KeyPair, Section};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

fn add(service: &Service, section: Section, pairs: &[(&str, &str)]) -> Res<String> {
    let args: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let fields = parse_fields(section, &args)?;
    Ok(service.replica().write(|r| r.add(section, fields))?)
}

fn show(label: &str, service: &Service, section: Section) -> Res<()> {
    let device = service.replica().lock();
    for e in device.record().list(section)? {
        let summary: Vec<String> = e.fields.iter().take(3).map(|(k, v)| format!("{k}={v}")).collect();
        println!("      {label:<7} {section}: {}", summary.join(", "));
    }
    Ok(())
}

/// Whether the demo ends in the portal: asked for on the command line, or else when a person
/// is watching (stdout is a terminal).
fn wants_portal() -> Res<bool> {
    let mut wanted = None;
    for arg in std::env::args().skip(1) {
        wanted = match arg.as_str() {
            "--portal" => Some(true),
            "--no-portal" => Some(false),
            other => return Err(format!("unknown argument `{other}` (the demo takes --portal or --no-portal)").into()),
        };
    }
    Ok(wanted.unwrap_or_else(|| std::io::stdout().is_terminal()))
}

/// Serve the phone's record in the patient portal on 127.0.0.1 until Ctrl-C.
async fn serve_portal(phone: &Service) -> Res<()> {
    println!("\nThe family opens the phone's record in the patient portal, served by the phone");
    let portal = phr_portal::Portal::start(phone.replica().clone(), phr_portal::Config::default()).await?;
    println!("Portal: open {} in your web browser", portal.login_url());
    println!("    (the link works once; the portal listens on this computer only; Ctrl-C ends the demo)");
    tokio::signal::ctrl_c().await?;
    println!("\n    portal stopped");
    portal.stop().await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let portal = wants_portal()?;
    let net = NetConfig::local();
    // Demo stores use a light passphrase hash so the demo starts instantly; real homes use
    // the argon2id default.
    let kdf = KdfParams {
        memory_kib: 1024,
        iterations: 1,
        lanes: 1,
    };
    let phone_home = tempfile::tempdir()?;
    let laptop_home = tempfile::tempdir()?;
    println!("phr demo: one patient record on a parent's phone and laptop, synced peer to peer on 127.0.0.1");
    let (phone, med) = create_record(phone_home.path(), &net, kdf).await?;
    let laptop = pair_laptop(&phone, laptop_home.path(), &net, kdf).await?;
    edit_offline(&phone, &laptop, &med)?;
    meet_and_sync(&phone, &laptop).await?;
    let goal = live_edit(&phone, &laptop).await?;
    share_with_grandma(&phone, &goal, &net, kdf).await?;
    clinic_delivers_a_note(&phone, &laptop, &net, kdf).await?;
    carry_the_iep(&phone, &laptop, phone_home.path(), laptop_home.path()).await?;
    export_and_import_fhir(&phone)?;
    import_a_sample()?;

    step(9, "Done");
    println!("    everything ran on loopback with relays and discovery off; nothing left this machine");
    if portal {
        serve_portal(&phone).await?;
    } else {
        println!("    (the portal is skipped: stdout is not a terminal, or --no-portal; --portal serves it anyway)");
    }
    phone.shutdown().await;
    laptop.shutdown().await;
    Ok(())
}

/// Step 1: the phone creates the record; returns its service and the medication it added.
async fn create_record(home: &Path, net: &NetConfig, kdf: KdfParams) -> Res<(Service, String)> {
    step(1, "The parent creates Mia's record on the phone");
    let phone_dev = Device::init(
        home,
        "correct horse battery staple",
        InitOptions {
            name: "Mia Lopez".into(),
            dob: Some("2017-04-12".into()),
            device_name: "Ana's phone".into(),
            kdf,
        },
    )?;
    println!(
        "    record {}  (the record id is the patient's root public key)",
        phone_dev.record().id().short()
    );
    let phone = Service::start(Replica::new(phone_dev), net.clone()).await?;
    let med = add(
        &phone,
        Section::Medications,
        &[("name", "Amoxicillin"), ("dose", "250 mg"), ("schedule", "twice daily")],
    )?;
    add(
        &phone,
        Section::Goals,
        &[
            ("goal", "Produce /s/ in single words"),
            ("discipline", "speech"),
            ("milestone", "10 words"),
            ("unit", "% correct"),
        ],
    )?;
    println!("    added a medication and a speech goal; every change is signed by the phone's key");

    Ok((phone, med))
}

/// Step 2: the laptop pairs with the phone's ticket and takes the record in.
async fn pair_laptop(phone: &Service, home: &Path, net: &NetConfig, kdf: KdfParams) -> Res<Service> {
    step(2, "The laptop pairs by scanning the phone's one-time ticket");
    let ticket = phone.pairing().issue(phone.addr(), Duration::from_secs(600))?;
    let text = ticket.to_text();
    println!(
        "    ticket: {}…  ({} chars, also shown as a QR code by `phr devices add`)",
        &text[..40],
        text.len()
    );
    let laptop_key = KeyPair::generate();
    let (cert, statements) = pair::join(&PairTicket::parse(&text)?, &laptop_key, "Ana's laptop", net).await?;
    let laptop_dev = Device::create_member(home, "another passphrase", laptop_key, cert, statements, kdf)?;
    let laptop = Service::start(Replica::new(laptop_dev), net.clone()).await?;
    let report = laptop.sync_once(phone.addr(), SessionOptions::default()).await?;
    println!(
        "    laptop certified by the root key and received {} changes ({} bytes on the wire), each verified before it was applied",
        report.applied(),
        report.traffic.received
    );
    show("laptop", &laptop, Section::Medications)?;

    Ok(laptop)
}

/// Step 3: both are edited offline, the same field at the same time among them.
fn edit_offline(phone: &Service, laptop: &Service, med: &str) -> Res<()> {
    step(
        3,
        "Both are used offline: different sections, and the same field at the same time",
    );
    add(
        phone,
        Section::Labs,
        &[
            ("test", "Ferritin"),
            ("value", "31"),
            ("unit", "ng/mL"),
            ("date", "2024-03-02"),
            ("low", "12"),
            ("high", "150"),
        ],
    )?;
    add(
        laptop,
        Section::CaregiverLog,
        &[
            ("date", "2024-03-02"),
            ("text", "Practised /s/ words at dinner, 7 of 10"),
            ("category", "practice"),
        ],
    )?;
    let dose = |v: &str| parse_fields(Section::Medications, &[("dose".to_string(), v.to_string())]);
    let (d1, d2) = (dose("500 mg")?, dose("125 mg")?);
    phone.replica().write(|r| r.edit(Section::Medications, med, d1))?;
    laptop.replica().write(|r| r.edit(Section::Medications, med, d2))?;
    println!("    phone: new lab, dose 500 mg   laptop: caregiver log, dose 125 mg");

    Ok(())
}

/// Step 4: they meet again and converge, the conflict kept.
async fn meet_and_sync(phone: &Service, laptop: &Service) -> Res<()> {
    step(4, "They meet again and sync");
    let report = laptop.sync_once(phone.addr(), SessionOptions::default()).await?;
    println!(
        "    laptop received {}, sent {}, rejected {}",
        report.applied(),
        report.sent_total(),
        report.rejected()
    );
    let converged = Section::ALL.iter().all(|s| {
        let a = phone.replica().lock().record_mut().heads(*s);
        let b = laptop.replica().lock().record_mut().heads(*s);
        a == b
    });
    println!("    identical history on both devices: {converged}");
    for c in phone.replica().lock().record().conflicts()? {
        let values: Vec<String> = c.values.iter().map(|v| v.value.to_string()).collect();
        println!(
            "    conflict kept, not hidden: {} `{}` = {}",
            c.section,
            c.field,
            values.join(" vs ")
        );
    }
    show("phone", phone, Section::CaregiverLog)?;
    show("laptop", laptop, Section::Labs)?;

    Ok(())
}

/// Step 5: live sync carries a goal's progress; returns the goal's id.
async fn live_edit(phone: &Service, laptop: &Service) -> Res<String> {
    step(
        5,
        "Live: while connected, an edit on the phone reaches the laptop without a command",
    );
    let live = laptop.keep_live(phone.addr());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let goal = phone.replica().lock().record().list(Section::Goals)?[0].id.clone();
    let start = Instant::now();
    phone.replica().write(|r| {
        r.goal_progress(
            &goal,
            chrono::NaiveDate::from_ymd_opt(2024, 3, 9).unwrap_or_default(),
            60.0,
            Some("6 of 10 words"),
        )
    })?;
    let arrived = loop {
        let n = laptop
            .replica()
            .lock()
            .record()
            .read_entry(Section::Goals, &goal)?
            .and_then(|g| g.fields.get("progress").and_then(|p| p.as_array().map(Vec::len)));
        if n == Some(1) {
            break true;
        }
        if start.elapsed() > Duration::from_secs(10) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    println!(
        "    progress entry on the laptop: {arrived} (after {:?}, signed, verified and durable)",
        start.elapsed()
    );
    live.abort();

    Ok(goal)
}

/// Step 6: Grandma's scoped share, her progress entry, then the share revoked.
async fn share_with_grandma(phone: &Service, goal: &str, net: &NetConfig, kdf: KdfParams) -> Res<()> {
    step(
        6,
        "Grandma gets a caregiver's share: scoped, revocable, by scanning a QR code",
    );
    add(
        phone,
        Section::Insurance,
        &[("payer", "Aetna"), ("member_id", "W123456")],
    )?;
    let grant = phr::capability::Grant {
        audience: KeyPair::generate().public(),
        label: "Grandma".into(),
        scope: phr::capability::Preset::Caregiver.scope(),
        delegate: false,
        not_before: chrono::Utc::now().timestamp(),
        expires: None,
    };
    let share = phone.pairing().share(phone.addr(), Duration::from_secs(600), grant)?;
    let gran_home = tempfile::tempdir()?;
    let gran_key = KeyPair::generate();
    let (credential, statements) =
        pair::join_any(&PairTicket::parse(&share.to_text())?, &gran_key, "Grandma's phone", net).await?;
    let gran_dev = Device::create_with(
        gran_home.path(),
        "grandma's passphrase",
        gran_key,
        credential,
        statements,
        kdf,
    )?;
    let gran = Service::start(Replica::new(gran_dev), net.clone()).await?;
    let report = gran.sync_once(phone.addr(), SessionOptions::default()).await?;
    let sections: Vec<String> = report.received.keys().map(|s| s.to_string()).collect();
    println!("    Grandma received: {}", sections.join(", "));
    println!(
        "    insurance on Grandma's phone: {} entries (never sent)",
        gran.replica().lock().record().count(Section::Insurance)
    );
    let refused = gran.replica().write(|r| {
        r.add(
            Section::Notes,
            parse_fields(
                Section::Notes,
                &[
                    ("discipline".into(), "speech".into()),
                    ("clinician".into(), "Grandma".into()),
                    ("date".into(), "2024-03-10".into()),
                    ("plan".into(), "more".into()),
                ],
            )?,
        )
    });
    println!(
        "    Grandma tries to write a therapy note: {}",
        refused.err().map(|e| e.to_string()).unwrap_or_default()
    );
    gran.replica().write(|r| {
        r.goal_progress(
            goal,
            chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap_or_default(),
            70.0,
            Some("7 of 10 at grandma's"),
        )
    })?;
    gran.sync_once(phone.addr(), SessionOptions::default()).await?;
    let n = phone
        .replica()
        .lock()
        .record()
        .read_entry(Section::Goals, goal)?
        .and_then(|g| g.fields.get("progress").and_then(|p| p.as_array().map(Vec::len)));
    println!(
        "    her progress entry reached the phone, checked op by op: goal now has {} progress entries",
        n.unwrap_or(0)
    );
    let id = phone.replica().lock().access().grants()[0].0.short_id();
    phone.replica().lock().revoke(&id)?;
    let cut = gran.sync_once(phone.addr(), SessionOptions::default()).await;
    println!(
        "    after `phr access revoke {id}`: {}",
        cut.err().map(|e| e.to_string()).unwrap_or_default()
    );
    for e in phone.replica().lock().record().list(Section::Audit)? {
        println!(
            "      audit: {}",
            e.fields.get("detail").and_then(|d| d.as_str()).unwrap_or_default()
        );
    }
    gran.shutdown().await;

    Ok(())
}

/// Step 7: the clinic's node hosts the record and delivers a clinician's signed note.
async fn clinic_delivers_a_note(phone: &Service, laptop: &Service, net: &NetConfig, kdf: KdfParams) -> Res<()> {
    step(
        7,
        "The therapy clinic's node hosts the record and delivers a clinician's note",
    );
    let clinic_home = tempfile::tempdir()?;
    let clinic = Arc::new(Clinic::create(
        &clinic_home.path().join("clinic.redb"),
        "clinic passphrase",
        "Bright Steps Therapy",
        kdf,
    )?);
    let c = clinic.clone();
    let node = HostService::start_with(clinic.host().clone(), net.clone(), move |b| {
        b.accept(CLINIC_ALPN, ConnectHandler::new(c))
    })
    .await?;
    let (_, invite) = clinic.invite(node.addr(), Duration::from_secs(600), Some(1), None)?;
    println!("    `phr-node invite` prints {}…", &invite.to_text()[..32]);
    let invite = ClinicTicket::parse(&invite.to_text())?;
    clinic_connect::connect(phone.endpoint(), phone.replica(), &invite, net).await?;
    phone.sync_once(node.addr(), SessionOptions::default()).await?;
    println!("    `phr clinic connect`: the phone granted the clinic preset and the node now hosts Mia's record");
    let jane = clinic.add_staff("Jane Roe", "SLP", vec![])?;
    let record = phone.replica().record_id();
    let note = parse_fields(
        Section::Notes,
        &[
            ("discipline".into(), "speech".into()),
            ("clinician".into(), "Jane Roe".into()),
            ("date".into(), "2024-03-12".into()),
            ("assessment".into(), "8 of 10 /s/ words in sentences".into()),
        ],
    )?;
    // What `POST /v1/patients/{id}/notes` does with a FHIR DocumentReference.
    clinic.write(&record, Some(&jane.key), |r| r.add(Section::Notes, note))?;
    let report = laptop.sync_once(node.addr(), SessionOptions::default()).await?;
    println!(
        "    the laptop, never meeting the phone, syncs with the node: {} change(s), {} rejected",
        report.applied(),
        report.rejected()
    );
    let notes = laptop.replica().lock().record().list(Section::Notes)?;
    for e in notes {
        let by = laptop.replica().lock().access().name_of(&e.author.parse()?);
        println!(
            "      laptop  notes: {} (signed by {})",
            e.fields.get("assessment").and_then(|v| v.as_str()).unwrap_or_default(),
            by.unwrap_or_else(|| e.author.clone())
        );
    }
    node.shutdown().await;

    Ok(())
}

/// Step 8: an IEP attached on the phone opens byte-identical on the laptop.
async fn carry_the_iep(phone: &Service, laptop: &Service, phone_home: &Path, laptop_home: &Path) -> Res<()> {
    step(
        8,
        "Documents: the school's IEP is attached on the phone and opened on the laptop; the record leaves as FHIR and imports",
    );
    // A stand-in for a scanned IEP: a few hundred KiB of bytes that are not text.
    let scan = phone_home.join("mia-iep-2024.pdf");
    let pages: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&scan, &pages)?;
    let attached = phr::attachment::attach(
        phone.replica(),
        &phone.blobs().await?,
        phr::attachment::AttachRequest {
            path: scan.clone(),
            section: Section::Documents,
            to: None,
            fields: parse_fields(
                Section::Documents,
                &[
                    ("title".into(), "IEP 2024-25, Lincoln Elementary".into()),
                    ("kind".into(), "iep".into()),
                ],
            )?,
            media_type: None,
            name: None,
        },
        Arc::new(|_| {}),
    )
    .await?;
    println!(
        "    `phr attach`: {} KiB sealed under its own key, stored by hash; the entry holds the key",
        attached.attachment.size / 1024
    );
    laptop.sync_once(phone.addr(), SessionOptions::default()).await?;
    let fetched = laptop.fetch_attachments(&[phone.addr()], &mut |_| {}).await?;
    let out = laptop_home.join("iep-opened.pdf");
    laptop
        .blobs()
        .await?
        .open_to(
            &attached.attachment,
            &laptop.replica().record_id(),
            &out,
            Arc::new(|_| {}),
        )
        .await?;
    println!(
        "    the laptop synced the entry, fetched {} blob(s) over iroh-blobs, and `phr open` wrote a copy: {}",
        fetched.fetched,
        if std::fs::read(&out)? == pages {
            "byte-identical"
        } else {
            "DIFFERENT"
        }
    );

    Ok(())
}

/// The phone's record leaves as FHIR and imports into a fresh record.
fn export_and_import_fhir(phone: &Service) -> Res<()> {
    // The phone's record as a FHIR bundle (`phr export --format fhir`), imported into a fresh
    // record as another system would take it in (`phr import --fhir`).
    let exported = {
        let device = phone.replica().lock();
        phr::fhir::export_bundle(device.record(), device.access(), &Section::ALL, phr::fhir::Zone::UTC)?
    };
    let text = serde_json::to_string(&exported.bundle)?;
    let mut elsewhere = phr::Record::new(KeyPair::generate().public(), KeyPair::generate());
    let imported = phr::fhir::read_bundle(&text)?.import(&mut elsewhere, "mia.fhir.json")?;
    let per_section: Vec<String> = imported
        .sections
        .iter()
        .map(|(s, c)| format!("{s} {}", c.created))
        .collect();
    println!(
        "    the phone's FHIR export ({} resources) imports into a fresh record: {} entries created ({}); {} not mapped",
        imported.resources,
        imported.changes(),
        per_section.join(", "),
        imported.unmapped.values().sum::<usize>()
    );

    Ok(())
}

/// A synthetic patient's FHIR export (the smallest shared sample) imports, and again changes nothing.
fn import_a_sample() -> Res<()> {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fhir-samples");
    let smallest = std::fs::read_dir(&samples).ok().and_then(|dir| {
        dir.flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .min_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX))
    });
    if let Some(bundle) = smallest {
        // A patient-portal export goes into a fresh record, as `phr import --fhir` does.
        let mut record = phr::Record::new(KeyPair::generate().public(), KeyPair::generate());
        let mapped = phr::fhir::read_bundle(&std::fs::read_to_string(&bundle)?)?;
        let first = mapped.import(&mut record, "demo")?;
        let again = phr::fhir::read_bundle(&std::fs::read_to_string(&bundle)?)?.import(&mut record, "demo")?;
        println!(
            "    `phr import --fhir` of a synthetic patient's export: {} resources, {} entries, {} not mapped; importing it again changes {}",
            first.resources,
            first.changes(),
            first.unmapped.values().sum::<usize>(),
            again.changes()
        );
    }

    Ok(())
}
