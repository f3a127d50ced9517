//! The relay a clinic runs for its patients' devices: iroh's own relay server (the one iroh's
//! public relays run), so devices behind NAT reach the node and each other without depending on
//! a third party. Plain HTTP for tests and LANs; TLS from a certificate the clinic configures.
//! The relay forwards end-to-end encrypted QUIC packets between device keys: it sees which keys
//! connect, from which IP addresses, when, and how many bytes pass, never what they carry.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use iroh::RelayUrl;
use iroh_relay::server::{CertConfig, QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig};
use serde::{Deserialize, Serialize};

/// Port iroh devices probe for QUIC address discovery on an HTTPS relay.
const QUIC_ADDR_DISCOVERY_PORT: u16 = 7842;

/// `[relay]` in phr-node.toml: the node also runs a relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    /// Plain-HTTP address: the relay itself without TLS, or only captive-portal checks with it.
    pub listen: SocketAddr,
    /// The URL devices reach the relay at, as invitations carry it (`https://relay.clinic.org`).
    /// Default: `http://` and the `listen` address, which must then name one IP address.
    #[serde(default)]
    pub url: Option<String>,
    /// PEM certificate chain for HTTPS (with `tls_key`); without it the relay is plain HTTP.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// HTTPS address when TLS is on (default: port 443 on `listen`'s IP); QUIC address
    /// discovery then listens on UDP port 7842 of the same IP.
    #[serde(default)]
    pub https_listen: Option<SocketAddr>,
}

impl RelaySettings {
    /// A plain-HTTP relay on `listen`.
    pub fn plain(listen: SocketAddr) -> Self {
        RelaySettings {
            listen,
            url: None,
            tls_cert: None,
            tls_key: None,
            https_listen: None,
        }
    }

    /// Refuse settings that cannot work, before anything is bound.
    pub fn check(&self) -> Result<()> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("[relay]: tls_cert and tls_key go together; give both or neither");
        }
        self.url()?;
        Ok(())
    }

    /// The URL devices use: the configured one, else `http://LISTEN`.
    pub fn url(&self) -> Result<RelayUrl> {
        let text = match &self.url {
            Some(u) => u.clone(),
            None if self.tls_cert.is_some() => bail!("[relay]: with TLS, set `url` to the name the certificate is for"),
            None if self.listen.ip().is_unspecified() => bail!(
                "[relay]: listen is {} (every address); set `url` to the address devices reach it at",
                self.listen
            ),
            None => format!("http://{}", self.listen),
        };
        text.parse()
            .with_context(|| format!("[relay]: url `{text}` is not a URL"))
    }

    fn https_listen(&self) -> SocketAddr {
        self.https_listen
            .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), 443))
    }
}

/// A running relay and the URL devices reach it at.
pub struct RunningRelay {
    server: Server,
    /// Where devices reach it.
    pub url: RelayUrl,
}

impl RunningRelay {
    /// Stop serving.
    pub async fn shutdown(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!("relay shutdown: {e}");
        }
    }
}

/// Start the relay as configured.
pub async fn start(settings: &RelaySettings) -> Result<RunningRelay> {
    settings.check()?;
    let url = settings.url()?;
    let mut relay = RelayConfig::new(settings.listen);
    let mut config = ServerConfig::default();
    if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
        let tls = tls_config(cert, key)?;
        let https = settings.https_listen();
        relay.tls = Some(TlsConfig::new(https, CertConfig::Manual { server_config: tls }));
        config.quic = Some(QuicConfig::new(SocketAddr::new(https.ip(), QUIC_ADDR_DISCOVERY_PORT)));
    }
    config.relay = Some(relay);
    let server = Server::spawn(config)
        .await
        .with_context(|| format!("starting the relay on {}", settings.listen))?;
    tracing::info!(%url, http = ?server.http_addr(), https = ?server.https_addr(), "relay serving");
    Ok(RunningRelay { server, url })
}

/// The HTTPS server's TLS settings from PEM files.
fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .with_context(|| format!("[relay]: reading the certificate chain {}", cert.display()))?;
    if chain.is_empty() {
        bail!("[relay]: {} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("[relay]: reading the private key {}", key.display()))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("[relay]: the certificate and key do not make a TLS identity")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_needs_a_url_devices_can_reach() {
        let on_all = RelaySettings::plain("0.0.0.0:3340".parse().unwrap());
        assert!(on_all.check().unwrap_err().to_string().contains("set `url`"));
        let lan = RelaySettings::plain("10.0.0.2:3340".parse().unwrap());
        assert_eq!(lan.url().unwrap().to_string(), "http://10.0.0.2:3340/");
        let half_tls = RelaySettings {
            tls_cert: Some("/etc/cert.pem".into()),
            ..lan
        };
        assert!(half_tls.check().unwrap_err().to_string().contains("go together"));
    }
}
