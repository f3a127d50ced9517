//! Getting the store passphrase: `PHR_PASSPHRASE` for scripts, otherwise a prompt.

use anyhow::{Result, bail};

/// The passphrase; on `new`, asked twice and checked for length.
pub fn get(new: bool) -> Result<String> {
    if let Ok(p) = std::env::var("PHR_PASSPHRASE") {
        if new && p.is_empty() {
            bail!("PHR_PASSPHRASE is empty: choose a passphrase");
        }
        return Ok(p);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("no passphrase: set PHR_PASSPHRASE or run phr in a terminal to be asked");
    }
    let first = rpassword::prompt_password(if new { "New passphrase: " } else { "Passphrase: " })?;
    if new {
        if first.chars().count() < 8 {
            bail!("choose a passphrase of at least 8 characters");
        }
        let again = rpassword::prompt_password("Repeat passphrase: ")?;
        if again != first {
            bail!("the two passphrases differ; nothing was created");
        }
    }
    Ok(first)
}
