//! Driving the real `phr` binary in throwaway homes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub mod devices;
pub mod fhir_roundtrip;
pub mod fhir_validator;
pub mod http;
pub mod impair;
pub mod netns;
pub mod processes;
pub mod wire;

/// The passphrase every test home is created with.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The `phr` binary. The root package owns it (a thin main over the `phr-cli` library), so
/// Cargo builds it before these tests and tells them where it is.
pub fn phr_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_phr"))
}

/// The `phr-node` binary, built and found the same way as [`phr_bin`].
#[allow(dead_code)] // only the tests that run a clinic node use it
pub fn phr_node_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_phr-node"))
}

/// What one run of `phr` did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for failure messages.
    pub line: String,
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Assert that it succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "`{}` failed:\n{}", self.line, self.stderr);
        self
    }

    /// Assert that it was refused the way a user should see it: exit code 1 (2 for a command line
    /// clap rejects), an `error:` message, no panic; returns the message.
    #[track_caller]
    pub fn refused(self) -> String {
        assert!(
            !self.stderr.contains("panicked"),
            "`{}` panicked:\n{}",
            self.line,
            self.stderr
        );
        assert!(
            matches!(self.code, Some(1 | 2)),
            "`{}` should have been refused, not exit with {:?}; stdout:\n{}\nstderr:\n{}",
            self.line,
            self.code,
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.starts_with("error: "),
            "`{}`: unexpected stderr:\n{}",
            self.line,
            self.stderr
        );
        self.stderr
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{}", self.line, self.stdout))
    }
}

/// A device home in a temporary directory, with a scratch directory beside it.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    /// An empty home (no record yet).
    pub fn new() -> Home {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("home")).expect("home directory");
        Home { dir }
    }

    /// A home with a new record for `name`.
    pub fn init(name: &str) -> Home {
        let home = Home::new();
        home.ok(["init", "--name", name]);
        home
    }

    /// A home whose store file holds exactly `bytes`.
    pub fn with_store(bytes: &[u8]) -> Home {
        let home = Home::new();
        std::fs::write(home.store(), bytes).expect("writing the store");
        home
    }

    /// The home directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A path in the scratch directory beside the home.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The store file.
    pub fn store(&self) -> PathBuf {
        self.path().join("phr.redb")
    }

    /// The store file's bytes.
    pub fn store_bytes(&self) -> Vec<u8> {
        std::fs::read(self.store()).expect("reading the store")
    }

    /// `phr --home HOME ARGS` unlocked with `passphrase`, run in the scratch directory, and
    /// the command line as failure messages show it.
    fn command<I, S>(&self, passphrase: &str, args: I) -> (Command, String)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let line = format!(
            "phr {}",
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        );
        let mut cmd = Command::new(phr_bin());
        cmd.arg("--home")
            .arg(self.path())
            .args(&args)
            .current_dir(self.dir.path())
            .env("PHR_PASSPHRASE", passphrase)
            .env_remove("PHR_HOME")
            .env_remove("PHR_LOG");
        (cmd, line)
    }

    /// Run `phr --home HOME ARGS` with `input` on its standard input (as a pipe, not a terminal).
    pub fn phr_fed<I, S>(&self, input: &[u8], args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        use std::io::Write;
        use std::process::Stdio;
        let (mut cmd, line) = self.command(PASSPHRASE, args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", phr_bin().display()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        // A child that stops reading early must not block the test.
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("waiting for phr");
        let _ = feeder.join();
        Run {
            line,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run `phr --home HOME ARGS` unlocked with `passphrase`.
    pub fn phr_as<I, S>(&self, passphrase: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (cmd, line) = self.command(passphrase, args);
        finish(cmd, line)
    }

    /// `phr ARGS`, which must succeed, on a device whose clock is in time zone `tz` (a `TZ`
    /// value such as `America/New_York`).
    #[track_caller]
    #[allow(dead_code)] // only the tests of times going out as FHIR use it
    pub fn ok_in_zone<I, S>(&self, tz: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (mut cmd, line) = self.command(PASSPHRASE, args);
        cmd.env("TZ", tz);
        finish(cmd, line).ok()
    }

    /// Run `phr` with the home's passphrase.
    pub fn phr<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.phr_as(PASSPHRASE, args)
    }

    /// Run `phr` and assert it succeeded.
    #[track_caller]
    pub fn ok<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.phr(args).ok()
    }

    /// Run `phr` and parse its JSON output.
    #[track_caller]
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ok(args).json()
    }

    /// `phr add SECTION FIELDS… --json`; returns the new entry's id.
    #[track_caller]
    pub fn add(&self, section: &str, fields: &[&str]) -> String {
        let mut args = vec!["add", section];
        args.extend_from_slice(fields);
        args.push("--json");
        let entry = self.json(args);
        assert_eq!(entry["section"], section, "{entry}");
        entry["id"].as_str().expect("the new entry's id").to_string()
    }

    /// One entry, from `phr show SECTION ID --json`.
    #[track_caller]
    pub fn entry(&self, section: &str, id: &str) -> Value {
        self.json(["show", section, id, "--json"])
    }

    /// `phr status --json`.
    #[track_caller]
    pub fn status(&self) -> Value {
        self.json(["status", "--json"])
    }
}

/// Run a `phr` command to its end.
fn finish(mut cmd: Command, line: String) -> Run {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", phr_bin().display()));
    Run {
        line,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
