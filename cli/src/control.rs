//! While `phr serve` holds a home's store, other `phr` commands on that home are carried out
//! by the serving process, over a Unix socket in the home that only its owner can open.
//! That way a local edit made during `serve` goes straight out to connected peers.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use phr_engine::sync::Replica;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Command;

/// Where the serving process listens.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("serve.sock")
}

#[derive(Serialize, Deserialize)]
struct Request {
    passphrase: String,
    command: Command,
}

#[derive(Serialize, Deserialize)]
struct Response {
    stdout: String,
    error: Option<String>,
}

/// Run `command` in the process serving `home`; prints its output. Errors if nobody serves.
pub fn forward(home: &Path, passphrase: String, command: Command) -> Result<()> {
    let (stdout, error) = exchange(home, &passphrase, command)?;
    print!("{stdout}");
    match error {
        Some(e) => anyhow::bail!("{e}"),
        None => Ok(()),
    }
}

/// Run `command` in the process serving `home` and return its output instead of printing it.
pub fn forward_capture(home: &Path, passphrase: &str, command: Command) -> Result<Vec<u8>> {
    let (stdout, error) = exchange(home, passphrase, command)?;
    match error {
        Some(e) => anyhow::bail!("{e}"),
        None => Ok(stdout.into_bytes()),
    }
}

/// One request and its answer over the serving process's socket.
#[cfg(unix)]
fn exchange(home: &Path, passphrase: &str, command: Command) -> Result<(String, Option<String>)> {
    use std::os::unix::net::UnixStream;
    let path = socket_path(home);
    let mut stream = UnixStream::connect(&path).with_context(|| {
        "the store is in use by another phr process that does not accept commands (is a sync or pairing running?)"
            .to_string()
    })?;
    let req = serde_json::to_string(&Request {
        passphrase: passphrase.to_string(),
        command,
    })?;
    stream.write_all(req.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .context("`phr serve` did not answer")?;
    let resp: Response = serde_json::from_str(&line).context("`phr serve` answered something unreadable")?;
    Ok((resp.stdout, resp.error))
}

/// Not available off Unix: the store stays busy while serving.
#[cfg(not(unix))]
fn exchange(_home: &Path, _passphrase: &str, _command: Command) -> Result<(String, Option<String>)> {
    anyhow::bail!("the store is in use by another phr process (stop `phr serve` first)")
}

/// A `phr sync` run by the serving process for another `phr` process (see `listen`).
pub struct ForwardedSync {
    /// The `--peer` arguments.
    pub peers: Vec<String>,
    /// Whether `--json` was given.
    pub json: bool,
    /// Where the output (and the error, if any) goes.
    pub reply: tokio::sync::oneshot::Sender<(Vec<u8>, Option<String>)>,
}

/// Removes the socket when serving stops.
pub struct Listening {
    path: PathBuf,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accept forwarded commands for `replica`, checking each against the serving passphrase;
/// `phr sync` goes to the serve loop through `syncs`, since it needs the running endpoint.
#[cfg(unix)]
pub fn listen(
    home: &Path,
    passphrase: String,
    replica: Arc<Replica>,
    syncs: tokio::sync::mpsc::Sender<ForwardedSync>,
) -> Result<Listening> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixListener;
    let path = socket_path(home);
    // A socket left by a serve that was killed: nobody answers on it, so it can go.
    if path.exists() && std::os::unix::net::UnixStream::connect(&path).is_err() {
        let _ = std::fs::remove_file(&path);
    }
    let listener = UnixListener::bind(&path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let passphrase = Arc::new(Zeroizing::new(passphrase));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (replica, passphrase, syncs) = (replica.clone(), passphrase.clone(), syncs.clone());
            std::thread::spawn(move || {
                if let Err(e) = serve_one(stream, &replica, &passphrase, &syncs) {
                    tracing::warn!("a forwarded command failed: {e:#}");
                }
            });
        }
    });
    Ok(Listening { path })
}

/// Not available off Unix.
#[cfg(not(unix))]
pub fn listen(
    home: &Path,
    _passphrase: String,
    _replica: Arc<Replica>,
    _syncs: tokio::sync::mpsc::Sender<ForwardedSync>,
) -> Result<Listening> {
    Ok(Listening {
        path: socket_path(home),
    })
}

#[cfg(unix)]
fn serve_one(
    stream: std::os::unix::net::UnixStream,
    replica: &Replica,
    passphrase: &str,
    syncs: &tokio::sync::mpsc::Sender<ForwardedSync>,
) -> Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = Zeroizing::new(String::new());
    reader.read_line(&mut line)?;
    let req: Request = serde_json::from_str(&line).context("unreadable forwarded command")?;
    let mut out = Vec::new();
    let error = if !constant_time_eq(req.passphrase.as_bytes(), passphrase.as_bytes()) {
        Some(phr_engine::Error::WrongPassphrase.to_string())
    } else if let Command::Sync { peers, json } = req.command {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = ForwardedSync {
            peers,
            json: json.json,
            reply,
        };
        match syncs.blocking_send(job).ok().and(answer.blocking_recv().ok()) {
            Some((shown, error)) => {
                out = shown;
                error
            }
            None => Some("`phr serve` is stopping; try again when it is back".to_string()),
        }
    } else {
        crate::execute(req.command, replica, &mut out)
            .err()
            .map(|e| crate::errors::worded(&e))
    };
    let resp = Response {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        error,
    };
    let mut stream = stream;
    stream.write_all(serde_json::to_string(&resp)?.as_bytes())?;
    stream.write_all(b"\n")?;
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
