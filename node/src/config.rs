//! `phr-node.toml`: where the node keeps its data, where it listens, and how it logs.
//! Every option has a default; command-line flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::relay::RelaySettings;

/// Name of the config file inside the data directory.
pub const FILE_NAME: &str = "phr-node.toml";
/// Name of the store inside the data directory.
pub const STORE_NAME: &str = "clinic.redb";
/// Name of the HTTP API token file inside the data directory.
pub const TOKEN_NAME: &str = "api-token";

/// The node's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding the sealed store, the API token and this file.
    pub data_dir: PathBuf,
    /// Address patients' devices connect to (QUIC over UDP). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Use iroh's public relays, so devices behind NAT reach the node (needs the internet).
    pub relays: bool,
    /// Publish the node's address through iroh discovery (needs the internet).
    pub discovery: bool,
    /// Local HTTP API for the clinic's EHR and scripts. Keep it on loopback.
    pub http: SocketAddr,
    /// Further names (or addresses) the HTTP API answers to in requests' `Host` header,
    /// besides `localhost`, loopback addresses and the address in `http`.
    pub http_allowed_hosts: Vec<String>,
    /// Log filter: error, warn, info, debug, trace, or a tracing filter such as
    /// `info,phr_engine=debug`.
    pub log: String,
    /// Log format: `text` for people, `json` for log collectors.
    pub log_format: String,
    /// Seconds a record may sit unused before it is dropped from memory.
    pub idle_secs: u64,
    /// File holding the store passphrase (first line), for unattended start; otherwise
    /// `PHR_PASSPHRASE` or a prompt.
    pub passphrase_file: Option<PathBuf>,
    /// The relay the node runs for its patients' devices (`[relay]`), if any.
    pub relay: Option<RelaySettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            listen: SocketAddr::from(([0, 0, 0, 0], 4919)),
            relays: true,
            discovery: true,
            http: SocketAddr::from(([127, 0, 0, 1], 4920)),
            http_allowed_hosts: Vec::new(),
            log: "info".into(),
            log_format: "text".into(),
            idle_secs: 120,
            passphrase_file: None,
            relay: None,
        }
    }
}

/// `$PHR_NODE_DATA`, else the platform's data directory.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PHR_NODE_DATA") {
        return PathBuf::from(d);
    }
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("phr-node")
}

impl Config {
    /// Read a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: Config =
            toml::from_str(&text).with_context(|| format!("{} is not a valid phr-node config", path.display()))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// The config for a data directory: its file if there is one, else the defaults.
    pub fn for_dir(dir: &Path) -> Result<Config> {
        let path = dir.join(FILE_NAME);
        let mut cfg = if path.exists() {
            Config::load(&path)?
        } else {
            Config::default()
        };
        cfg.data_dir = dir.to_path_buf();
        Ok(cfg)
    }

    /// Refuse settings that cannot work.
    pub fn check(&self) -> Result<()> {
        if !matches!(self.log_format.as_str(), "text" | "json") {
            anyhow::bail!("log_format must be `text` or `json`, not `{}`", self.log_format);
        }
        if self.idle_secs == 0 {
            anyhow::bail!("idle_secs must be at least 1");
        }
        if let Some(r) = &self.relay {
            r.check()?;
        }
        Ok(())
    }

