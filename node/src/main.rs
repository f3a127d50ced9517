//! `phr-node`: the clinic's always-on daemon. It hosts the records of patients who granted
//! the clinic access, takes notes, results, appointments and forms from the clinic's systems
//! over a local HTTP API, and delivers them to patients' devices whenever they come online.

mod api;
mod client;
mod config;
mod daemon;
mod http_hosts;
mod http_server;
mod lookup;
mod ops;
#[allow(dead_code)] // shared with the `phr` CLI, which also reads QR images
#[path = "../../cli/src/qr.rs"]
mod qr;

/// Someone's text as one line on the terminal: control characters and reordering marks shown
/// as escapes (a patient's name comes from their record, a staff name from an admin).
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    phr_engine::visible::escape(text, false)
}

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use phr_engine::clinic::Clinic;
use phr_engine::crypto::{KdfParams, check_new_passphrase};
use phr_engine::private_file;
use serde_json::{Value, json};

use crate::client::{Client, segment};
use crate::config::Config;

#[derive(Parser)]
#[command(name = "phr-node", version, about = "The clinic's always-on phr record host")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Global {
    /// Data directory (store, API token, config) [env: PHR_NODE_DATA]
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// Config file (default: phr-node.toml in the data directory)
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the clinic's identity, sealed store, API token and config file.
    Init {
        /// The clinic's name, as patients see it.
        #[arg(long)]
        name: String,
    },
    /// Serve patients' devices and the HTTP API until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Print an invitation (text and QR) a patient uses with `phr clinic connect`.
    Invite {
        /// How long it stays valid: 30m, 12h, 7d.
        #[arg(long, default_value = "7d")]
        expires: String,
        /// How many patients may use it; 0 for any number until it expires.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Whom it is for (shown in `phr-node invite --list`).
        #[arg(long)]
        label: Option<String>,
        /// Also write the QR code as a PNG file.
        #[arg(long)]
        qr: Option<PathBuf>,
        /// List invitations still usable instead of making one.
        #[arg(long)]
        list: bool,
        /// Withdraw the invitation with this id (see --list) instead of making one.
        #[arg(long, value_name = "ID", conflicts_with = "list")]
        withdraw: Option<String>,
    },
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
    Push {
        /// What it is.
        kind: PushKind,
        /// The patient's record id (or a unique prefix).
        #[arg(long)]
        patient: String,
        /// The FHIR JSON file (`-` for standard input).
        #[arg(long)]
        file: PathBuf,
        /// The staff member it is attributed to (name, or the start of a name or key); notes need one.
        #[arg(long)]
        clinician: Option<String>,
    },
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
struct RunArgs {
    /// Address devices connect to (QUIC/UDP), e.g. 0.0.0.0:4919.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// HTTP API address, e.g. 127.0.0.1:4920.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// `local`: no relays, no discovery (loopback and LAN only); `internet`: both on.
    #[arg(long, env = "PHR_NET")]
    net: Option<NetMode>,
    /// Log filter (error, warn, info, debug, trace).
    #[arg(long)]
    log: Option<String>,
    /// Seconds an unused record stays in memory.
    #[arg(long)]
    idle_secs: Option<u64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum NetMode {
    Local,
    Internet,
}

#[derive(Subcommand)]
enum StaffCmd {
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
enum PushKind {
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
enum AppointmentCmd {
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
struct AppointmentRef {
    /// The patient's record id (or a unique prefix).
    #[arg(long)]
    patient: String,
    /// The appointment's id (or a unique prefix).
    id: String,
    /// The staff member acting (name, or the start of a name or key).
    #[arg(long)]
    clinician: Option<String>,
}

fn main() {
    phr_engine::private_file::private_by_default();
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Run(_)) {
        quiet_on_closed_pipe();
    }
    if let Err(e) = real_main(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn load_config(g: &Global) -> Result<Config> {
    let mut cfg = match (&g.config, &g.data) {
        (Some(file), _) => Config::load(file)?,
        (None, Some(dir)) => Config::for_dir(dir)?,
        (None, None) => Config::for_dir(&config::default_data_dir())?,
    };
    if let Some(dir) = &g.data {
        cfg.data_dir = dir.clone();
    }
    Ok(cfg)
}

fn real_main(cli: Cli) -> Result<()> {
    let mut cfg = load_config(&cli.global)?;
    match cli.cmd {
        Cmd::Init { name } => init(&cfg, &name),
        Cmd::Run(args) => {
            if let Some(l) = args.listen {
                cfg.listen = l;
            }
            if let Some(h) = args.http {
                cfg.http = h;
            }
            if let Some(n) = args.net {
                let on = matches!(n, NetMode::Internet);
                cfg.relays = on;
                cfg.discovery = on;
            }
            if let Some(l) = args.log {
                cfg.log = l;
            }
            if let Some(i) = args.idle_secs {
                cfg.idle_secs = i;
            }
            cfg.check()?;
            init_logging(&cfg)?;
            let passphrase = passphrase(&cfg, false)?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(daemon::run(cfg, passphrase))
        }
        Cmd::Invite {
            expires,
            uses,
            label,
            qr: png,
            list,
            withdraw,
        } => {
            let c = Client::connect(&cfg)?;
            if list {
                return print_json(&c.get("/v1/invites")?);
            }
            if let Some(id) = withdraw {
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
                    bail!("`{id}` is not an invitation id; see `phr-node invite --list`");
                }
                let res = c.delete(&format!("/v1/invites/{id}"))?;
                let label = res["label"]
                    .as_str()
                    .map(|l| format!(" ({})", shown(l)))
                    .unwrap_or_default();
                println!("Withdrew invitation {id}{label}: nobody can connect with it any more.");
                return Ok(());
            }
            let res = c.post(
                "/v1/invites",
                &json!({"expires": expires, "uses": uses, "label": label}),
            )?;
            let ticket = res["ticket"].as_str().context("the node returned no ticket")?;
            println!(
                "Invitation to {} (valid until {}):",
                res["clinic"].as_str().unwrap_or("the clinic"),
                res["expires"].as_str().unwrap_or("?")
            );
            println!("{ticket}");
            if std::io::stdout().is_terminal() {
                println!("{}", qr::terminal(ticket)?);
            }
            if let Some(p) = png {
                qr::write_png(ticket, &p)?;
                println!("QR code written to {}", p.display());
            }
            println!("The patient runs: phr clinic connect {ticket}");
            Ok(())
        }
        Cmd::Staff(s) => {
            let c = Client::connect(&cfg)?;
            match s {
                StaffCmd::Add { name, role, sections } => {
                    let m = c.post("/v1/staff", &json!({"name": name, "role": role, "sections": sections}))?;
                    println!(
                        "Added {} ({}), key {}",
                        shown(m["name"].as_str().unwrap_or("")),
                        shown(m["role"].as_str().unwrap_or("")),
                        m["key"].as_str().unwrap_or("")
                    );
                    Ok(())
                }
                StaffCmd::List { json } => {
                    let all = c.get("/v1/staff")?;
                    if json {
                        return print_json(&all);
                    }
                    for m in all.as_array().into_iter().flatten() {
                        let gone = m["removed"]
                            .as_str()
                            .map(|r| format!("  removed {r}"))
                            .unwrap_or_default();
                        println!(
                            "{:<28} {:<14} {}{gone}",
                            shown(m["name"].as_str().unwrap_or("")),
                            shown(m["role"].as_str().unwrap_or("")),
                            m["key"].as_str().unwrap_or("")
                        );
                    }
                    Ok(())
                }
                StaffCmd::Remove { who } => {
                    let key = lookup::staff(&c, &who)?;
                    let m = c.delete(&format!("/v1/staff/{}", segment(&key)))?;
                    println!(
                        "Removed {}; their access to {} record(s) was revoked (what they wrote stays).",
                        shown(m["name"].as_str().unwrap_or(&who)),
                        m["records_revoked"]
                    );
                    Ok(())
                }
            }
        }
        Cmd::Patients { json } => {
            let all = Client::connect(&cfg)?.get("/v1/patients")?;
            if json {
                return print_json(&all);
            }
            for p in all.as_array().into_iter().flatten() {
                println!(
                    "{}  {:<30} connected {}",
                    p["id"].as_str().unwrap_or(""),
                    shown(p["name"].as_str().unwrap_or("(profile not synced yet)")),
                    p["connected"].as_str().unwrap_or("?")
                );
            }
            Ok(())
        }
        Cmd::Push {
            kind,
            patient,
            file,
            clinician,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let res: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
            let route = match kind {
                PushKind::Note => "notes",
                PushKind::Lab => "labs",
                PushKind::Appointment => "appointments",
                PushKind::Form => "forms",
                PushKind::Message => "messages",
            };
            let c = Client::connect(&cfg)?;
            let patient = lookup::patient(&c, &patient)?;
            let q = match clinician {
                Some(who) => format!("?clinician={}", segment(&lookup::staff(&c, &who)?)),
                None => String::new(),
            };
            let out = c.post(&format!("/v1/patients/{}/{route}{q}", segment(&patient)), &res)?;
            println!(
                "{} {} {} in {} (by {})",
                out["outcome"].as_str().unwrap_or(""),
                route.trim_end_matches('s'),
                out["id"].as_str().unwrap_or(""),
                out["patient"].as_str().unwrap_or(""),
                out["author"].as_str().unwrap_or("")
            );
            Ok(())
        }
        Cmd::Appointments(a) => {
            let c = Client::connect(&cfg)?;
            match a {
                AppointmentCmd::List { patient, status } => {
                    let q = status.map(|s| format!("?status={}", segment(&s))).unwrap_or_default();
                    let patient = lookup::patient(&c, &patient)?;
                    print_json(&c.get(&format!("/v1/patients/{}/appointments{q}", segment(&patient)))?)
                }
                AppointmentCmd::Confirm(r) => appointment_action(&c, r, "confirm"),
                AppointmentCmd::Cancel(r) => appointment_action(&c, r, "cancel"),
            }
        }
        Cmd::Messages { patient } => {
            let c = Client::connect(&cfg)?;
            let patient = lookup::patient(&c, &patient)?;
            print_json(&c.get(&format!("/v1/patients/{}/messages", segment(&patient)))?)
        }
        Cmd::Forms { patient, completed } => {
            let q = if completed { "?status=completed" } else { "" };
            let c = Client::connect(&cfg)?;
            let patient = lookup::patient(&c, &patient)?;
            print_json(&c.get(&format!("/v1/patients/{}/forms{q}", segment(&patient)))?)
        }
        Cmd::Status => {
            let c = Client::connect(&cfg)?;
            let health = c.get("/health")?;
            println!(
                "clinic {} — {}",
                health["clinic"].as_str().unwrap_or("?"),
                health["status"].as_str().unwrap_or("?")
            );
            for line in c.get_text("/metrics")?.lines().filter(|l| !l.starts_with('#')) {
                println!("  {line}");
            }
            Ok(())
        }
    }
}

fn appointment_action(c: &Client, r: AppointmentRef, action: &str) -> Result<()> {
    let patient = lookup::patient(c, &r.patient)?;
    let q = match &r.clinician {
        Some(who) => format!("?clinician={}", segment(&lookup::staff(c, who)?)),
        None => String::new(),
    };
    let out = c.post(
        &format!(
            "/v1/patients/{}/appointments/{}/{action}{q}",
            segment(&patient),
            segment(&r.id)
        ),
        &json!({}),
    )?;
    let done = if action == "cancel" { "cancelled" } else { "confirmed" };
    println!(
        "appointment {} {done} (by {})",
        out["id"].as_str().unwrap_or(""),
        out["author"].as_str().unwrap_or("")
    );
    Ok(())
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn init(cfg: &Config, name: &str) -> Result<()> {
    let dir = &cfg.data_dir;
    private_file::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    // A directory that was already there (made by hand or by a package) is made private too.
    restrict(dir, private_file::DIR_MODE)?;
    if cfg.store_path().exists() {
        bail!("a clinic already exists in {}; refusing to overwrite it", dir.display());
    }
    let passphrase = passphrase(cfg, true)?;
    let clinic = Clinic::create(&cfg.store_path(), &passphrase, name, KdfParams::default())?;
    let token = hex::encode(random_token()?);
    private_file::write(&cfg.token_path(), format!("{token}\n").as_bytes(), true)?;
    let file = dir.join(config::FILE_NAME);
    if !file.exists() {
        std::fs::write(&file, cfg.to_documented_toml()).with_context(|| format!("writing {}", file.display()))?;
    }
    println!("Created clinic `{}` in {}", clinic.name(), dir.display());
    println!("Clinic key: {}", clinic.key());
    println!("Config: {}  API token: {}", file.display(), cfg.token_path().display());
    println!("Next: `phr-node run`, then `phr-node staff add --name …` and `phr-node invite`.");
    Ok(())
}

fn random_token() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness for the API token: {e}"))?;
    Ok(b)
}

fn restrict(path: &std::path::Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

/// The store passphrase: the config's passphrase file, `PHR_PASSPHRASE`, or a prompt.
fn passphrase(cfg: &Config, new: bool) -> Result<String> {
    if let Some(f) = &cfg.passphrase_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading the passphrase file {}", f.display()))?;
        let p = text.lines().next().unwrap_or("").to_string();
        if new {
            check_new_passphrase(&p)
                .with_context(|| format!("the passphrase file {} cannot protect a new store", f.display()))?;
        }
        return Ok(p);
    }
    if let Ok(p) = std::env::var("PHR_PASSPHRASE") {
        if new {
            check_new_passphrase(&p).context("PHR_PASSPHRASE cannot protect a new store")?;
        }
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no passphrase: set PHR_PASSPHRASE, set passphrase_file in the config, or run in a terminal");
    }
    let p = rpassword::prompt_password(if new {
        "New store passphrase: "
    } else {
        "Store passphrase: "
    })?;
    if new {
        check_new_passphrase(&p)?;
        if rpassword::prompt_password("Repeat passphrase: ")? != p {
            bail!("the two passphrases differ; nothing was created");
        }
    }
    Ok(p)
}

fn init_logging(cfg: &Config) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log)
        .with_context(|| format!("`{}` is not a log filter", cfg.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

/// Let a command whose output is cut short (`phr-node patients | head`) end quietly, as other
/// command-line tools do, instead of panicking on the closed pipe. Not for the daemon, whose
/// output goes to its log.
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
