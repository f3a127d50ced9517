//! Attached files: `phr attach`, `phr open`, `phr attachments list|gc`, and fetching the files
//! new entries reference after `phr sync`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use phr_engine::attachment::{self, AttachRequest, BlobStore, Held};
use phr_engine::entry::parse_fields;
use phr_engine::sync::Replica;
use phr_engine::sync::blobs::FetchProgress;
use phr_engine::sync::net::{self, Service};
use phr_engine::sync::replica::Entered;
use phr_engine::{Device, Section};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::net_args::NetArgs;
use crate::{Command, JsonFlag, control, output, passphrase};

/// The attachment commands (flattened into `phr`'s own).
#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum AttachCmd {
    /// Attach a file of any size: sealed with its own key, stored once, and synced only to
    /// those who may read the section.
    Attach(AttachArgs),
    /// Decrypt an attached file into a new file, checking all of it first.
    Open {
        /// Entry id (or a unique prefix).
        id: String,
        /// Where to write the file (it must not exist yet).
        #[arg(long)]
        out: PathBuf,
        /// Section of the entry, if the id alone is ambiguous.
        #[arg(long)]
        section: Option<Section>,
    },
    /// The attached files this record references; remove stored ones nothing references.
    Attachments {
        #[command(subcommand)]
        action: AttachmentsCmd,
    },
}

// `phr attach` (its help is the doc comment of `AttachCmd::Attach`; serialized the same way
// as a struct variant would be, for the control socket).
#[derive(Args, Serialize, Deserialize)]
pub(crate) struct AttachArgs {
    /// The file.
    pub(crate) file: PathBuf,
    /// Section of the entry: documents, insurance or notes.
    #[arg(long, default_value = "documents")]
    pub(crate) section: Section,
    /// Title of the new document (default: the file's name).
    #[arg(long)]
    pub(crate) title: Option<String>,
    /// Kind of document: iep, assessment, insurance-card, report or other.
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// MIME type (default: guessed from the file's extension).
    #[arg(long)]
    pub(crate) media_type: Option<String>,
    /// Attach to this existing entry instead (id or prefix), replacing its file; notes are
    /// never rewritten, so a note's file is attached when the note is added.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// A field of the new entry as NAME=VALUE (repeatable), e.g. `--field payer=Aetna`;
    /// see `phr fields SECTION`.
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub(crate) fields: Vec<String>,
    #[command(flatten)]
    pub(crate) json: JsonFlag,
}

/// `phr attachments …`
#[derive(Subcommand, Serialize, Deserialize)]
pub(crate) enum AttachmentsCmd {
    /// Every attached file, and whether this device holds it.
    List(JsonFlag),
    /// Remove stored files that no entry references any more (a replaced attachment, say).
    Gc,
}