    /// The file as written by `phr-node init`, every option explained.
    pub fn to_documented_toml(&self) -> String {
        let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
        format!(
            r#"# phr-node configuration. Flags given on the command line override these values.

# Directory holding the sealed record store, the API token and this file.
data_dir = {data_dir}

# Address patients' devices connect to (QUIC over UDP). Port 0 picks a free port, but then
# invitations made before a restart point at the old port.
listen = "{listen}"

# iroh's public relays let devices behind NAT reach the node; they need the internet.
relays = {relays}

# Publish the node's address through iroh discovery; needs the internet.
discovery = {discovery}

# Local HTTP API for the clinic's EHR and scripts (bearer token in `api-token`).
# Keep it on loopback: it can write into every hosted record.
http = "{http}"

# Names the HTTP API also answers to (the `Host` a client sends), besides localhost, loopback
# addresses and the address above, e.g. ["ehr-gateway.clinic.lan"]. Requests naming any other
# host are refused, so a web page cannot reach the API through a name of its own (DNS rebinding).
http_allowed_hosts = {http_allowed_hosts}

# Log filter: error, warn, info, debug, trace, or e.g. "info,phr_engine=debug".
log = "{log}"

# Log format: "text" for people, "json" for log collectors.
log_format = "{log_format}"

# Seconds a record may stay unused in memory before it is dropped (it reloads on demand).
idle_secs = {idle_secs}

# File whose first line is the store passphrase, for unattended start. Without it the
# passphrase comes from PHR_PASSPHRASE or a prompt.
{passphrase_file}

# The node can run a relay (iroh's relay server) so patients' devices behind NAT reach it and
# each other through the clinic, not a third party. Devices learn its URL from invitations.
# The relay sees which device keys connect, from where and how much, never what they send.
{relay}
"#,
            data_dir = q(&self.data_dir),
            listen = self.listen,
            relays = self.relays,
            discovery = self.discovery,
            http = self.http,
            http_allowed_hosts = toml::Value::Array(
                self.http_allowed_hosts
                    .iter()
                    .map(|h| toml::Value::String(h.clone()))
                    .collect()
            ),
            log = self.log,
            log_format = self.log_format,
            idle_secs = self.idle_secs,
            passphrase_file = match &self.passphrase_file {
                Some(p) => format!("passphrase_file = {}", q(p)),
                None => "# passphrase_file = \"/etc/phr-node/passphrase\"".into(),
            },
            relay = relay_toml(self.relay.as_ref()),
        )
    }

    /// Path of the sealed store.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(STORE_NAME)
    }

    /// Path of the API token.
    pub fn token_path(&self) -> PathBuf {
        self.data_dir.join(TOKEN_NAME)
    }
}

/// The `[relay]` table as written by `phr-node init`: the settings, or a commented example.
fn relay_toml(relay: Option<&RelaySettings>) -> String {
    let Some(r) = relay else {
        return r#"# [relay]
# listen = "0.0.0.0:80"                  # plain HTTP (the relay itself when there is no TLS)
# url = "https://relay.clinic.example"   # what devices dial; default http://LISTEN
# tls_cert = "/etc/phr-node/relay.crt"   # PEM chain; with tls_key the relay serves HTTPS
# tls_key = "/etc/phr-node/relay.key"
# https_listen = "0.0.0.0:443"           # QUIC address discovery then uses UDP 7842"#
            .into();
    };
    let mut table = toml::Table::new();
    table.insert("listen".into(), toml::Value::String(r.listen.to_string()));
    let paths = [("tls_cert", &r.tls_cert), ("tls_key", &r.tls_key)];
    for (name, p) in paths {
        if let Some(p) = p {
            table.insert(name.into(), toml::Value::String(p.display().to_string()));
        }
    }
    if let Some(u) = &r.url {
        table.insert("url".into(), toml::Value::String(u.clone()));
    }
    if let Some(h) = r.https_listen {
        table.insert("https_listen".into(), toml::Value::String(h.to_string()));
    }
    format!("[relay]\n{table}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_reads_back_as_written() {
        let cfg = Config {
            data_dir: "/var/lib/phr \"node\"".into(),
            passphrase_file: Some("/etc/phr/pass".into()),
            http_allowed_hosts: vec!["ehr-gateway.clinic.lan".into(), "10.0.0.5".into()],
            relay: Some(RelaySettings {
                url: Some("https://relay.clinic.example".into()),
                tls_cert: Some("/etc/phr/relay.crt".into()),
                tls_key: Some("/etc/phr/relay.key".into()),
                ..RelaySettings::plain("0.0.0.0:80".parse().unwrap())
            }),
            ..Config::default()
        };
        let back: Config = toml::from_str(&cfg.to_documented_toml()).unwrap();
        assert_eq!(back, cfg);
        let plain: Config = toml::from_str(&Config::default().to_documented_toml()).unwrap();
        assert_eq!(plain, Config::default());
    }

    #[test]
    fn unknown_options_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("listne = \"1.2.3.4:5\"").is_err());
        let dir = tempfile_dir();
        let path = dir.join(FILE_NAME);
        std::fs::write(&path, "log_format = \"xml\"").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(format!("{err:#}").contains("log_format"), "{err}");
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("phr-node-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
