//! The `phr-node` commands that act on a running node (invite, staff, push, lists): thin
//! calls to its local HTTP API, so the daemon stays the only process holding the store.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::config::Config;
use crate::daemon::{Running, running_path};

/// A connection to the running node's API.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Client {
    /// Find the running node of a data directory.
    pub fn connect(cfg: &Config) -> Result<Client> {
        let token = std::fs::read_to_string(cfg.token_path())
            .with_context(|| {
                format!(
                    "no API token at {}: is this a phr-node data directory (see `phr-node init`)?",
                    cfg.token_path().display()
                )
            })?
            .trim()
            .to_string();
        // The running node says where it listens; the config's address is the fallback.
        let http = std::fs::read(running_path(cfg))
            .ok()
            .and_then(|raw| serde_json::from_slice::<Running>(&raw).ok())
            .map(|r| r.http)
            .unwrap_or(cfg.http);
        let http = reachable(http);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .proxy(None)
            .build()
            .into();
        Ok(Client {
            agent,
            base: format!("http://{http}"),
            token,
        })
    }

    fn finish(&self, result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
        let mut res = result.map_err(|e| match e {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => anyhow::anyhow!(
                "phr-node is not running at {} (start it with `phr-node run`): {e}",
                self.base
            ),
            other => anyhow::anyhow!("talking to phr-node at {}: {other}", self.base),
        })?;
        let status = res.status();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let why = body
                .pointer("/issue/0/diagnostics")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            bail!("{why} (HTTP {})", status.as_u16());
        }
        Ok(body)
    }

    /// GET a path.
    pub fn get(&self, path: &str) -> Result<Value> {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.finish(r)
    }

    /// POST JSON to a path.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body);
        self.finish(r)
    }

    /// DELETE a path.
    pub fn delete(&self, path: &str) -> Result<Value> {
        let r = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.finish(r)
    }

    /// GET a path as text (metrics).
    pub fn get_text(&self, path: &str) -> Result<String> {
        match self.get(path)? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }
}

/// The address to call a node listening on `http` at: a node bound to every interface
/// (0.0.0.0 or `::`) is called on loopback, a name its API answers to.
fn reachable(http: SocketAddr) -> SocketAddr {
    match http.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, http.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, http.port())),
        _ => http,
    }
}

/// Encode one path segment (ids and names typed by people may hold spaces).
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