impl AttachCmd {
    /// Make file paths absolute, so a serving process reads and writes where the user meant.
    fn absolutize(&mut self, cwd: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        };
        match self {
            AttachCmd::Attach(a) => fix(&mut a.file),
            AttachCmd::Open { out, .. } => fix(out),
            AttachCmd::Attachments { .. } => {}
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Run an attachment command from the command line: here, or in the process serving the home.
pub(crate) fn run(mut cmd: AttachCmd, home: &Path, net_args: &NetArgs) -> Result<()> {
    let pass = passphrase::get(false)?;
    match Device::open(home, &pass) {
        Ok(device) => {
            let replica = Replica::new(device);
            let rt = runtime()?;
            let mut stdout = std::io::stdout();
            rt.block_on(run_here(cmd, &replica, home, Some((&replica, net_args)), &mut stdout))
        }
        Err(phr_engine::Error::StoreBusy) if control::socket_path(home).exists() => {
            cmd.absolutize(&std::env::current_dir()?);
            control::forward(home, pass, Command::Attach(cmd))
        }
        Err(e) => Err(e.into()),
    }
}

/// Run an attachment command inside the process serving the home (a control-socket thread).
pub(crate) fn execute(cmd: AttachCmd, replica: &Replica, out: &mut dyn Write) -> Result<()> {
    let home = replica.lock().home().to_path_buf();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run_here(cmd, replica, &home, None, out))
}

fn bar(len: u64, msg: String, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    b.set_message(msg);
    b
}

fn size(n: u64) -> String {
    let f = n as f64;
    match n {
        n if n >= 1 << 30 => format!("{:.2} GiB", f / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", f / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", f / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// Run an attachment command with the record open in this process. `network` is given when
/// this process may dial peers itself (not inside a serving process).
async fn run_here(
    cmd: AttachCmd,
    replica: &Replica,
    home: &Path,
    network: Option<(&Arc<Replica>, &NetArgs)>,
    out: &mut dyn Write,
) -> Result<()> {
    // Progress bars only for a person at a terminal of this process (not for a serving one).
    let interactive = network.is_some();
    match cmd {
        AttachCmd::Attach(args) => attach_file(args, replica, home, interactive, out).await,
        AttachCmd::Open { id, out: dest, section } => open_file(&id, section, &dest, replica, home, network, out).await,
        AttachCmd::Attachments {
            action: AttachmentsCmd::List(j),
        } => list(j.json, replica, home, out).await,
        AttachCmd::Attachments {
            action: AttachmentsCmd::Gc,
        } => gc(replica, home, out).await,
    }
}

/// `phr attach`: seal and store the file, and add (or update) the entry that references it.
async fn attach_file(
    args: AttachArgs,
    replica: &Replica,
    home: &Path,
    interactive: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let AttachArgs {
        file,
        section,
        title,
        kind,
        media_type,
        to,
        fields,
        json,
    } = args;
    if section != Section::Documents && (title.is_some() || kind.is_some()) {
        bail!(
            "--title and --kind describe documents; give a {section} entry's fields with --field NAME=VALUE (see `phr fields {section}`)"
        );
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    pairs.extend(title.map(|t| ("title".to_string(), t)));
    pairs.extend(kind.map(|k| ("kind".to_string(), k)));
    for f in &fields {
        let Some((k, v)) = f.split_once('=') else {
            bail!("`--field {f}` needs the form NAME=VALUE");
        };
        pairs.push((k.trim().to_string(), v.to_string()));
    }
    let parsed = parse_fields(section, &pairs)?;
    let len = std::fs::metadata(&file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let blobs = BlobStore::open_home(home).await?;
    let b = bar(len, "sealing".into(), interactive && !json.json);
    let b2 = b.clone();
    let done = attachment::attach(
        replica,
        &blobs,
        AttachRequest {
            path: file.clone(),
            section,
            to,
            fields: parsed,
            media_type,
            name: None,
        },
        Arc::new(move |n| b2.set_position(n)),
    )
    .await;
    b.finish_and_clear();
    let done = done?;
    if json.json {
        let a = &done.attachment;
        return output::print_json(
            out,
            &json!({
                "section": done.section,
                "id": done.id,
                "blob": hex::encode(a.blob),
                "size": a.size,
                "media_type": a.media_type,
                "name": a.name,
                "reused": done.reused,
            }),
        );
    }
    say_attached(&file, &done, out)
}

/// What `phr attach` did, in words.
fn say_attached(file: &Path, done: &attachment::Attached, out: &mut dyn Write) -> Result<()> {
    let a = &done.attachment;
    writeln!(
        out,
        "attached {} to {} {} ({}, {})",
        file.display(),
        done.section,
        done.id,
        size(a.size),
        a.media_type
    )?;
    if done.reused {
        writeln!(
            out,
            "an identical file was already stored: this entry shares it (blob {})",
            a.short()
        )?;
    } else {
        writeln!(
            out,
            "stored encrypted as blob {}; it reaches devices that may read {} when they sync",
            a.short(),
            done.section
        )?;
    }
    Ok(())
}

/// `phr open`: decrypt an entry's file into `dest`, fetching it first if this device lacks it
/// and may dial its peers.
async fn open_file(
    id: &str,
    section: Option<Section>,
    dest: &Path,
    replica: &Replica,
    home: &Path,
    network: Option<(&Arc<Replica>, &NetArgs)>,
    out: &mut dyn Write,
) -> Result<()> {
    let (found, record) = {
        let device = replica.lock();
        (attachment::find(device.record(), id, section)?, device.record().id())
    };
    let a = found.attachment;
    let blobs = BlobStore::open_home(home).await?;
    if !matches!(blobs.held(&a.blob).await?, Held::Complete(_))
        && let Some((shared, net_args)) = network
    {
        fetch_now(shared, net_args).await?;
    }
    let b = bar(a.size, format!("opening {}", a.display_name()), network.is_some());
    let b2 = b.clone();
    let opened = blobs
        .open_to(&a, &record, dest, Arc::new(move |n| b2.set_position(n)))
        .await;
    b.finish_and_clear();
    match opened {
        Ok(()) => writeln!(
            out,
            "wrote {} ({}, {}): every chunk, the size and the file's hash checked",
            dest.display(),
            size(a.size),
            a.media_type
        )?,
        Err(e @ phr_engine::Error::AttachmentDamaged(_)) => {
            // A damaged copy is worth nothing; dropping it lets the next sync fetch an
            // intact one (the entry still wants it).
            let dropped = blobs.forget(&a.blob).await;
            return Err(anyhow::Error::new(e).context(match dropped {
                Ok(()) => format!(
                    "{} {}: this device's damaged copy was removed; `phr sync` fetches an intact one from another device",
                    found.section, found.id
                ),
                Err(_) => format!("{} {}", found.section, found.id),
            }));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `phr attachments list`: every referenced file and whether this device holds it.
async fn list(json: bool, replica: &Replica, home: &Path, out: &mut dyn Write) -> Result<()> {
    let refs = attachment::references(replica.lock().record())?;
    let blobs = BlobStore::open_home(home).await?;
    let mut rows = Vec::new();
    for r in &refs {
        let held = match blobs.held(&r.attachment.blob).await? {
            Held::Complete(_) => "here".to_string(),
            Held::Partial(n) => format!("{} of {}", size(n), size(r.attachment.sealed_size())),
            Held::Missing => "not here yet".to_string(),
        };
        rows.push((r, held));
    }
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(r, held)| {
                json!({
                    "section": r.section,
                    "id": r.id,
                    "label": r.label,
                    "name": r.attachment.name,
                    "media_type": r.attachment.media_type,
                    "size": r.attachment.size,
                    "blob": hex::encode(r.attachment.blob),
                    "held": held,
                })
            })
            .collect();
        return output::print_json(out, &list);
    }
    if rows.is_empty() {
        writeln!(out, "no attached files")?;
    }
    for (r, held) in rows {
        writeln!(
            out,
            "{}  {:<10} {}  {} ({}, {})  [{held}]",
            crate::display::text(r.id.get(..8).unwrap_or(&r.id)),
            r.section.name(),
            crate::display::text(&r.label),
            crate::display::text(r.attachment.display_name()),
            size(r.attachment.size),
            r.attachment.media_type
        )?;
    }
    Ok(())
}

/// `phr attachments gc`: remove stored files no entry references.
async fn gc(replica: &Replica, home: &Path, out: &mut dyn Write) -> Result<()> {
    let keep = attachment::referenced_blobs(replica.lock().record())?;
    let blobs = BlobStore::open_home(home).await?;
    let report = blobs.gc(&keep).await?;
    writeln!(
        out,
        "removed {} stored file(s) no entry references; kept {}",
        report.removed, report.kept
    )?;
    Ok(())
}

/// `phr open` of a file not here yet: fetch the record's missing files from known peers.
async fn fetch_now(replica: &Arc<Replica>, net_args: &NetArgs) -> Result<()> {
    let peers = net::known_peers(replica)?;
    if peers.is_empty() {
        return Ok(());
    }
    let home = replica.lock().home().to_path_buf();
    let service = Service::start(replica.clone(), net_args.config(&home)?).await?;
    let report = fetch_with_bar(&service, &peers, true).await;
    service.shutdown().await;
    report.map(|_| ())
}

async fn fetch_with_bar(
    service: &Service,
    peers: &[iroh::EndpointAddr],
    show: bool,
) -> Result<phr_engine::sync::blobs::FetchReport> {
    let b = bar(0, String::new(), show);
    let mut current = 0;
    let mut progress = |p: &FetchProgress| {
        if p.index != current {
            current = p.index;
            b.set_length(p.total);
            b.set_message(format!("fetching {}/{} {}", p.index, p.count, p.name));
        }
        b.set_position(p.done);
    };
    let report = service.fetch_attachments(peers, &mut progress).await;
    b.finish_and_clear();
    Ok(report?)
}

/// After `phr sync`: fetch the files that entries received (or written earlier) reference and
/// this device lacks, from the peers it just synced with; says what it did unless `json`.
pub(crate) async fn fetch_after_sync(service: &Service, peers: &[iroh::EndpointAddr], json: bool) {
    if peers.is_empty() {
        return;
    }
    match fetch_with_bar(service, peers, !json).await {
        Ok(report) => {
            if report.fetched > 0 && !json {
                println!("attached files: fetched {} ({})", report.fetched, size(report.bytes));
            }
            for m in &report.missing {
                eprintln!("attached file not fetched: {}", crate::display::text(m));
            }
        }
        Err(e) => eprintln!("attached files not fetched: {e}"),
    }
}

/// While serving: after a session that brought changes, fetch from that peer the files this
/// device now lacks, in the background (one fetch at a time; a failure is only logged, the next
/// session tries again).
pub(crate) fn fetch_in_background(service: &Service, event: &net::SessionEvent) {
    if !event.ok || event.applied == 0 {
        return;
    }
    fetch_from(service, event.peer);
}

/// While serving: changes to a section that holds files arrived from `peer` in a live session
/// (which reports no session event until it ends), so fetch what they reference from it.
pub(crate) fn fetch_after_live_changes(service: &Service, entered: &Entered) {
    if let (Some(peer), Some(batch)) = (entered.from, entered.batch())
        && attachment::SECTIONS.contains(&batch.section)
    {
        fetch_from(service, peer);
    }
}

/// Fetch from `peer`, in the background, the files this device lacks.
fn fetch_from(service: &Service, peer: phr_engine::PublicKey) {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let addr = match net::known_peers(service.replica()) {
        Ok(addrs) => addrs.into_iter().find(|a| a.id.as_bytes() == &peer.0),
        Err(_) => None,
    };
    let Some(addr) = addr else { return };
    let (endpoint, cfg, replica) = (
        service.endpoint().clone(),
        service.config().clone(),
        service.replica().clone(),
    );
    let home = replica.lock().home().to_path_buf();
    tokio::spawn(async move {
        let _one = ONE_AT_A_TIME.lock().await;
        let result = async {
            let blobs = BlobStore::open_home(&home).await?;
            phr_engine::sync::blobs::fetch_missing(&endpoint, &cfg, &replica, &blobs, &[addr], &mut |_| {}).await
        }
        .await;
        match result {
            Ok(r) if r.fetched > 0 => println!(
                "{} {}: fetched {} attached file(s) ({})",
                chrono::Local::now().format("%H:%M:%S"),
                peer.short(),
                r.fetched,
                size(r.bytes)
            ),
            Ok(r) => {
                for m in r.missing {
                    tracing::info!("attached file not fetched: {m}");
                }
            }
            Err(e) => tracing::warn!("attached files not fetched: {e}"),
        }
    });
}
