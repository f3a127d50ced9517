//! The network flags every networked command shares (`--net`, `--bind`, `--dial-timeout`)
//! and the endpoint settings they ask for. A leaf: `net` and `attach` both read it.

use clap::{Args, ValueEnum};
use phr_engine::sync::NetConfig;

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
}

impl NetArgs {
    /// The endpoint settings these flags ask for.
    pub fn config(&self) -> NetConfig {
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
