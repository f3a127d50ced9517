//! The command line of `phr-node`: its subcommands and options.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "phr-node", version, about = "The clinic's always-on phr record host")]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Args)]
pub(crate) struct Global {
    /// Data directory (store, API token, config) [env: PHR_NODE_DATA]
    #[arg(long, global = true)]
    pub(crate) data: Option<PathBuf>,
    /// Config file (default: phr-node.toml in the data directory)
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Create the clinic's identity, sealed store, API token and config file.
    Init {
        /// The clinic's name, as patients see it.
        #[arg(long)]
        name: String,
    },
    /// Serve patients' devices and the HTTP API until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Print an invitation (text and QR) a patient uses with `phr clinic connect`.
    Invite(InviteArgs),
    /// Clinicians and other staff the clinic vouches for.
    #[command(subcommand)]
    Staff(StaffCmd),
    /// Patients whose records the node hosts.
    Patients {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Push a FHIR R4 resource from a file into a patient's record.
    Push(PushArgs),
    /// A patient's appointments.
    #[command(subcommand)]
    Appointments(AppointmentCmd),
    /// A patient's secure messages (FHIR Communication bundle).
    Messages {
        /// The patient's record id (or a unique prefix).
        #[arg(long)]
        patient: String,
    },
    /// A patient's intake forms (FHIR bundle).
    Forms {
        /// The patient's record id (or a unique prefix).
        #[arg(long)]
        patient: String,
        /// Only completed responses (QuestionnaireResponse).
        #[arg(long)]
        completed: bool,
    },
    /// Health and counters of the running node.
    Status,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Address devices connect to (QUIC/UDP), e.g. 0.0.0.0:4919.
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// HTTP API address, e.g. 127.0.0.1:4920.
    #[arg(long)]
    pub(crate) http: Option<SocketAddr>,
    /// `local`: no relays, no discovery (loopback and LAN only); `internet`: both on.
    #[arg(long, env = "PHR_NET")]
    pub(crate) net: Option<NetMode>,
    /// Log filter (error, warn, info, debug, trace).
    #[arg(long)]
    pub(crate) log: Option<String>,
    /// Seconds an unused record stays in memory.
    #[arg(long)]
    pub(crate) idle_secs: Option<u64>,
    /// Also run a plain-HTTP relay for patients' devices on this address, e.g. 10.0.0.2:3340
    /// (for LANs and tests; `[relay]` in the config file sets TLS and a public URL).
    #[arg(long, value_name = "ADDR")]
    pub(crate) relay: Option<SocketAddr>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum NetMode {
    Local,
    Internet,
}

#[derive(Subcommand)]
pub(crate) enum StaffCmd {
    /// Vouch for a clinician; their notes carry their own signature.
    Add {
        /// Full name, as patients see it.
        #[arg(long)]
        name: String,
        /// Role or discipline, e.g. SLP, OTR/L, BCBA, front desk.
        #[arg(long, default_value = "")]
        role: String,
        /// Sections they may write (comma-separated; default: all the clinic may write).
        #[arg(long, value_delimiter = ',')]
        sections: Vec<String>,
    },
    /// List staff, current and removed.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a staff member: what they wrote stays, nothing more is accepted from them.
    Remove {
        /// Name, or the start of a name or key.
        who: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PushKind {
    /// Therapy session note: DocumentReference or Composition.
    Note,
    /// Lab result or measurement: Observation.
    Lab,
    /// Appointment.
    Appointment,
    /// Intake form to fill: Questionnaire.
    Form,
    /// Secure message: Communication.
    Message,
}

#[derive(Subcommand)]
pub(crate) enum AppointmentCmd {
    /// List appointments (FHIR bundle).
    List {
        /// The patient's record id (or a unique prefix).
        #[arg(long)]
        patient: String,
        /// Only this status: requested, scheduled, confirmed, cancelled, completed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Confirm a requested appointment.
    Confirm(AppointmentRef),
    /// Cancel an appointment.
    Cancel(AppointmentRef),
}

#[derive(Args)]
pub(crate) struct AppointmentRef {
    /// The patient's record id (or a unique prefix).
    #[arg(long)]
    pub(crate) patient: String,
    /// The appointment's id (or a unique prefix).
    pub(crate) id: String,
    /// The staff member acting (name, or the start of a name or key).
    #[arg(long)]
    pub(crate) clinician: Option<String>,
}

// `phr-node invite` (its help is the doc comment of `Cmd::Invite`).
#[derive(Args)]
pub(crate) struct InviteArgs {
    /// How long it stays valid: 30m, 12h, 7d.
    #[arg(long, default_value = "7d")]
    pub(crate) expires: String,
    /// How many patients may use it; 0 for any number until it expires.
    #[arg(long, default_value_t = 1)]
    pub(crate) uses: u32,
    /// Whom it is for (shown in `phr-node invite --list`).
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Also write the QR code as a PNG file.
    #[arg(long)]
    pub(crate) qr: Option<PathBuf>,
    /// List invitations still usable instead of making one.
    #[arg(long)]
    pub(crate) list: bool,
    /// Withdraw the invitation with this id (see --list) instead of making one.
    #[arg(long, value_name = "ID", conflicts_with = "list")]
    pub(crate) withdraw: Option<String>,
}

// `phr-node push` (its help is the doc comment of `Cmd::Push`).
#[derive(Args)]
pub(crate) struct PushArgs {
    /// What it is.
    pub(crate) kind: PushKind,
    /// The patient's record id (or a unique prefix).
    #[arg(long)]
    pub(crate) patient: String,
    /// The FHIR JSON file (`-` for standard input).
    #[arg(long)]
    pub(crate) file: PathBuf,
    /// The staff member it is attributed to (name, or the start of a name or key); notes need one.
    #[arg(long)]
    pub(crate) clinician: Option<String>,
}
