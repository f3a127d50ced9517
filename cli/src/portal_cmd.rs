//! `phr portal` and `phr serve --portal`: the serving process also serves the patient portal
//! (`phr-portal`) on loopback, and prints the one-time sign-in link.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use phr_engine::sync::net::Service;
use serde::{Deserialize, Serialize};

/// Where and how the portal serves.
#[derive(Args, Clone, Serialize, Deserialize)]
pub(crate) struct PortalOpts {
    /// Address for the portal: this computer only (127.0.0.1 or ::1) until TLS is supported;
    /// port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Minutes without use after which a browser is signed out.
    #[arg(long, default_value_t = 15)]
    idle_minutes: u64,
}

impl PortalOpts {
    /// The portal's configuration, refused if it could not start.
    pub(crate) fn config(self) -> Result<phr_portal::Config> {
        if !self.listen.ip().is_loopback() {
            return Err(phr_portal::Error::NotLoopback(self.listen).into());
        }
        if self.idle_minutes == 0 || self.idle_minutes > 24 * 60 {
            bail!("--idle-minutes must be between 1 and 1440 (a day)");
        }
        Ok(phr_portal::Config {
            listen: self.listen,
            idle: Duration::from_secs(self.idle_minutes * 60),
            inviter: None,
        })
    }
}

/// Start the portal on the serving process's record, if asked, and say how to open it.
pub(crate) async fn start(service: &Service, config: Option<phr_portal::Config>) -> Result<Option<phr_portal::Portal>> {
    let Some(mut config) = config else { return Ok(None) };
    // Shares and new devices made in the browser are answered by this process's endpoint.
    config.inviter = Some(service.inviter());
    let portal = phr_portal::Portal::start(service.replica().clone(), config).await?;
    println!("Portal: open {} in your web browser", portal.login_url());
    println!("  (the link works once, on this computer; run `phr portal` again for a new one)");
    Ok(Some(portal))
}

/// Stop the portal, if it runs.
pub(crate) async fn stop(portal: Option<phr_portal::Portal>) {
    if let Some(p) = portal
        && let Err(e) = p.stop().await
    {
        eprintln!("{e}");
    }
}
