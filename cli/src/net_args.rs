//! The network flags every networked command shares (`--net`, `--bind`, `--dial-timeout`,
//! `--relay`), the relay a home keeps (`<home>/relay`), and the endpoint settings they ask
//! for. A leaf: `net` and `attach` both read it.

use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use iroh::{EndpointAddr, RelayUrl};
use phr_engine::sync::NetConfig;

/// The file in a home naming its home relay (one URL), as `phr config relay` or joining a
/// clinic left it.
const RELAY_FILE: &str = "relay";

/// Which networks to use.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NetMode {
    /// Relays and discovery on: reach devices anywhere.
    Internet,
    /// Direct addresses only, no relays or discovery: LAN and loopback, works offline.
    Local,
}

/// Network flags shared by networked commands.
#[derive(Args, Clone, Debug)]
pub struct NetArgs {
    /// internet: relays and discovery on; local: direct addresses only, no internet needed.
    #[arg(long, value_enum, env = "PHR_NET", default_value = "internet", global = true)]
    pub net: NetMode,
    /// Address to listen on, e.g. 0.0.0.0:7780 (default: any free port).
    #[arg(long, env = "PHR_BIND", global = true)]
    pub bind: Option<std::net::SocketAddr>,
    /// Seconds to wait for another device to answer before giving up on it (default: 5 with
    /// --net local, 10 with internet).
    #[arg(long, env = "PHR_DIAL_TIMEOUT", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub dial_timeout: Option<u64>,
    /// The relay to call home, e.g. your clinic's (default: the one this home keeps, see
    /// `phr config relay`); iroh's public relays stay the fallback with --net internet.
    #[arg(long, env = "PHR_RELAY", global = true, value_name = "URL")]
    pub relay: Option<RelayUrl>,
}

impl NetArgs {
    /// The endpoint settings these flags ask for, on the home at `home`.
    pub fn config(&self, home: &Path) -> Result<NetConfig> {
        let mut cfg = self.flags_config();
        cfg.relay = match &self.relay {
            Some(r) => Some(r.clone()),
            None => saved_relay(home)?,
        };
        Ok(cfg)
    }

    fn flags_config(&self) -> NetConfig {
        let mut cfg = match self.net {
            NetMode::Internet => NetConfig::internet(),
            NetMode::Local => NetConfig::local(),
        };
        if let Some(b) = self.bind {
            cfg.bind = b;
        }
        if let Some(secs) = self.dial_timeout {
            cfg.dial_timeout_secs = secs;
        }
        cfg
    }
}

/// The home relay a home keeps, if any.
pub fn saved_relay(home: &Path) -> Result<Option<RelayUrl>> {
    let path = home.join(RELAY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let url = text.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let shown = phr_engine::visible::escape(url, false);
    url.parse().map(Some).with_context(|| {
        format!(
            "{} names no relay URL (`{shown}`); set one with `phr config relay URL`",
            path.display()
        )
    })
}

/// Keep `relay` as the home's relay (`None` forgets it).
pub fn save_relay(home: &Path, relay: Option<&RelayUrl>) -> Result<()> {
    let path = home.join(RELAY_FILE);
    match relay {
        Some(r) => std::fs::write(&path, format!("{r}\n")).with_context(|| format!("writing {}", path.display())),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        },
    }
}

/// The relay a ticket's address names that the home should adopt as its own: one that is not
/// among iroh's public relays (those are the fallback anyway), when the home has none yet.
pub fn relay_to_adopt(cfg: &NetConfig, addr: &EndpointAddr) -> Option<RelayUrl> {
    if cfg.relay.is_some() {
        return None;
    }
    let public = iroh::endpoint::RelayMode::Default.relay_map();
    addr.relay_urls().find(|u| !public.contains(u)).cloned()
}

/// `phr config relay [URL | --clear]`: set, forget or show the home's relay.
pub fn relay_cmd(home: &Path, url: Option<RelayUrl>, clear: bool, out: &mut dyn std::io::Write) -> Result<()> {
    if clear {
        save_relay(home, None)?;
        writeln!(out, "relay: iroh's public relays only")?;
    } else if let Some(u) = url {
        save_relay(home, Some(&u))?;
        writeln!(out, "relay: {u} (iroh's public relays as the fallback)")?;
    } else {
        match saved_relay(home)? {
            Some(u) => writeln!(out, "relay: {u}")?,
            None => writeln!(out, "relay: none set; iroh's public relays")?,
        }
    }
    Ok(())
}
