//! `phr-node`: the clinic's always-on daemon. It hosts the records of patients who granted
//! the clinic access, takes notes, results, appointments and forms from the clinic's systems
//! over a local HTTP API, and delivers them to patients' devices whenever they come online.
//!
//! This is the library behind the `phr-node` binary (a few lines in the root package's
//! src/bin/phr-node.rs that call [`main`]). Besides [`main`] it exposes the HTTP API's router
//! ([`api::router`]), which tests/openapi.rs exercises against docs/openapi.json.

pub mod api;
mod args;
mod client;
mod commands;
mod config;
mod daemon;
mod errors;
pub mod http_hosts;
mod http_server;
mod lookup;
mod ops;
mod relay;
mod setup;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::args::{Cli, Cmd, Global, NetMode, RunArgs};
use crate::config::Config;

/// Someone's text as one line on the terminal: control characters and reordering marks shown
/// as escapes (a patient's name comes from their record, a staff name from an admin).
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    phr_engine::visible::escape(text, false)
}

/// Run `phr-node` with the process's command line; errors are printed on stderr.
pub fn main() -> ExitCode {
    phr_engine::private_file::private_by_default();
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Run(_)) {
        quiet_on_closed_pipe();
    }
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", errors::for_operator(&e));
            ExitCode::FAILURE
        }
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

/// One subcommand: `init` and `run` work on the data directory, the others ask the running
/// node over its HTTP API.
fn real_main(cli: Cli) -> Result<()> {
    let cfg = load_config(&cli.global)?;
    match cli.cmd {
        Cmd::Init { name } => setup::init(&cfg, &name),
        Cmd::Run(args) => run(cfg, args),
        Cmd::Invite(args) => commands::invite(&cfg, args),
        Cmd::Staff(s) => commands::staff(&cfg, s),
        Cmd::Patients { json } => commands::patients(&cfg, json),
        Cmd::Push(args) => commands::push(&cfg, args),
        Cmd::Appointments(a) => commands::appointments(&cfg, a),
        Cmd::Messages { patient } => commands::messages(&cfg, &patient),
        Cmd::Forms { patient, completed } => commands::forms(&cfg, &patient, completed),
        Cmd::Status => commands::status(&cfg),
    }
}

/// `phr-node run`: the config with the command line's overrides, then the daemon.
fn run(mut cfg: Config, args: RunArgs) -> Result<()> {
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
    if let Some(r) = args.relay {
        cfg.relay = Some(relay::RelaySettings::plain(r));
    }
    cfg.check()?;
    init_logging(&cfg)?;
    let passphrase = setup::passphrase(&cfg, false)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(daemon::run(cfg, passphrase))
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
