//! `phr`: the patient's command-line client. A thin layer over phr-engine.
//!
//! This is the library behind the `phr` binary (a few lines in the root package's
//! src/bin/phr.rs that call [`main`]).

mod attach;
mod control;
mod device_name;
mod display;
mod entry_cmd;
mod errors;
mod fhir_cmd;
mod home_cmd;
mod net;
mod net_args;
mod out_file;
mod output;
mod passphrase;
mod patient;
mod portal_cmd;
mod record_cmd;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use phr_engine::Section;
use phr_engine::sync::Replica;
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
    net: net_args::NetArgs,
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
        /// FHIR R4 Bundle file; ips: one International Patient Summary (a FHIR document Bundle).
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Directory to write into (created if missing); for `--format fhir` and `ips`, the file.
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
        /// Also serve the patient portal (see `phr portal`).
        #[arg(long)]
        portal: bool,
        #[command(flatten)]
        portal_opts: portal_cmd::PortalOpts,
    },
    /// Open the record in a web browser: serve the patient portal on this computer (and stay
    /// in live sync like `phr serve`) until Ctrl-C; prints a one-time sign-in link.
    Portal {
        /// Also keep a live connection to this peer (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
        #[command(flatten)]
        portal_opts: portal_cmd::PortalOpts,
    },
    /// Devices this one knows how to reach.
    Peers(JsonFlag),
    /// This device's network settings, kept in its home.
    Config {
        #[command(subcommand)]
        action: ConfigCmd,
    },
    /// Share scoped access with a caregiver, school or clinic: prints a one-time ticket and QR.
    Share(home_cmd::ShareArgs),
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
    Ips,
}

/// Run `phr` with the process's command line; errors are printed on stderr.
pub fn main() -> ExitCode {
    phr_engine::private_file::private_by_default();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. } | Command::Portal { .. }) {
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

/// `phr config …`
#[derive(Subcommand, Serialize, Deserialize)]
enum ConfigCmd {
    /// Show, set or forget the relay this device calls home (joining a clinic sets the clinic's);
    /// iroh's public relays stay the fallback. PHR_RELAY or --relay override it for one run.
    Relay {
        /// The relay's URL, e.g. https://relay.clinic.example (none: show the current one).
        url: Option<iroh::RelayUrl>,
        /// Forget the relay: use iroh's public relays only.
        #[arg(long, conflicts_with = "url")]
        clear: bool,
    },
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

/// Carry out a command from the command line: those that set up or open the home here, and
/// every other on the record, here or in the process serving the home.
fn run(cli: Cli) -> Result<()> {
    let home = home_cmd::home_dir(cli.home)?;
    let net = cli.net;
    match cli.command {
        Command::Init { name, dob, device_name } => home_cmd::init(&home, name, dob, device_name),
        Command::Fields { section } => output::fields(&mut std::io::stdout(), section),
        Command::Config {
            action: ConfigCmd::Relay { url, clear },
        } => net_args::relay_cmd(&home, url, clear, &mut std::io::stdout()),
        Command::Recovery {
            action:
                RecoveryAction::Restore {
                    words,
                    file,
                    device_name,
                },
        } => home_cmd::restore(&home, words.is_some(), file.as_deref(), &device_name),
        Command::Devices {
            action: action @ (net::DevicesCmd::Add { .. } | net::DevicesCmd::Join { .. }),
        } => home_cmd::devices(action, &home, &net),
        Command::Share(args) => home_cmd::share(args, &home, &net),
        Command::Join { ticket, qr, name } => {
            home_cmd::devices(net::DevicesCmd::Join { ticket, qr, name }, &home, &net)
        }
        Command::Clinic {
            action: ClinicCmd::Connect { ticket, qr },
        } => home_cmd::clinic_connect(ticket, qr, &home, &net),
        Command::Attach(cmd) => attach::run(cmd, &home, &net),
        Command::Sync { peers, json } => home_cmd::sync(peers, json, &home, &net),
        Command::Serve {
            peers,
            portal,
            portal_opts,
        } => home_cmd::serve(peers, portal.then_some(portal_opts), &home, &net),
        Command::Portal { peers, portal_opts } => home_cmd::serve(peers, Some(portal_opts), &home, &net),
        command => home_cmd::on_record(command, &home),
    }
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
        Command::Status(j) => output::status(out, &replica.lock(), j.json),
        Command::Add { section, fields, json } => entry_cmd::add(replica, section, &fields, json.json, out),
        Command::List { section, json } => output::list(out, &replica.lock(), section, json.json),
        Command::Show { section, id, json } => entry_cmd::show(replica, section, id, json.json, out),
        Command::Edit { section, id, fields } => entry_cmd::edit(replica, section, &id, &fields, out),
        Command::Goal {
            action: GoalAction::Progress { id, value, note, date },
        } => entry_cmd::goal_progress(replica, &id, value, note, date, out),
        Command::Stop {
            section,
            id,
            date,
            reason,
        } => entry_cmd::stop(replica, section, &id, date, reason, out),
        Command::Amend {
            section,
            id,
            text,
            reason,
        } => entry_cmd::amend(replica, section, &id, &text, reason, out),
        Command::History { section, json } => output::history(out, &mut replica.lock(), section, json.json),
        Command::Conflicts(j) => output::conflicts(out, replica.lock().record(), j.json),
        Command::Fields { section } => output::fields(out, section),
        Command::Export {
            format: ExportFormat::Fhir,
            out: file,
            sections,
            force,
        } => fhir_cmd::export(replica, &file, sections.as_deref(), force, out),
        Command::Export {
            format: ExportFormat::Ips,
            out: file,
            sections: None,
            force,
        } => fhir_cmd::export_ips(replica, &file, force, out),
        Command::Export { sections: Some(_), .. } => bail!("--sections works with --format fhir only"),
        Command::Import { fhir, dry_run, json } => fhir_cmd::import(replica, &fhir, dry_run, json.json, out),
        Command::Export {
            format,
            out: dir,
            force,
            ..
        } => record_cmd::export(replica, format, &dir, force, out),
        Command::Compact => record_cmd::compact(replica, out),
        Command::Recovery {
            action: RecoveryAction::Export { out: file },
        } => record_cmd::recovery_export(replica, file.as_deref(), out),
        Command::Devices { action } => net::devices_local(action, replica, out),
        Command::Peers(j) => net::peers(out, replica, j.json),
        Command::Access {
            action: AccessCmd::List(j),
        } => output::access(out, &replica.lock(), j.json),
        Command::Access {
            action: AccessCmd::Revoke { id },
        } => record_cmd::revoke(replica, &id, out),
        Command::Messages { action } => patient::messages(action, replica, out),
        Command::Appointments { action } => patient::appointments(action, replica, out),
        Command::Forms { action } => patient::forms_cmd(action, replica, out),
        Command::Audit { verify: true, .. } => record_cmd::verify_audit(replica, out),
        Command::Report(args) => report::run(args, replica, out),
        Command::Audit { since, json, .. } => record_cmd::audit(replica, since.as_deref(), json.json, out),
        Command::Attach(cmd) => attach::execute(cmd, replica, out),
        Command::Init { .. }
        | Command::Config { .. }
        | Command::Sync { .. }
        | Command::Serve { .. }
        | Command::Portal { .. }
        | Command::Recovery { .. }
        | Command::Share { .. }
        | Command::Clinic { .. }
        | Command::Join { .. } => {
            bail!("this command cannot run while `phr serve` holds the record; stop it first")
        }
    }
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
