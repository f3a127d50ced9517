//! The name a new record's first device goes by: the patient's own devices are listed by it,
//! and it follows the person in what they send ("Mia Lopez via Mia's laptop").

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

/// The name `phr init` gives its device: `given` (`--device-name`); else, at a terminal, what
/// the user types when asked (Enter takes the suggestion); else the suggestion itself.
pub fn choose(given: Option<String>, patient: &str) -> Result<String> {
    let suggested = suggestion(patient, host_name().as_deref());
    let name = match given {
        Some(name) => name,
        None if std::io::stdin().is_terminal() => ask(&suggested)?,
        None => suggested,
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("a device needs a name, e.g. \"Mia's phone\"");
    }
    Ok(name.to_string())
}

/// Ask on the terminal, suggesting `suggested`.
fn ask(suggested: &str) -> Result<String> {
    eprint!("A name for this device, as the family's other devices list it [{suggested}]: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(match line.trim() {
        "" => suggested.to_string(),
        typed => typed.to_string(),
    })
}

/// `<first name>'s <computer name>`, or `<first name>'s device` without a computer name.
pub fn suggestion(patient: &str, host: Option<&str>) -> String {
    let first = patient.split_whitespace().next().unwrap_or("the patient");
    format!("{first}'s {}", host.unwrap_or("device"))
}

/// This computer's name, as the system gives it (its first label; not `localhost`).
fn host_name() -> Option<String> {
    ["/etc/hostname", "/proc/sys/kernel/hostname"].iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        let label = text.trim().split('.').next()?.trim();
        let usable = !label.is_empty() && label != "localhost" && label.chars().all(|c| c.is_ascii_graphic());
        usable.then(|| label.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggestion_is_the_patients_first_name_and_the_computers() {
        assert_eq!(suggestion("Mia Lopez", Some("kitchen-laptop")), "Mia's kitchen-laptop");
        assert_eq!(suggestion("Mia", None), "Mia's device");
        assert_eq!(suggestion("  ", None), "the patient's device");
    }
}
