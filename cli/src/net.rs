//! The networked commands: pairing devices, one-shot sync, serving, peers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use phr_engine::crypto::KdfParams;
use phr_engine::sync::net::{self, Service};
use phr_engine::sync::pair::{self, PairTicket};
use phr_engine::sync::{Replica, SessionOptions, SessionReport};
use phr_engine::{Device, KeyPair, PublicKey};

use crate::control::ForwardedSync;
use crate::net_args::NetArgs;

use std::io::Write;

/// Start the device's endpoint on the port it used last time (so peers that remember this
/// device can reach it again), or on any free port if that one is taken.
async fn start(replica: Arc<Replica>, net_args: &NetArgs, home: &std::path::Path) -> Result<Service> {
    let mut cfg = net_args.config(home)?;
    let port_file = home.join("port");
    let saved: Option<u16> = std::fs::read_to_string(&port_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if net_args.bind.is_none()
        && let Some(port) = saved
    {
        let mut preferred = cfg.clone();
        preferred.bind.set_port(port);
        if let Ok(service) = Service::start(replica.clone(), preferred).await {
            return Ok(service);
        }
    }
    cfg.bind.set_port(cfg.bind.port());
    let service = Service::start(replica, cfg).await?;
    if let Some(port) = service.addr().ip_addrs().next().map(|a| a.port()) {
        // Best effort: a home on a read-only disk still syncs, only on a new port next time.
        let _ = std::fs::write(&port_file, port.to_string());
    }
    Ok(service)
}

/// `phr devices …`
#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
pub enum DevicesCmd {
    /// Print a one-time pairing ticket (text and QR) and wait for the new device to join.
    Add {
        /// How long the ticket stays valid, e.g. 10m, 1h (a plain number is seconds).
        #[arg(long, default_value = "10m")]
        expires: String,
        /// Also write the QR code as a PNG image.
        #[arg(long)]
        qr: Option<PathBuf>,
    },
    /// Join a record from a pairing ticket, on a fresh home.
    Join {
        /// The ticket text.
        ticket: Option<String>,
        /// Read the ticket from a QR code image instead.
        #[arg(long, conflicts_with = "ticket")]
        qr: Option<PathBuf>,
        /// A name for this device.
        #[arg(long, default_value = "new device")]
        name: String,
    },
    /// The record's devices.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a device: it can no longer sync, and its later changes are refused.
    Remove {
        /// Device key (or a unique prefix).
        id: String,
    },
}

/// A duration given with `flag` (`--expires 7d`): `30s`, `10m`, `1h`, `90d` or plain seconds,
/// at most ten years.
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration> {
    phr_engine::duration::parse(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the network runtime")
}

fn describe(report: &SessionReport) -> String {
    let mut parts = vec![format!("received {} change(s)", report.applied())];
    if report.applied() > 0 {
        let sections: Vec<String> = report
            .received
            .iter()
            .filter(|(_, r)| r.applied > 0)
            .map(|(s, r)| format!("{s} {}", r.applied))
            .collect();
        parts[0].push_str(&format!(" ({})", sections.join(", ")));
    }
    parts.push(format!("sent {}", report.sent_total()));
    if report.rejected() > 0 {
        parts.push(format!(
            "REJECTED {} (see `phr history` and the log)",
            report.rejected()
        ));
    }
    if !report.rejected_by_peer.is_empty() {
        parts.push(format!("the peer rejected {}", report.rejected_by_peer.len()));
    }
    parts.join(", ")
}

fn progress_bar() -> (indicatif::ProgressBar, phr_engine::sync::session::ProgressFn) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let b = bar.clone();
    let f: phr_engine::sync::session::ProgressFn = Arc::new(move |p| {
        b.set_message(format!(
            "{} KiB received, last: {} ({} changes)",
            p.bytes / 1024,
            p.section,
            p.applied
        ));
    });
    (bar, f)
}

/// Print a one-time ticket (text, terminal QR, optional PNG), wait for someone to use it, then
/// for their first sync. `grant` makes it a share ticket; `None` pairs a new device.
pub fn offer(
    device: Device,
    home: &std::path::Path,
    net_args: &NetArgs,
    ttl: Duration,
    qr: Option<PathBuf>,
    grant: Option<phr_engine::capability::Grant>,
) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let service = start(Replica::new(device), net_args, home).await?;
        let sharing = grant.is_some();
        let ticket = match grant {
            None => service.pairing().issue(service.addr(), ttl)?,
            Some(g) => service.pairing().share(service.addr(), ttl, g)?,
        };
        let text = ticket.to_text();
        let what = if sharing { "Share ticket" } else { "Pairing ticket" };
        println!("{what} (one use, valid for {}):\n\n{text}\n", humantime(ttl));
        println!("{}", phr_qr::terminal(&text)?);
        if let Some(path) = qr {
            // The ticket lets whoever holds it in: the file is private, an existing one kept.
            phr_engine::private_file::write(&path, &phr_qr::png(&text)?, false)
                .with_context(|| format!("writing the ticket's QR code to {}", path.display()))?;
            println!("QR code written to {}", path.display());
        }
        let waiting = if sharing {
            println!("On their device: phr join <ticket>   (or phr join --qr FILE.png)");
            "Waiting for them to join with this ticket… (Ctrl-C to cancel)"
        } else {
            println!("On the new device: phr devices join <ticket>   (or --qr FILE.png)");
            "Waiting for the other device to use this ticket… (Ctrl-C to cancel)"
        };
        let mut events = service.session_events();
        // Ctrl-C is listened for (polled first) before the line that mentions it is printed.
        let joined = tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => Err("cancelled before anyone used the ticket"),
            c = async {
                println!("{waiting}");
                service.pairing().wait_joined().await
            } => Ok(c),
            _ = tokio::time::sleep(ttl) => Err("nobody used the ticket before it expired"),
        };
        let credential = match joined {
            Ok(credential) => credential,
            Err(why) => {
                service.shutdown().await;
                bail!(why);
            }
        };
        let who = credential.holder();
        println!(
            "{} ({}) joined; sending what it may see…",
            crate::display::text(credential.name()),
            who.short()
        );
        let done = tokio::time::timeout(Duration::from_secs(300), async {
            while let Ok(e) = events.recv().await {
                if e.peer == who {
                    return Some(e);
                }
            }
            None
        })
        .await;
        match done {
            Ok(Some(e)) if e.ok => println!("Done: {} changes sent.", e.sent),
            Ok(Some(e)) => println!("The first sync failed: {}", crate::display::text(&e.detail)),
            _ => println!("It has not synced yet; it will catch up on its next `phr sync`."),
        }
        service.shutdown().await;
        Ok(())
    })
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86400 == 0 && s >= 86400 => format!("{} days", s / 86400),
        s if s % 3600 == 0 && s >= 3600 => format!("{} hours", s / 3600),
        s if s % 60 == 0 && s >= 60 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// `phr devices add|list|remove` on an unlocked device; `join` runs before any home exists.
