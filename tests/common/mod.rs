//! Driving the real `phr` binary in throwaway homes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::Value;

pub mod devices;
pub mod processes;
pub mod wire;

/// The passphrase every test home is created with.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// A binary of the workspace that the tests run as a real process.
struct Binary {
    /// The executable's name (without the platform's suffix).
    name: &'static str,
    /// The package that builds it.
    package: &'static str,
    /// Files and directories (relative to the workspace root) it is built from: if any is
    /// newer than the binary, the binary is rebuilt before a test uses it.
    sources: &'static [&'static str],
}

/// The patient's command line.
const PHR: Binary = Binary {
    name: "phr",
    package: "phr-cli",
    sources: &[
        "Cargo.toml",
        "Cargo.lock",
        "cli/Cargo.toml",
        "cli/src",
        "engine/Cargo.toml",
        "engine/src",
    ],
};

/// The clinic's daemon (it also compiles `cli/src/qr.rs` and embeds `docs/openapi.json`).
const PHR_NODE: Binary = Binary {
    name: "phr-node",
    package: "phr-node",
    sources: &[
        "Cargo.toml",
        "Cargo.lock",
        "node/Cargo.toml",
        "node/src",
        "cli/src/qr.rs",
        "docs/openapi.json",
        "engine/Cargo.toml",
        "engine/src",
    ],
};

/// The `phr` binary, rebuilt first (once per test process) if it is missing or out of date.
///
/// These tests belong to the facade package `phr`, but the binary belongs to `phr-cli`, so Cargo
/// sets no `CARGO_BIN_EXE_phr` for them, and `cargo test --test cli` neither builds nor rebuilds
/// another package's binary. The binary is found next to the test executable: tests live in
/// target/<profile>/deps/, binaries in target/<profile>/. If it is missing, or older than a
/// source it is built from, the first test to need it runs `cargo build -p phr-cli` for the same
/// profile and uses the binary Cargo reports. (Building unconditionally would be simpler, but
/// would wait for the Cargo lock whenever another build is running on the same target dir.)
pub fn phr_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| PHR.locate())
}

/// The `phr-node` binary, found and kept up to date the same way as [`phr_bin`].
#[allow(dead_code)] // only the tests that run a clinic node use it
pub fn phr_node_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| PHR_NODE.locate())
}

impl Binary {
    /// The binary beside the test executable, rebuilt with Cargo if it is missing or stale.
    fn locate(&self) -> PathBuf {
        let exe = std::env::current_exe().expect("path of the test executable");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps");
        let beside = profile_dir.join(format!("{}{}", self.name, std::env::consts::EXE_SUFFIX));
        let built = std::fs::metadata(&beside).and_then(|m| m.modified()).ok();
        if built.is_some_and(|built| built >= self.newest_source()) {
            return beside;
        }
        let profile = match profile_dir.file_name().and_then(OsStr::to_str) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        match self.cargo_build(profile) {
            Ok(path) => path,
            Err(why) if built.is_some() => {
                eprintln!(
                    "could not rebuild {} ({why}); testing the existing {}",
                    self.name,
                    beside.display()
                );
                beside
            }
            Err(why) => panic!(
                "no {} binary at {} and building it failed: {why}",
                self.name,
                beside.display()
            ),
        }
    }

    /// When the newest file the binary is built from was last changed.
    fn newest_source(&self) -> SystemTime {
        fn walk(path: &Path, newest: &mut SystemTime) {
            let Ok(meta) = std::fs::metadata(path) else { return };
            if meta.is_dir() {
                for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                    walk(&entry.path(), newest);
                }
            } else if let Ok(modified) = meta.modified() {
                *newest = (*newest).max(modified);
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut newest = SystemTime::UNIX_EPOCH;
        for part in self.sources {
            walk(&root.join(part), &mut newest);
        }
        newest
    }

    fn cargo_build(&self, profile: &str) -> Result<PathBuf, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "-p", self.package, "--bin", self.name])
            .arg("--message-format=json")
            .args(["--profile", profile])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == self.name)
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .ok_or_else(|| format!("cargo reported no {} executable", self.name))
    }
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
        let (mut cmd, line) = self.command(passphrase, args);
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
