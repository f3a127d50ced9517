//! Commands that work on the home directory itself rather than on an unlocked record: create
//! or restore it, pair, share and connect over the network, sync and serve, and open it for
//! every other command (here, or through the process serving it; see `control`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use phr_engine::crypto::KdfParams;
use phr_engine::identity::RecoveryKit;
use phr_engine::sync::Replica;
use phr_engine::{Device, InitOptions};
use serde::{Deserialize, Serialize};

use crate::net_args::NetArgs;
use crate::{Command, JsonFlag, control, display, net, output, passphrase, patient};

// `phr share` (its help is the doc comment of `Command::Share`; serialized the same way as a
// struct variant would be).
#[derive(Args, Serialize, Deserialize)]
pub(crate) struct ShareArgs {
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
}

/// The home directory: `--home`, else `phr` in the user's data directory.
pub(crate) fn home_dir(cli_home: Option<PathBuf>) -> Result<PathBuf> {
    match cli_home {
        Some(h) => Ok(h),
        None => Ok(dirs::data_dir()
            .context("no data directory on this system: pass --home DIR or set PHR_HOME")?
            .join("phr")),
    }
}

/// The recovery kit's text: from a file, from standard input (`-`), or typed at a prompt that
/// does not show it.
fn recovery_words(file: Option<&Path>) -> Result<zeroize::Zeroizing<String>> {
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

fn open(home: &Path) -> Result<Device> {
    let pass = passphrase::get(false)?;
    Ok(Device::open(home, &pass)?)
}

/// `phr init`: create the record and this device's identity.
pub(crate) fn init(home: &Path, name: String, dob: Option<String>, device_name: Option<String>) -> Result<()> {
    let device_name = crate::device_name::choose(device_name, &name)?;
    let pass = passphrase::get(true)?;
    let device = Device::init(
        home,
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
    Ok(())
}

/// `phr recovery restore`: set up this home as a new device of the kit's record. `words` says
/// whether the refused `--words` was given.
pub(crate) fn restore(home: &Path, words: bool, file: Option<&Path>, device_name: &str) -> Result<()> {
    if words {
        bail!(
            "--words is not accepted: words on a command line show to other users in `ps` and stay in \
             your shell history (clear them from it). Give the kit with --file KIT.txt, pipe it in \
             with --file -, or run `phr recovery restore` in a terminal to be asked for the words"
        );
    }
    let text = recovery_words(file)?;
    let kit = RecoveryKit::parse(&text)?;
    let pass = passphrase::get(true)?;
    let device = Device::restore(home, &pass, &kit, device_name, kdf())?;
    println!(
        "Restored record {} on this device ({})",
        device.record().id(),
        device.device_id()
    );
    println!("Its content arrives when this device syncs with another of the record's devices.");
    Ok(())
}

/// `phr devices add|join` and `phr join`: pairing, which opens (or creates) the home itself.
pub(crate) fn devices(action: net::DevicesCmd, home: &Path, net_args: &NetArgs) -> Result<()> {
    net::devices(action, home, net_args, || open(home), || passphrase::get(true), kdf())
}

/// `phr share`: make a grant from the flags and offer it with a one-time ticket.
pub(crate) fn share(args: ShareArgs, home: &Path, net_args: &NetArgs) -> Result<()> {
    let ShareArgs {
        preset,
        sections,
        expires,
        label,
        delegate,
        ticket_expires,
        qr,
    } = args;
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
    let device = open(home)?;
    net::offer(
        device,
        home,
        net_args,
        net::parse_duration("--ticket-expires", &ticket_expires)?,
        qr,
        Some(grant),
    )
}

/// `phr clinic connect`: the invitation as text or from a QR image.
pub(crate) fn clinic_connect(
    ticket: Option<String>,
    image: Option<PathBuf>,
    home: &Path,
    net_args: &NetArgs,
) -> Result<()> {
    let text = match (ticket, image) {
        (Some(t), _) => t,
        (None, Some(path)) => phr_qr::read_png(&path)?,
        (None, None) => bail!("give the clinic's invitation text, or --qr IMAGE.png"),
    };
    net::clinic_connect(open(home)?, home, &text, net_args)
}

/// `phr sync`: here, or by the process serving the home on its running endpoint.
pub(crate) fn sync(peers: Vec<String>, json: JsonFlag, home: &Path, net_args: &NetArgs) -> Result<()> {
    let pass = passphrase::get(false)?;
    match Device::open(home, &pass) {
        Ok(device) => net::sync_once(device, home, peers, net_args, json.json),
        // `phr serve` holds the record: it syncs on its own running endpoint.
        Err(phr_engine::Error::StoreBusy) if control::socket_path(home).exists() => {
            control::forward(home, pass, Command::Sync { peers, json })
        }
        Err(e) => Err(e.into()),
    }
}

/// `phr serve`, and with `portal` the patient portal too (`phr portal`).
pub(crate) fn serve(
    peers: Vec<String>,
    portal: Option<crate::portal_cmd::PortalOpts>,
    home: &Path,
    net_args: &NetArgs,
) -> Result<()> {
    // A portal that may not start is refused before the home is opened.
    let portal = portal.map(|p| p.config()).transpose()?;
    let pass = passphrase::get(false)?;
    let device = Device::open(home, &pass)?;
    net::serve(device, home, pass, peers, portal, net_args)
}

/// Every other command: on the record opened here, or forwarded to the process serving it.
/// A `forms fill` without answers asks its questions at the terminal first, in either case.
pub(crate) fn on_record(mut command: Command, home: &Path) -> Result<()> {
    let pass = passphrase::get(false)?;
    match Device::open(home, &pass) {
        Ok(device) => {
            let replica = Replica::new(device);
            patient::ask_on_terminal(&mut command, |c| {
                let mut shown = Vec::new();
                crate::execute(c, &replica, &mut shown)?;
                Ok(shown)
            })?;
            crate::execute(command, &replica, &mut std::io::stdout())
        }
        Err(phr_engine::Error::StoreBusy) if control::socket_path(home).exists() => {
            let cwd = std::env::current_dir()?;
            command.absolutize(&cwd);
            patient::ask_on_terminal(&mut command, |c| control::forward_capture(home, &pass, c))?;
            control::forward(home, pass, command)
        }
        Err(e) => Err(e.into()),
    }
}