pub fn devices(
    cmd: DevicesCmd,
    home: &std::path::Path,
    net_args: &NetArgs,
    open: impl FnOnce() -> Result<Device>,
    new_pass: impl FnOnce() -> Result<String>,
    kdf: KdfParams,
) -> Result<()> {
    match cmd {
        DevicesCmd::Add { expires, qr } => {
            let ttl = parse_duration("--expires", &expires)?;
            let device = open()?;
            if !device.has_root() {
                bail!("only a device holding the patient's root key can add devices");
            }
            offer(device, home, net_args, ttl, qr, None)
        }
        DevicesCmd::Join { ticket, qr, name } => {
            let text = match (ticket, qr) {
                (Some(t), _) => t,
                (None, Some(path)) => phr_qr::read_png(&path)?,
                (None, None) => bail!("give the ticket text, or --qr FILE.png"),
            };
            let ticket = PairTicket::parse(&text)?;
            if Device::store_path(home).exists() {
                bail!(
                    "{} already holds a record; join from a fresh home (--home DIR)",
                    home.display()
                );
            }
            let pass = new_pass()?;
            let rt = runtime()?;
            rt.block_on(async {
                let key = KeyPair::generate();
                let mut cfg = net_args.config(home)?;
                let adopted = crate::net_args::relay_to_adopt(&cfg, &ticket.addr);
                cfg.relay = cfg.relay.or(adopted.clone());
                let (credential, statements) = pair::join_any(&ticket, &key, &name, &cfg).await?;
                let device = Device::create_with(home, &pass, key, credential, statements, kdf)?;
                if let Some(relay) = adopted {
                    crate::net_args::save_relay(home, Some(&relay))?;
                    println!("Using the record's relay {relay} (change it with `phr config relay`)");
                }
                println!(
                    "Paired as {} ({name}); fetching the record…",
                    device.device_id().short()
                );
                let service = start(Replica::new(device), net_args, home).await?;
                let (bar, progress) = progress_bar();
                let result = service
                    .sync_once(
                        ticket.addr.clone(),
                        SessionOptions {
                            progress: Some(progress),
                            ..Default::default()
                        },
                    )
                    .await;
                bar.finish_and_clear();
                let report = result?;
                println!("Joined record {}: {}", ticket.record.short(), describe(&report));
                service.shutdown().await;
                Ok(())
            })
        }
        other => devices_local(other, &Replica::new(open()?), &mut std::io::stdout()),
    }
}

