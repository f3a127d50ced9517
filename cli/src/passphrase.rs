//! Getting the store passphrase: `PHR_PASSPHRASE` for scripts, otherwise a prompt.

use anyhow::{Context, Result, bail};
use phr_engine::crypto::check_new_passphrase;

/// The passphrase; on `new`, checked by the engine's rule for new passphrases (and asked
/// twice at a prompt).
pub fn get(new: bool) -> Result<String> {
    if let Ok(p) = std::env::var("PHR_PASSPHRASE") {
        if new {
            check_new_passphrase(&p).context("PHR_PASSPHRASE cannot protect a new record")?;
        }
        return Ok(p);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("no passphrase: set PHR_PASSPHRASE or run phr in a terminal to be asked");
    }
    let first = rpassword::prompt_password(if new { "New passphrase: " } else { "Passphrase: " })?;
    if new {
        check_new_passphrase(&first)?;
        let again = rpassword::prompt_password("Repeat passphrase: ")?;
        if again != first {
            bail!("the two passphrases differ; nothing was created");
        }
    }
    Ok(first)
}
