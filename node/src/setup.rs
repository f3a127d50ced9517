//! Setting a clinic up: `phr-node init` (data directory, sealed store, API token, config) and
//! the store passphrase `init` and `run` ask for.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use phr_engine::clinic::Clinic;
use phr_engine::crypto::{KdfParams, check_new_passphrase};
use phr_engine::private_file;

use crate::config::{self, Config};

pub(crate) fn init(cfg: &Config, name: &str) -> Result<()> {
    let dir = &cfg.data_dir;
    private_file::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    // A directory that was already there (made by hand or by a package) is made private too.
    restrict(dir, private_file::DIR_MODE)?;
    if cfg.store_path().exists() {
        bail!("a clinic already exists in {}; refusing to overwrite it", dir.display());
    }
    let passphrase = passphrase(cfg, true)?;
    let clinic = Clinic::create(&cfg.store_path(), &passphrase, name, KdfParams::default())?;
    let token = hex::encode(random_token()?);
    private_file::write(&cfg.token_path(), format!("{token}\n").as_bytes(), true)?;
    let file = dir.join(config::FILE_NAME);
    if !file.exists() {
        std::fs::write(&file, cfg.to_documented_toml()).with_context(|| format!("writing {}", file.display()))?;
    }
    println!("Created clinic `{}` in {}", clinic.name(), dir.display());
    println!("Clinic key: {}", clinic.key());
    println!("Config: {}  API token: {}", file.display(), cfg.token_path().display());
    println!("Next: `phr-node run`, then `phr-node staff add --name …` and `phr-node invite`.");
    Ok(())
}

fn random_token() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness for the API token: {e}"))?;
    Ok(b)
}

fn restrict(path: &std::path::Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

/// The store passphrase: the config's passphrase file, `PHR_PASSPHRASE`, or a prompt.
pub(crate) fn passphrase(cfg: &Config, new: bool) -> Result<String> {
    if let Some(f) = &cfg.passphrase_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading the passphrase file {}", f.display()))?;
        let p = text.lines().next().unwrap_or("").to_string();
        if new {
            check_new_passphrase(&p)
                .with_context(|| format!("the passphrase file {} cannot protect a new store", f.display()))?;
        }
        return Ok(p);
    }
    if let Ok(p) = std::env::var("PHR_PASSPHRASE") {
        if new {
            check_new_passphrase(&p).context("PHR_PASSPHRASE cannot protect a new store")?;
        }
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no passphrase: set PHR_PASSPHRASE, set passphrase_file in the config, or run in a terminal");
    }
    let p = rpassword::prompt_password(if new {
        "New store passphrase: "
    } else {
        "Store passphrase: "
    })?;
    if new {
        check_new_passphrase(&p)?;
        if rpassword::prompt_password("Repeat passphrase: ")? != p {
            bail!("the two passphrases differ; nothing was created");
        }
    }
    Ok(p)
}