/// `phr devices list|remove` on an unlocked record (here or in a serving process).
pub fn devices_local(cmd: DevicesCmd, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    match cmd {
        DevicesCmd::List { json } => {
            let device = replica.lock();
            let me = device.device_id();
            let list = device.access().devices();
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|(c, r)| {
                        serde_json::json!({
                            "device": c.device.to_string(),
                            "name": c.name,
                            "added": c.issued_at,
                            "removed": r.as_ref().map(|r| r.removed_at),
                            "this_device": c.device == me,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                return Ok(());
            }
            for (c, r) in list {
                let when = chrono::DateTime::from_timestamp(c.issued_at, 0)
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                let status = if r.is_some() {
                    "removed"
                } else if c.device == me {
                    "this device"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "{}  {:<20} added {when}  {status}",
                    c.device.short(),
                    crate::display::text(&c.name)
                )?;
            }
            Ok(())
        }
        DevicesCmd::Remove { id } => {
            let mut device = replica.lock();
            let matches: Vec<PublicKey> = device
                .access()
                .devices()
                .into_iter()
                .map(|(c, _)| c.device)
                .filter(|d| d.to_string().starts_with(&id.to_ascii_lowercase()))
                .collect();
            let target = match matches.as_slice() {
                [one] => *one,
                [] => bail!("no device matches `{id}`; see `phr devices list`"),
                _ => bail!("`{id}` matches several devices; give more of the key"),
            };
            let removal = device.remove_device(&target)?;
            drop(device);
            // Under `phr serve`, connected peers hear of it at once.
            replica.publish_access(None, vec![phr_engine::access::Statement::Removal(removal)]);
            writeln!(
                out,
                "Removed device {}. Other devices learn of it when they next sync with this one.",
                target.short()
            )?;
            Ok(())
        }
        DevicesCmd::Add { .. } | DevicesCmd::Join { .. } => {
            bail!("pairing cannot run while `phr serve` holds the record; stop it first")
        }
    }
}

/// `phr sync`: sync once with the given or known peers.
pub fn sync_once(
    device: Device,
    home: &std::path::Path,
    peers: Vec<String>,
    net_args: &NetArgs,
    json: bool,
) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let replica = Replica::new(device);
        let addrs = sync_targets(&replica, &peers)?;
        let service = start(replica, net_args, home).await?;
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let synced = sync_with(&service, addrs, json, true, &mut out, &mut err).await;
        // Files that entries reference travel separately, from the peers that just synced.
        crate::attach::fetch_after_sync(&service, &synced.peers, json).await;
        service.shutdown().await;
        synced.finish(json, &mut out)
    })
}

/// What one `phr sync` did.
pub struct Synced {
    /// The peers that synced.
    peers: Vec<iroh::EndpointAddr>,
    /// How many peers were tried, and how many of them could not be reached at all.
    tried: usize,
    unreachable: usize,
    /// Per peer tried, its report or error, for `--json`.
    reports: Vec<serde_json::Value>,
}

impl Synced {
    /// Print the JSON reports if asked; fail if no peer synced, saying what to do.
    pub fn finish(&self, json: bool, out: &mut dyn Write) -> Result<()> {
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&self.reports)?)?;
        }
        if self.peers.is_empty() && self.unreachable == self.tried {
            bail!(
                "no device answered (tried {}): the other device must be running `phr serve` to sync. \
                 Start `phr serve` there, then run `phr sync` again here. \
                 Your record is unchanged and still works offline",
                self.tried
            );
        }
        if self.peers.is_empty() {
            bail!("no peer synced; your record is unchanged and still works offline");
        }
        Ok(())
    }
}

/// The peers `phr sync` tries: those given as `--peer`, else every known one that is still a
/// member of the record (removed devices and revoked grants are not dialed).
pub fn sync_targets(replica: &Replica, peers: &[String]) -> Result<Vec<iroh::EndpointAddr>> {
    let mut addrs = Vec::new();
    for p in peers {
        addrs.push(net::parse_addr(p)?);
    }
    if addrs.is_empty() {
        addrs = net::known_peers(replica)?;
    }
    if addrs.is_empty() {
        bail!("no known peers: pair a device first (`phr devices add`) or pass --peer KEY@IP:PORT");
    }
    Ok(addrs)
}

