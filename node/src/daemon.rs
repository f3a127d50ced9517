//! `phr-node run`: open the clinic's store, serve patients' devices over iroh and the
//! clinic's systems over local HTTP, drop idle records from memory, and stop cleanly on
//! SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http_hosts::AllowedHosts;
use anyhow::{Context, Result};
use phr_engine::clinic::Clinic;
use phr_engine::sync::clinic::{CLINIC_ALPN, ConnectHandler};
use phr_engine::sync::{HostService, LibraryHost, NetConfig, net};
use serde::{Deserialize, Serialize};

use crate::api::{self, App};
use crate::config::Config;
use crate::http_server;

/// Where a running node can be reached, written to `<data>/node.addr` while it runs so the
/// `phr-node` commands (and scripts) find the API even on a port picked at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    /// HTTP API address.
    pub http: std::net::SocketAddr,
    /// Sync address, `KEY@IP:PORT`.
    pub sync: String,
    /// Process id.
    pub pid: u32,
    /// The relay the node runs, as devices reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
}

/// Path of the running node's address file.
pub fn running_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("node.addr")
}

/// Serve until SIGINT or SIGTERM.
pub async fn run(cfg: Config, passphrase: String) -> Result<()> {
    let started = Instant::now();
    let store = cfg.store_path();
    if !store.exists() {
        anyhow::bail!(
            "no clinic store at {}: run `phr-node init --name \"Your Clinic\"` first (or point --data at it)",
            store.display()
        );
    }
    let token = read_token(&cfg)?;
    let clinic = open_clinic(store, passphrase).await?;
    let relay = match &cfg.relay {
        Some(r) => Some(crate::relay::start(r).await?),
        None => None,
    };
    let service = start_sync(&cfg, &clinic, relay.as_ref().map(|r| r.url.clone())).await?;
    let listener = tokio::net::TcpListener::bind(cfg.http).await.with_context(|| {
        format!(
            "could not listen for the HTTP API on {} (is another node running?)",
            cfg.http
        )
    })?;
    let http = listener.local_addr()?;
    warn_if_beyond_loopback(http);
    let hosts = AllowedHosts::new(http, &cfg.http_allowed_hosts);
    let startup = started.elapsed();
    let app = App::new(clinic.clone(), service.clone(), token, hosts, started, startup);
    let running = Running {
        http,
        sync: net::format_addr(&service.addr()),
        pid: std::process::id(),
        relay: relay.as_ref().map(|r| r.url.to_string()),
    };
    announce(&cfg, &clinic, &running, startup)?;
    let evictor = evict_idle_records(clinic.clone(), Duration::from_secs(cfg.idle_secs));

    http_server::serve(listener, api::router(app), shutdown_signal()).await;
    tracing::info!("shutting down: finishing syncs in progress");
    evictor.abort();
    match Arc::try_unwrap(service) {
        Ok(s) => s.shutdown().await,
        Err(s) => s.endpoint().close().await,
    }
    if let Some(r) = relay {
        r.shutdown().await;
    }
    let _ = std::fs::remove_file(running_path(&cfg));
    // Dropping the last handle closes the store; every acknowledged change is already durable.
    drop(clinic);
    tracing::info!("phr-node stopped");
    Ok(())
}

/// The HTTP API's bearer token, from the file `phr-node init` wrote.
fn read_token(cfg: &Config) -> Result<String> {
    let token = std::fs::read_to_string(cfg.token_path())
        .with_context(|| format!("reading the API token {}", cfg.token_path().display()))?
        .trim()
        .to_string();
    if token.len() < 32 {
        anyhow::bail!(
            "the API token in {} is too short; delete it and run `phr-node init` again",
            cfg.token_path().display()
        );
    }
    Ok(token)
}

/// Open the clinic's store (off the async threads: it checks every page).
async fn open_clinic(store: PathBuf, passphrase: String) -> Result<Arc<Clinic>> {
    let clinic = Arc::new(
        tokio::task::spawn_blocking(move || Clinic::open(&store, &passphrase))
            .await
            .context("opening the store")??,
    );
    // Opening checks every page and every sealed value of the store, and the allocator keeps
    // the memory that check freed (about three quarters of the store's size). Give it back, so
    // an idle node's footprint follows its active records, not its hosted ones.
    release_freed_memory();
    Ok(clinic)
}

/// Start the iroh endpoint that serves patients' devices: record sync and clinic connect;
/// with the node's own relay, if it runs one, as its home relay.
async fn start_sync(
    cfg: &Config,
    clinic: &Arc<Clinic>,
    relay: Option<iroh::RelayUrl>,
) -> Result<Arc<HostService<LibraryHost>>> {
    let net_cfg = NetConfig {
        bind: cfg.listen,
        relays: cfg.relays,
        discovery: cfg.discovery,
        dial_timeout_secs: 10,
        relay,
    };
    let c = clinic.clone();
    let service = HostService::start_with(clinic.host().clone(), net_cfg, move |b| {
        b.accept(CLINIC_ALPN, ConnectHandler::new(c))
    })
    .await?;
    Ok(Arc::new(service))
}

/// Write the address file, log that the node serves, and print the one ready line.
fn announce(cfg: &Config, clinic: &Clinic, running: &Running, startup: Duration) -> Result<()> {
    let http = running.http;
    std::fs::write(running_path(cfg), serde_json::to_vec_pretty(running)?)
        .with_context(|| format!("writing {}", running_path(cfg).display()))?;
    tracing::info!(
        clinic = %clinic.name(),
        key = %clinic.key(),
        sync = %running.sync,
        %http,
        startup_ms = startup.as_millis() as u64,
        "phr-node serving"
    );
    // One line on stdout for people and scripts waiting for the node to be ready.
    let relay = running
        .relay
        .as_ref()
        .map(|r| format!(" relay {r}"))
        .unwrap_or_default();
    println!(
        "phr-node ready: clinic `{}` sync {} http http://{http}{relay}",
        clinic.name(),
        running.sync
    );
    Ok(())
}

/// Every half `idle`, drop from memory the records nobody used for `idle`.
fn evict_idle_records(clinic: Arc<Clinic>, idle: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((idle / 2).max(Duration::from_secs(1)));
        loop {
            tick.tick().await;
            let c = clinic.clone();
            let evicted = tokio::task::spawn_blocking(move || c.host().lock().evict_idle(idle))
                .await
                .unwrap_or(0);
            if evicted > 0 {
                release_freed_memory();
                tracing::debug!(evicted, "dropped idle records from memory");
            }
        }
    })
}

/// Say loudly that the API listens beyond this machine: whoever reaches the address can try
/// the token, and nothing on the wire is encrypted.
fn warn_if_beyond_loopback(http: std::net::SocketAddr) {
    if http.ip().is_loopback() {
        return;
    }
    let warning = format!(
        "the HTTP API listens on {http}, beyond this machine: anyone who reaches it can try the API token, and requests and records cross the network unencrypted; keep `http` on 127.0.0.1 unless a firewall or TLS proxy guards it"
    );
    tracing::warn!("{warning}");
    if !tracing::enabled!(tracing::Level::WARN) {
        // The log filter hides warnings; this one is shown anyway.
        eprintln!("warning: {warning}");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("interrupted"),
        _ = term => tracing::info!("terminated"),
    }
}

/// Return heap memory freed by the process to the operating system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed_memory() {
    // SAFETY: malloc_trim takes no pointers and only releases pages glibc holds as free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Return heap memory freed by the process to the operating system (nothing to do here).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}
