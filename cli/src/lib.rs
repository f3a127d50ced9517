//! `phr`: the patient's command-line client. A thin layer over phr-engine.
//!
//! This is the library behind the `phr` binary (a few lines in the root package's
//! src/bin/phr.rs that call [`main`]).

mod attach;
mod control;
mod device_name;
mod display;
mod errors;
mod fhir_cmd;
mod net;
mod out_file;
mod output;
mod passphrase;
mod patient;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use phr_engine::crypto::KdfParams;
use phr_engine::entry::{self, parse_fields};
use phr_engine::identity::RecoveryKit;
use phr_engine::sync::Replica;
use phr_engine::{Device, InitOptions, Section};
use serde::{Deserialize, Serialize};
use std::io::Write;

/// A patient-owned health record that syncs peer to peer.
#[derive(Parser)]
#[command(name = "phr", version, about, long_about = None)]
struct Cli {
    /// Home directory holding this device's store (default: your data directory /phr).
    #[arg(long, global = true, env = "PHR_HOME")]
    home: Option<PathBuf>,
    #[command(flatten)]
    net: net::NetArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Create a new record and this device's identity.
    Init {
        /// Patient's full name.
        #[arg(long)]
        name: String,
        /// Date of birth, YYYY-MM-DD.
        #[arg(long)]
        dob: Option<String>,
        /// A name for this device, e.g. "Mia's phone" (asked for at a terminal; else the
        /// patient's first name and the computer's, e.g. "Mia's laptop").
        #[arg(long)]
        device_name: Option<String>,
    },
    /// Record id, patient, this device, and how much each section holds.
    Status(JsonFlag),
    /// Add an entry: `phr add medications --name Amoxicillin --dose "250 mg"`.
    Add {
        /// Section to add to (see `phr fields`).
        section: Section,
        /// `--field value` pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "--FIELD VALUE")]
        fields: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List a section's entries.
    List {
        /// Section to list.
        section: Section,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show the whole record, or one entry in full.
    Show {
        /// Section of the entry.
        section: Option<Section>,
        /// Entry id (or a unique prefix).
        id: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change fields of an entry: `phr edit medications ID --dose "500 mg"`.
    Edit {
        /// Section of the entry.
        section: Section,
        /// Entry id (or a unique prefix).
        id: String,
        /// `--field value` pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "--FIELD VALUE")]
        fields: Vec<String>,
    },
    /// Goal actions.
    Goal {
        #[command(subcommand)]
        action: GoalAction,
    },
    /// Mark a medication stopped (it stays in the record, with the date).
    Stop {
        /// Only `medications` can be stopped.
        section: Section,
        /// Entry id (or a unique prefix).
        id: String,
        /// Stop date (default today).
        #[arg(long)]
        date: Option<String>,
        /// Why it was stopped.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Add a correction to a session note; the original stays visible.
    Amend {
        /// Only `notes` can be amended.
        section: Section,
        /// Entry id (or a unique prefix).
        id: String,
        /// The correction.
        #[arg(long)]
        text: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Who changed what, and when.
    History {
        /// Limit to one section.
        section: Option<Section>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Fields edited concurrently on different devices, with every value kept.
    Conflicts(JsonFlag),
    /// The fields a section's entries have.
    Fields {
        /// Section to describe.
        section: Section,
    },
    /// Write the record out.
    Export {
        /// json: one readable file per section; automerge: the raw section documents; fhir: one
        /// FHIR R4 Bundle file.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Directory to write into (created if missing); for `--format fhir`, the file.
        #[arg(long)]
        out: PathBuf,
        /// With `--format fhir`: only these sections, comma-separated (default: all).
        #[arg(long)]
        sections: Option<String>,
        /// Write over the file (or the files in the directory) if already there.
        #[arg(long)]
        force: bool,
    },
    /// Import a FHIR R4 Bundle (an EHR's or patient portal's export) into the record.
    Import {
        /// The bundle's JSON file.
        #[arg(long)]
        fhir: PathBuf,
        /// Show what would change, and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Fold stored changes into snapshots now (also happens automatically).
    Compact,
    /// The patient's recovery kit.
    Recovery {
        #[command(subcommand)]
        action: RecoveryAction,
    },
    /// Pair, list and remove this record's devices.
    Devices {
        #[command(subcommand)]
        action: net::DevicesCmd,
    },
    /// Sync once with known peers (or the given ones), then exit.
    Sync {
        /// A peer to sync with, as DEVICE_KEY@IP:PORT (repeatable; default: known peers).
        #[arg(long = "peer")]
        peers: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Run this device's endpoint: accept peers and stay in live sync until Ctrl-C.
    Serve {
        /// Also keep a live connection to this peer (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
    },
    /// Devices this one knows how to reach.
    Peers(JsonFlag),
    /// Share scoped access with a caregiver, school or clinic: prints a one-time ticket and QR.
    Share {
        /// Starting point: caregiver, school or clinic.
        #[arg(long)]
        preset: Option<phr_engine::capability::Preset>,
        /// Rights per section instead of the preset's, e.g. `notes=write,goals,documents`.
        #[arg(long)]
        sections: Option<String>,
        /// How long the access lasts, e.g. 90d, at most 3650d (default: the preset's; schools a year).
        #[arg(long)]
        expires: Option<String>,
        /// Who it is for, e.g. "Grandma" or "Lincoln Elementary IEP team".
        #[arg(long)]
        label: Option<String>,
        /// Let the holder pass narrower access on (e.g. a clinic to its therapists).
        #[arg(long)]
        delegate: bool,
        /// How long the ticket itself stays usable.
        #[arg(long, default_value = "30m")]
        ticket_expires: String,
        /// Also write the QR code as a PNG image.
        #[arg(long)]
        qr: Option<PathBuf>,
    },
    /// Join a record with a share ticket (or a pairing ticket), on a fresh home.
    Join {
        /// The ticket text.
        ticket: Option<String>,
        /// Read the ticket from a QR code image instead.
        #[arg(long, conflicts_with = "ticket")]
        qr: Option<PathBuf>,
        /// A name for this device.
        #[arg(long, default_value = "my device")]
        name: String,
    },
    /// Connect the record to a clinic's node with the clinic's invitation.
    Clinic {
        #[command(subcommand)]
        action: ClinicCmd,
    },
    /// Secure messages with the clinic and the family, by thread.
    Messages {
        #[command(subcommand)]
        action: patient::MessagesCmd,
    },
    /// Appointments: ask the clinic for one; see each one's status.
    Appointments {
        #[command(subcommand)]
        action: patient::AppointmentsCmd,
    },
    /// Intake forms the clinic sent: list them, see one, fill one in.
    Forms {
        #[command(subcommand)]
        action: patient::FormsCmd,
    },
    /// Who has access to what, until when; revoke access.
    Access {
        #[command(subcommand)]
        action: AccessCmd,
    },
    /// Write a printable summary (PDF or HTML) for a school's IEP team, a specialist or an insurer.
    Report(report::ReportArgs),
    #[command(flatten)]
    Attach(attach::AttachCmd),
    /// The record's audit log: grants, revocations, joins, syncs, rejected changes, exports.
    Audit {
        /// Only events on or after this day (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Check every event's signature and chain instead of listing them.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum AccessCmd {
    /// Every grant with its holder, rights, expiry and status.
    List(JsonFlag),
    /// Withdraw a grant by (a prefix of) its id.
    Revoke {
        /// Grant id or prefix, from `phr access list`.
        id: String,
    },
}

#[derive(Args, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct JsonFlag {
    /// Machine-readable JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum GoalAction {
    /// Log a dated measurement towards a goal.
    Progress {
        /// Goal id (or a unique prefix).
        id: String,
        /// Measured value.
        #[arg(long)]
        value: f64,
        /// Note.
        #[arg(long)]
        note: Option<String>,
        /// Day measured (default today).
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum RecoveryAction {
    /// Print the 24-word recovery kit (or write it to a file).
    Export {
        /// File to write the kit to instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Set up this home from a recovery kit, as a new device of the same record. Without
    /// --file, phr asks for the 24 words in the terminal (they are not shown as typed).
    Restore {
        /// Words on a command line show in `ps` and in shell history, so they are refused;
        /// only kept to say so instead of clap's bare "unexpected argument".
        #[arg(long, hide = true, num_args = 0..)]
        words: Option<Vec<String>>,
        /// A kit file written by `phr recovery export --out`, or `-` to read the kit from
        /// standard input.
        #[arg(long)]
        file: Option<PathBuf>,
        /// A name for this device.
        #[arg(long, default_value = "restored device")]
        device_name: String,
    },
}

#[derive(Clone, Copy, ValueEnum, Serialize, Deserialize)]
pub(crate) enum ExportFormat {
    Json,
    Automerge,
    Fhir,
}

/// Run `phr` with the process's command line; errors are printed on stderr.
pub fn main() -> ExitCode {
    phr_engine::private_file::private_by_default();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        quiet_on_closed_pipe();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PHR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // An error may quote someone's text (a form's question, a peer's name).
            eprintln!("error: {}", display::message(&errors::worded(&e)));
            ExitCode::FAILURE
        }
    }
}

fn home_dir(cli_home: Option<PathBuf>) -> Result<PathBuf> {
    match cli_home {
        Some(h) => Ok(h),
        None => Ok(dirs::data_dir()
            .context("no data directory on this system: pass --home DIR or set PHR_HOME")?
            .join("phr")),
    }
}

/// The recovery kit's text: from a file, from standard input (`-`), or typed at a prompt that
/// does not show it.
fn recovery_words(file: Option<&std::path::Path>) -> Result<zeroize::Zeroizing<String>> {
    use std::io::{IsTerminal, Read};
    let mut text = zeroize::Zeroizing::new(String::new());
    match file {
        Some(f) if f.as_os_str() == "-" => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the recovery kit from standard input")?;
        }
        Some(f) => {
            *text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        }
        None if std::io::stdin().is_terminal() => {
            *text = rpassword::prompt_password("The 24 words of the recovery kit (not shown): ")?;
        }
        None => bail!("give the recovery kit with --file KIT.txt, or with --file - on standard input"),
    }
    Ok(text)
}

fn kdf() -> KdfParams {
    KdfParams::default()
}

fn open(home: &std::path::Path) -> Result<Device> {
    let pass = passphrase::get(false)?;
    Ok(Device::open(home, &pass)?)
}

/// Split `--field value` words into pairs; `--field=value` works too. Also says whether a bare
/// `--json` was among them: clap hands everything after the section to the fields, so
/// `phr add medications --name X --json` lands here, and no section has a `json` field.
fn pairs(words: &[String]) -> Result<(Vec<(String, String)>, bool)> {
    let mut out = Vec::new();
    let mut json = false;
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        if w == "--json" {
            json = true;
            continue;
        }
        let Some(name) = w.strip_prefix("--") else {
            bail!("expected `--field value`, found `{w}`");
        };
        if let Some((k, v)) = name.split_once('=') {
            out.push((k.to_string(), v.to_string()));
            continue;
        }
        match it.next() {
            Some(v) => out.push((name.to_string(), v.clone())),
            None => bail!("`--{name}` needs a value"),
        }
    }
    Ok((out, json))
}

fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

/// Working with a clinic.
#[derive(Subcommand, Serialize, Deserialize)]
enum ClinicCmd {
    /// Grant the clinic access (the clinic preset) and let its node host the record, so its
    /// notes, results, appointments and forms reach every device of yours.
    Connect {
        /// The invitation text the clinic gave you (PHRCLINIC1…).
        ticket: Option<String>,
        /// Read the invitation from a QR code image instead.
        #[arg(long, conflicts_with = "ticket")]
        qr: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> Result<()> {
    let home = home_dir(cli.home)?;
    let net_args = cli.net;
    match cli.command {
        Command::Init { name, dob, device_name } => {
            let device_name = device_name::choose(device_name, &name)?;
            let pass = passphrase::get(true)?;
            let device = Device::init(
                &home,
                &pass,
                InitOptions {
                    name,
                    dob,
                    device_name,
                    kdf: kdf(),
                },
            )?;
            println!(
                "Created the record of {}",
                display::text(&output::patient_name(device.record()))
            );
            println!("  record  {}", device.record().id());
            println!("  device  {} ({})", device.device_id(), display::text(device.name()));
            println!("  home    {}", home.display());
            println!("Write down the recovery kit now: `phr recovery export`.");
        }
        Command::Fields { section } => output::fields(&mut std::io::stdout(), section)?,
        Command::Recovery {
            action:
                RecoveryAction::Restore {
                    words,
                    file,
                    device_name,
                },
        } => {
            if words.is_some() {
                bail!(
                    "--words is not accepted: words on a command line show to other users in `ps` and stay in \
                     your shell history (clear them from it). Give the kit with --file KIT.txt, pipe it in \
                     with --file -, or run `phr recovery restore` in a terminal to be asked for the words"
                );
            }
            let text = recovery_words(file.as_deref())?;
            let kit = RecoveryKit::parse(&text)?;
            let pass = passphrase::get(true)?;
            let device = Device::restore(&home, &pass, &kit, &device_name, kdf())?;
            println!(
                "Restored record {} on this device ({})",
                device.record().id(),
                device.device_id()
            );
            println!("Its content arrives when this device syncs with another of the record's devices.");
        }
        Command::Devices {
            action: action @ (net::DevicesCmd::Add { .. } | net::DevicesCmd::Join { .. }),
        } => net::devices(
            action,
            &home,
            &net_args,
            || open(&home),
            || passphrase::get(true),
            kdf(),
        )?,
        Command::Share {
            preset,
            sections,
            expires,
            label,
            delegate,
            ticket_expires,
            qr,
        } => {
            let scope = match (&sections, preset) {
                (Some(text), _) => phr_engine::capability::parse_scope(text)?,
                (None, Some(p)) => p.scope(),
                (None, None) => bail!("say what to share: --preset caregiver|school|clinic and/or --sections …"),
            };
            if scope.is_empty() {
                bail!("the grant would open no section");
            }
            let now = chrono::Utc::now().timestamp();
            let lasts = match &expires {
                Some(e) => Some(net::parse_duration("--expires", e)?),
                None => preset
                    .and_then(|p| p.default_days())
                    .map(|d| std::time::Duration::from_secs(d.unsigned_abs() * 86_400)),
            };
            let expires = lasts.map(|d| phr_engine::duration::expiry(now, d)).transpose()?;
            let label = label.unwrap_or_else(|| {
                preset
                    .map(|p| format!("{p:?}").to_lowercase())
                    .unwrap_or_else(|| "shared access".into())
            });
            let grant = phr_engine::capability::Grant {
                audience: phr_engine::KeyPair::generate().public(),
                label,
                scope,
                delegate,
                not_before: now,
                expires,
            };
            let device = open(&home)?;
            net::offer(
                device,
                &home,
                &net_args,
                net::parse_duration("--ticket-expires", &ticket_expires)?,
                qr,
                Some(grant),
            )?
        }
        Command::Join { ticket, qr, name } => net::devices(
            net::DevicesCmd::Join { ticket, qr, name },
            &home,
            &net_args,
            || open(&home),
            || passphrase::get(true),
            kdf(),
        )?,
        Command::Clinic {
            action: ClinicCmd::Connect { ticket, qr: image },
        } => {
            let text = match (ticket, image) {
                (Some(t), _) => t,
                (None, Some(path)) => phr_qr::read_png(&path)?,
                (None, None) => bail!("give the clinic's invitation text, or --qr IMAGE.png"),
            };
            net::clinic_connect(open(&home)?, &home, &text, &net_args)?
        }
        Command::Attach(cmd) => attach::run(cmd, &home, &net_args)?,
        Command::Sync { peers, json } => {
            let pass = passphrase::get(false)?;
            match Device::open(&home, &pass) {
                Ok(device) => net::sync_once(device, &home, peers, &net_args, json.json)?,
                // `phr serve` holds the record: it syncs on its own running endpoint.
                Err(phr_engine::Error::StoreBusy) if control::socket_path(&home).exists() => {
                    control::forward(&home, pass, Command::Sync { peers, json })?
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Serve { peers } => {
            let pass = passphrase::get(false)?;
            let device = Device::open(&home, &pass)?;
            net::serve(device, &home, pass, peers, &net_args)?
        }
        mut command => {
            let pass = passphrase::get(false)?;
            match Device::open(&home, &pass) {
                Ok(device) => {
                    let replica = Replica::new(device);
                    patient::ask_on_terminal(&mut command, |c| {
                        let mut shown = Vec::new();
                        execute(c, &replica, &mut shown)?;
                        Ok(shown)
                    })?;
                    execute(command, &replica, &mut std::io::stdout())?
                }
                Err(phr_engine::Error::StoreBusy) if control::socket_path(&home).exists() => {
                    let cwd = std::env::current_dir()?;
                    command.absolutize(&cwd);
                    patient::ask_on_terminal(&mut command, |c| control::forward_capture(&home, &pass, c))?;
                    control::forward(&home, pass, command)?
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

impl Command {
    /// Make file paths absolute, so a serving process writes where the user meant.
    fn absolutize(&mut self, cwd: &std::path::Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        };
        match self {
            Command::Export { out, .. } => fix(out),
            Command::Import { fhir, .. } => fix(fhir),
            Command::Recovery {
                action: RecoveryAction::Export { out: Some(out) },
            } => fix(out),
            _ => {}
        }
    }
}

/// Carry out a command on an unlocked record, here or in the process serving it.
pub(crate) fn execute(command: Command, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    match command {
        Command::Status(j) => output::status(out, &replica.lock(), j.json)?,
        Command::Add { section, fields, json } => {
            let (fields, json_after_fields) = pairs(&fields)?;
            let parsed = parse_fields(section, &fields)?;
            let id = replica.write(|r| r.add(section, parsed))?;
            if json.json || json_after_fields {
                let device = replica.lock();
                let entry = device
                    .record()
                    .read_entry(section, &id)?
                    .with_context(|| format!("the new entry {id} went missing"))?;
                output::print_json(out, &output::entry_json(&entry, &output::Names::of(&device))?)?;
            } else {
                writeln!(out, "added {section} {id}")?;
            }
        }
        Command::List { section, json } => output::list(out, &replica.lock(), section, json.json)?,
        Command::Show { section, id, json } => {
            let device = replica.lock();
            match (section, id) {
                (Some(section), Some(id)) => {
                    let id = device.record().resolve_id(section, &id)?;
                    output::entry(out, &device, section, &id, json.json)?;
                }
                (Some(section), None) => output::list(out, &device, section, json.json)?,
                _ => output::record(out, &device, json.json)?,
            }
        }
        Command::Edit { section, id, fields } => {
            let (fields, json) = pairs(&fields)?;
            if json {
                bail!("`phr edit` has no --json output");
            }
            let changes = parse_fields(section, &fields)?;
            if changes.is_empty() {
                bail!("nothing to change: give `--field value` pairs (see `phr fields {section}`)");
            }
            let id = replica.lock().record().resolve_id(section, &id)?;
            replica.write(|r| r.edit(section, &id, changes))?;
            writeln!(out, "updated {section} {id}")?;
        }
        Command::Goal {
            action: GoalAction::Progress { id, value, note, date },
        } => {
            let date = date.map(|d| entry::parse_date(&d)).transpose()?.unwrap_or_else(today);
            let id = replica.lock().record().resolve_id(Section::Goals, &id)?;
            replica.write(|r| r.goal_progress(&id, date, value, note.as_deref()))?;
            writeln!(out, "logged progress {value} on goal {id} for {date}")?;
        }
        Command::Stop {
            section,
            id,
            date,
            reason,
        } => {
            if section != Section::Medications {
                bail!("only medications can be stopped; other entries change with `phr edit`");
            }
            let date = date.map(|d| entry::parse_date(&d)).transpose()?.unwrap_or_else(today);
            let id = replica.lock().record().resolve_id(section, &id)?;
            replica.write(|r| r.stop_medication(&id, date, reason.as_deref()))?;
            writeln!(out, "stopped medication {id} on {date}")?;
        }
        Command::Amend {
            section,
            id,
            text,
            reason,
        } => {
            if section != Section::Notes {
                bail!("only session notes are amended; other entries change with `phr edit`");
            }
            let id = replica.lock().record().resolve_id(section, &id)?;
            replica.write(|r| r.amend_note(&id, &text, reason.as_deref()))?;
            writeln!(out, "amended note {id}; the original text is kept")?;
        }
        Command::History { section, json } => output::history(out, &mut replica.lock(), section, json.json)?,
        Command::Conflicts(j) => output::conflicts(out, replica.lock().record(), j.json)?,
        Command::Fields { section } => output::fields(out, section)?,
        Command::Export {
            format: ExportFormat::Fhir,
            out: file,
            sections,
            force,
        } => fhir_cmd::export(replica, &file, sections.as_deref(), force, out)?,
        Command::Export { sections: Some(_), .. } => bail!("--sections works with --format fhir only"),
        Command::Import { fhir, dry_run, json } => fhir_cmd::import(replica, &fhir, dry_run, json.json, out)?,
        Command::Export {
            format,
            out: dir,
            force,
            ..
        } => {
            out_file::refuse_filled_dir(&dir, force)?;
            let mut device = replica.lock();
            phr_engine::private_file::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let written = match format {
                ExportFormat::Json => output::export_json(&device, &dir, force)?,
                ExportFormat::Automerge => output::export_automerge(device.record_mut(), &dir, force)?,
                // Taken by the arm above: a FHIR export is one file, not a directory.
                ExportFormat::Fhir => bail!("`--format fhir` writes one file"),
            };
            drop(device);
            let detail = format!("exported the record to {}", dir.display());
            replica.write(|r| r.audit("export", &detail, None, &Section::ALL))?;
            writeln!(out, "wrote {written} files to {}", dir.display())?;
        }
        Command::Compact => {
            replica.lock().compact()?;
            writeln!(out, "compacted every section into a snapshot")?;
        }
        Command::Recovery {
            action: RecoveryAction::Export { out: file },
        } => {
            let kit = replica.lock().recovery_kit()?.to_text();
            match file {
                Some(path) => {
                    write_private(&path, kit.as_bytes())?;
                    writeln!(
                        out,
                        "wrote the recovery kit to {}; keep it offline and private",
                        path.display()
                    )?;
                }
                None => {
                    writeln!(out, "{kit}")?;
                    writeln!(out, "Anyone with these words controls this record. Keep them offline.")?;
                }
            }
        }
        Command::Devices { action } => net::devices_local(action, replica, out)?,
        Command::Peers(j) => net::peers(out, replica, j.json)?,
        Command::Access { action } => match action {
            AccessCmd::List(j) => output::access(out, &replica.lock(), j.json)?,
            AccessCmd::Revoke { id } => {
                let rev = replica.lock().revoke(&id)?;
                // Under `phr serve`, connected peers hear of it at once.
                replica.publish_access(None, vec![phr_engine::access::Statement::Revocation(rev.clone())]);
                writeln!(
                    out,
                    "Revoked grant {}. Every device that hears of it refuses the holder from now on.",
                    hex::encode(&rev.capability[..4])
                )?;
            }
        },
        Command::Messages { action } => patient::messages(action, replica, out)?,
        Command::Appointments { action } => patient::appointments(action, replica, out)?,
        Command::Forms { action } => patient::forms_cmd(action, replica, out)?,
        Command::Audit { verify: true, .. } => {
            let n = replica.lock().verify_audit()?;
            writeln!(
                out,
                "the audit log is intact: {n} events, each signed and chained by the device that wrote it"
            )?;
        }
        Command::Report(args) => report::run(args, replica, out)?,
        Command::Audit { since, json, .. } => {
            let since = since.map(|d| entry::parse_date(&d)).transpose()?;
            output::audit(out, replica.lock().record(), since, json.json)?
        }
        Command::Attach(cmd) => attach::execute(cmd, replica, out)?,
        Command::Init { .. }
        | Command::Sync { .. }
        | Command::Serve { .. }
        | Command::Recovery { .. }
        | Command::Share { .. }
        | Command::Clinic { .. }
        | Command::Join { .. } => {
            bail!("this command cannot run while `phr serve` holds the record; stop it first")
        }
    }
    Ok(())
}

/// Write the recovery kit to a new file private to the user (never over an existing one).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = phr_engine::private_file::create_file(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Let a command whose output is cut short (`phr list notes | head`) end quietly, as other
/// command-line tools do, instead of panicking on the closed pipe. Not for `phr serve`.
#[cfg(unix)]
fn quiet_on_closed_pipe() {
    // SAFETY: restores the default disposition of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Nothing to do where there is no SIGPIPE.
#[cfg(not(unix))]
fn quiet_on_closed_pipe() {}