/// How many peers one `phr sync` dials at once.
const DIAL_AT_ONCE: usize = 8;

/// Sync once with each of `addrs` (several at once) through a running `service`, writing what
/// changed per peer to `out` and each failure to `err`, in the order they finish.
pub async fn sync_with(
    service: &Service,
    addrs: Vec<iroh::EndpointAddr>,
    json: bool,
    show_progress: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Synced {
    use n0_future::{BufferedStreamExt, StreamExt};
    let mut synced = Synced {
        peers: Vec::new(),
        tried: addrs.len(),
        unreachable: 0,
        reports: Vec::new(),
    };
    let bars = show_progress.then(indicatif::MultiProgress::new);
    let attempts = addrs.into_iter().map(|addr| {
        let (bar, progress) = match &bars {
            Some(bars) => {
                let (bar, f) = progress_bar();
                (Some(bars.add(bar)), Some(f))
            }
            None => (None, None),
        };
        async move {
            let r = service
                .sync_once(
                    addr.clone(),
                    SessionOptions {
                        progress,
                        ..Default::default()
                    },
                )
                .await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            (addr, r)
        }
    });
    let mut finished = n0_future::stream::iter(attempts).buffered_unordered(DIAL_AT_ONCE);
    while let Some((addr, r)) = finished.next().await {
        let who = addr.id.fmt_short().to_string();
        // Output is best effort: a closed pipe must not turn a finished sync into a failure.
        match r {
            Ok(report) => {
                if !json {
                    let _ = writeln!(out, "{who}: {}", describe(&report));
                }
                synced.peers.push(addr);
                synced
                    .reports
                    .push(serde_json::json!({"peer": who, "ok": true, "report": report}));
            }
            Err(e) => {
                if matches!(e, phr_engine::Error::Network(_)) {
                    synced.unreachable += 1;
                }
                let _ = writeln!(err, "{who}: {e}");
                synced
                    .reports
                    .push(serde_json::json!({"peer": who, "ok": false, "error": e.to_string()}));
            }
        }
    }
    synced
}

/// Run a forwarded `phr sync` on the serving `service`. Files the peers' entries reference are
/// fetched by the serve loop after each session, as for any other.
async fn forwarded_sync(service: &Service, job: ForwardedSync) {
    let mut out = Vec::new();
    let result = async {
        let addrs = sync_targets(service.replica(), &job.peers)?;
        let mut err = Vec::new();
        let synced = sync_with(service, addrs, job.json, false, &mut out, &mut err).await;
        // The forwarding process prints one stream; failures with a peer go in it too.
        out.extend_from_slice(&err);
        synced.finish(job.json, &mut out)
    }
    .await;
    let _ = job.reply.send((out, result.err().map(|e| crate::errors::worded(&e))));
}

/// `phr serve`: accept peers and stay in live sync with known ones until Ctrl-C. Other `phr`
/// commands on this home meanwhile run in this process, so their edits go out live.
pub fn serve(
    device: Device,
    home: &std::path::Path,
    passphrase: String,
    peers: Vec<String>,
    portal: Option<phr_portal::Config>,
    net_args: &NetArgs,
) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let replica = Replica::new(device);
        let (sync_tx, mut sync_rx) = tokio::sync::mpsc::channel::<ForwardedSync>(4);
        let _control = crate::control::listen(home, passphrase, replica.clone(), sync_tx)?;
        let mut addrs = net::known_peers(&replica)?;
        for p in &peers {
            addrs.push(net::parse_addr(p)?);
        }
        let service = start(replica, net_args, home).await?;
        println!(
            "Serving record {} as {}",
            service.replica().record_id().short(),
            net::format_addr(&service.addr())
        );
        println!(
            "Other devices reach this one with: phr sync --peer {}",
            net::format_addr(&service.addr())
        );
        let portal = crate::portal_cmd::start(&service, portal).await?;
        let tasks: Vec<_> = addrs.into_iter().map(|a| service.keep_live(a)).collect();
        let mut events = service.session_events();
        let mut entered = service.replica().subscribe();
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(job) = sync_rx.recv() => forwarded_sync(&service, job).await,
                e = events.recv() => match e {
                    Ok(e) => {
                        println!(
                            "{} {}: {}",
                            chrono::Local::now().format("%H:%M:%S"),
                            e.peer.short(),
                            crate::display::text(&e.detail)
                        );
                        crate::attach::fetch_in_background(&service, &e);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
                e = entered.recv() => match e {
                    Ok(e) => crate::attach::fetch_after_live_changes(&service, &e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
            }
        }
        println!("Stopping…");
        for t in tasks {
            t.abort();
        }
        crate::portal_cmd::stop(portal).await;
        service.shutdown().await;
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `phr peers`: devices this one knows how to reach.
pub fn peers(out: &mut dyn Write, replica: &Replica, json: bool) -> Result<()> {
    let addrs = net::known_peers(replica)?;
    let device = replica.lock();
    let names: std::collections::BTreeMap<PublicKey, String> = device
        .access()
        .devices()
        .into_iter()
        .map(|(c, _)| (c.device, c.name))
        .collect();
    if json {
        let rows: Vec<_> = addrs
            .iter()
            .map(|a| {
                let k = PublicKey(*a.id.as_bytes());
                serde_json::json!({"device": k.to_string(), "name": names.get(&k), "addr": net::format_addr(a)})
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    if addrs.is_empty() {
        writeln!(out, "no known peers yet")?;
    }
    for a in addrs {
        let k = PublicKey(*a.id.as_bytes());
        writeln!(
            out,
            "{}  {:<20} {}",
            k.short(),
            crate::display::text(names.get(&k).map(String::as_str).unwrap_or("?")),
            net::format_addr(&a)
        )?;
    }
    Ok(())
}

/// `phr clinic connect`: grant a clinic the `clinic` preset, hand its node the record's
/// membership, and sync once so the node holds what it may read.
pub fn clinic_connect(device: Device, home: &std::path::Path, ticket: &str, net_args: &NetArgs) -> Result<()> {
    use phr_engine::sync::clinic::{self, ClinicTicket};
    let ticket = ClinicTicket::parse(ticket)?;
    if chrono::Utc::now().timestamp() > ticket.expires {
        bail!("this clinic invitation has expired; ask the clinic for a new one");
    }
    if !device.has_root() {
        bail!("only a device holding the patient's root key can connect a clinic (the one `phr init` made)");
    }
    let scope = phr_engine::capability::Preset::Clinic.scope();
    let asked: Vec<String> = scope.iter().map(|(s, r)| format!("{s}={r}")).collect();
    let clinic_name = crate::display::text(&ticket.name);
    println!(
        "`{}` ({}) asks for: {}",
        clinic_name,
        ticket.clinic.short(),
        asked.join(", ")
    );
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        print!("Grant this access? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            bail!("nothing was granted");
        }
    }
    let rt = runtime()?;
    rt.block_on(async {
        let replica = Replica::new(device);
        let adopted = crate::net_args::relay_to_adopt(&net_args.config(home)?, &ticket.addr);
        if let Some(relay) = &adopted {
            // Before the endpoint starts, so it calls the clinic's relay home from now on.
            crate::net_args::save_relay(home, Some(relay))?;
        }
        let service = start(replica.clone(), net_args, home).await?;
        let cfg = net_args.config(home)?;
        let result = async {
            let connected = clinic::connect(service.endpoint(), &replica, &ticket, &cfg)
                .await
                .map_err(|e| match e {
                    phr_engine::Error::GrantNotKept { .. } => anyhow::Error::from(e),
                    e => anyhow::Error::from(e).context(format!(
                        "`{clinic_name}` did not take the record in; no new access was granted"
                    )),
                })?;
            let cap = &connected.grant;
            let rights: Vec<String> = cap.scope.iter().map(|(s, r)| format!("{s}={r}")).collect();
            if connected.fresh {
                println!("Granted `{clinic_name}` access: {}", rights.join(", "));
            } else {
                println!("`{clinic_name}` already holds access (grant {})", cap.short_id());
            }
            let report = service
                .sync_once(ticket.addr.clone(), SessionOptions::default())
                .await?;
            println!(
                "Connected to `{}`: {}",
                crate::display::text(&connected.clinic),
                describe(&report)
            );
            if let Some(relay) = &adopted {
                println!("Your devices now reach each other through `{clinic_name}`'s relay {relay}.");
            }
            println!("The clinic's notes, results and appointments arrive with `phr sync` or `phr serve`.");
            anyhow::Ok(())
        }
        .await;
        service.shutdown().await;
        result
    })
}
