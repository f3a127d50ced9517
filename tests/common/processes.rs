//! Real processes for multi-process tests (tests/node.rs, tests/chaos.rs, tests/hostile_node.rs,
//! tests/cli_access.rs, tests/cli_patient.rs): a clinic's
//! `phr-node` daemon that can be stopped with SIGTERM or SIGKILL and started again on the same
//! ports, and patients' and caregivers' `phr` homes on loopback. Every process is killed when
//! its handle is dropped, and every wait is bounded.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::fhir_validator::assert_valid_fhir;
use super::{Home, PASSPHRASE, Run, phr_bin, phr_node_bin};

/// The clinic every test runs.
pub const CLINIC: &str = "Bright Steps Therapy";
/// The clinic's time zone, the node's `TZ`: New York's, as a POSIX rule (no zone database
/// needed), so the times the node writes show their zone (`-04:00` in summer, `-05:00` in winter).
pub const CLINIC_ZONE: &str = "EST5EDT,M3.2.0,M11.1.0";
/// The longest any one wait may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A process running in the background, killed when dropped if it is still running.
pub struct Proc {
    /// The command line, for failure messages.
    pub line: String,
    /// The process.
    pub child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Proc {
    /// Start `cmd` (described as `line` in failure messages) without waiting for it.
    pub fn spawn(mut cmd: Command, line: String) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting `{line}`: {e}"));
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (mut err, sink) = (child.stderr.take().expect("piped stderr"), stderr.clone());
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        });
        Proc {
            line,
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Its standard error so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// Everything it printed so far, for a failure message.
    pub fn report(&mut self) -> String {
        while let Ok(l) = self.lines.try_recv() {
            self.stdout.push(l);
        }
        format!(
            "`{}`; stdout so far:\n{}\nstderr so far:\n{}",
            self.line,
            self.stdout.join("\n"),
            self.stderr()
        )
    }

    /// Wait (bounded) for a line of stdout that satisfies `want`; returns it.
    #[track_caller]
    pub fn wait_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + PATIENCE;
        loop {
            match self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(l) => {
                    self.stdout.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the expected line did not come within {PATIENCE:?}; {}", self.report())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.wait_exit(Duration::from_secs(5));
                    panic!("it stopped before printing the expected line; {}", self.report())
                }
            }
        }
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait up to `limit` for it to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// Wait (bounded) for it to exit; returns what it did.
    #[track_caller]
    pub fn finish(mut self) -> Run {
        let Some(status) = self.wait_exit(PATIENCE) else {
            panic!("it did not exit within {PATIENCE:?}; {}", self.report());
        };
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stdout.push(l);
        }
        Run {
            line: self.line.clone(),
            code: status.code(),
            stdout: self.stdout.join("\n"),
            stderr: self.stderr(),
        }
    }

    /// Send `signal` (e.g. "TERM", "KILL") and wait (bounded) for it to exit.
    #[track_caller]
    pub fn signal(self, signal: &str) -> Run {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-s", signal, &pid]).status();
        assert!(
            sent.as_ref().is_ok_and(ExitStatus::success),
            "could not SIG{signal} `{}` ({pid}): {sent:?}",
            self.line
        );
        self.finish()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Start `phr --home HOME --net local ARGS` in the background (tests/cli_access.rs,
/// tests/cli_patient.rs): a `phr share`, `phr join` or `phr serve` the test talks to meanwhile.
pub fn spawn_phr(home: &Home, args: &[&str]) -> Proc {
    let mut cmd = Command::new(phr_bin());
    cmd.arg("--home")
        .arg(home.path())
        .args(["--net", "local"])
        .args(args)
        .env("PHR_PASSPHRASE", PASSPHRASE)
        .env_remove("PHR_HOME")
        .env_remove("PHR_LOG")
        .env_remove("PHR_BIND");
    Proc::spawn(cmd, format!("phr {}", args.join(" ")))
}

/// A command for `bin`, inside network namespace `netns` if given (tests/common/netns.rs).
pub fn command_in(netns: Option<&str>, bin: &std::path::Path) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// Run a command to completion (it has its own timeouts; `phr` never waits forever).
pub fn run(mut cmd: Command, line: String) -> Run {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running `{line}`: {e}"));
    Run {
        line,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A command line as failure messages show it.
pub fn describe<S: AsRef<OsStr>>(program: &str, args: &[S]) -> String {
    let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    format!("{program} {}", args.join(" "))
}

/// A loopback UDP port nobody is using right now.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free UDP port");
    s.local_addr().expect("its address").port()
}

/// A clinic's `phr-node` in a temporary data directory, on loopback, on the same sync port
/// across restarts (so addresses devices remember stay right).
pub struct Node {
    /// Declared before `data`, so the daemon is killed before its directory is removed.
    pub daemon: Option<Proc>,
    data: tempfile::TempDir,
    earlier_logs: String,
    listen: String,
    /// Where devices reach it, `KEY@IP:PORT`.
    pub sync: String,
    /// Its HTTP API, `http://IP:PORT`.
    pub http: String,
    /// The API token.
    pub token: String,
    /// The HTTP client its calls use (clone it to call from another thread).
    pub agent: ureq::Agent,
    /// The network namespace it runs in (None: this one, on loopback).
    pub netns: Option<String>,
    /// The relay it runs, as devices reach it (`http://IP:PORT/`), if any.
    pub relay: Option<String>,
    relay_listen: Option<String>,
}

impl Node {
    /// A new clinic (`phr-node init`), started.
    pub fn start_new() -> Node {
        Node::start_new_at(None, "127.0.0.1")
    }

    /// A new clinic in network namespace `netns`, serving devices and its relay on `ip`
    /// (tests/real_networks.rs).
    pub fn start_with_relay(netns: &str, ip: &str) -> Node {
        Node::start_new_at(Some(netns), ip)
    }

    fn start_new_at(netns: Option<&str>, ip: &str) -> Node {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(PATIENCE))
            .proxy(None)
            .build()
            .into();
        let mut node = Node {
            daemon: None,
            data: tempfile::tempdir().expect("a temporary directory"),
            earlier_logs: String::new(),
            listen: format!("{ip}:{}", if netns.is_some() { 4919 } else { free_udp_port() }),
            sync: String::new(),
            http: String::new(),
            token: String::new(),
            agent,
            netns: netns.map(str::to_string),
            relay: None,
            relay_listen: netns.map(|_| format!("{ip}:3340")),
        };
        let init = node.cli_ok(["init", "--name", CLINIC]);
        assert!(
            init.stdout.contains(&format!("Created clinic `{CLINIC}`")),
            "{}",
            init.stdout
        );
        node.token = std::fs::read_to_string(node.dir().join("api-token"))
            .expect("`phr-node init` writes the API token")
            .trim()
            .to_string();
        node.start();
        node
    }

    /// The data directory.
    pub fn dir(&self) -> PathBuf {
        self.data.path().join("clinic")
    }

    /// `phr-node run`; returns once it says it is ready.
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "the node is already running");
        let mut args = vec![
            "run",
            "--net",
            "local",
            "--listen",
            &self.listen,
            "--http",
            "127.0.0.1:0",
        ];
        if let Some(r) = &self.relay_listen {
            args.extend(["--relay", r]);
        }
        let mut cmd = command_in(self.netns.as_deref(), phr_node_bin());
        cmd.arg("--data")
            .arg(self.dir())
            .args(&args)
            .env("PHR_PASSPHRASE", PASSPHRASE)
            .env("TZ", CLINIC_ZONE)
            .env("NO_COLOR", "1")
            .env_remove("PHR_NODE_DATA")
            .env_remove("PHR_NET");
        let mut daemon = Proc::spawn(cmd, describe("phr-node", &args));
        // `phr-node ready: clinic `NAME` sync KEY@IP:PORT http http://IP:PORT`
        let ready = daemon.wait_line(|l| l.starts_with("phr-node ready:"));
        assert!(ready.contains(&format!("clinic `{CLINIC}`")), "{ready}");
        let after = |word: &str| {
            let mut words = ready.split_whitespace().skip_while(|w| *w != word);
            words
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no `{word}` in: {ready}"))
        };
        self.sync = after("sync");
        self.http = after("http");
        self.relay = self.relay_listen.as_ref().map(|_| after("relay"));
        // Scripts find the running node through node.addr; it says what the node printed.
        let addr = self.addr_file();
        assert_eq!(addr["sync"].as_str(), Some(self.sync.as_str()), "node.addr: {addr}");
        assert_eq!(
            addr["http"].as_str().map(|h| format!("http://{h}")),
            Some(self.http.clone())
        );
        assert_eq!(
            addr["pid"].as_u64(),
            Some(u64::from(daemon.child.id())),
            "node.addr: {addr}"
        );
        self.daemon = Some(daemon);
    }

    /// `<data>/node.addr`, written by the running node.
    pub fn addr_file(&self) -> Value {
        let path = self.dir().join("node.addr");
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    }

    /// Whether the daemon is running.
    pub fn running(&self) -> bool {
        self.daemon.is_some()
    }

    /// Stop it with `signal` ("TERM": it must exit 0, say it stopped and leave no node.addr
    /// behind; "KILL": it just dies). Returns what it printed.
    #[track_caller]
    pub fn stop_with(&mut self, signal: &str) -> Run {
        let daemon = self.daemon.take().expect("the node is running");
        let stopped = daemon.signal(signal);
        self.earlier_logs.push_str(&stopped.stderr);
        self.earlier_logs.push_str(&format!("---- SIG{signal} ----\n"));
        if signal == "TERM" {
            assert_eq!(stopped.code, Some(0), "phr-node on SIGTERM:\n{}", stopped.stderr);
            assert!(stopped.stderr.contains("phr-node stopped"), "{}", stopped.stderr);
            assert!(
                !self.dir().join("node.addr").exists(),
                "a stopped node leaves no address behind for scripts to find"
            );
        }
        stopped
    }

    /// Stop it the way a service manager does (SIGTERM), cleanly.
    #[track_caller]
    pub fn stop(&mut self) -> Run {
        self.stop_with("TERM")
    }

    /// Its log over every run so far.
    pub fn log(&self) -> String {
        let current = self.daemon.as_ref().map(Proc::stderr).unwrap_or_default();
        format!("{}{current}", self.earlier_logs)
    }

    /// Fail, showing the node's log.
    #[track_caller]
    pub fn fail(&self, what: String) -> ! {
        panic!("{what}\nphr-node's log:\n{}", self.log())
    }

    /// Whether the daemon's process is still alive (not exited or crashed, not a zombie).
    pub fn alive(&self) -> bool {
        let Some(d) = &self.daemon else { return false };
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", d.child.id())).unwrap_or_default();
        // The state follows the command name in parentheses.
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next());
        matches!(state, Some(Some(c)) if c != 'Z' && c != 'X')
    }

    /// `phr-node --data DIR ARGS`.
    pub fn cli<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let mut cmd = command_in(self.netns.as_deref(), phr_node_bin());
        cmd.arg("--data")
            .arg(self.dir())
            .args(&args)
            .env("PHR_PASSPHRASE", PASSPHRASE)
            .env_remove("PHR_NODE_DATA");
        run(cmd, describe("phr-node", &args))
    }

    /// A `phr-node` subcommand that must succeed.
    #[track_caller]
    pub fn cli_ok<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cli(args);
        if out.code != Some(0) {
            self.fail(format!("`{}` failed:\n{}", out.line, out.stderr));
        }
        out
    }

    /// Add a staff member.
    pub fn staff(&self, name: &str, role: &str) {
        self.cli_ok(["staff", "add", "--name", name, "--role", role]);
    }

    /// A one-use invitation (the ticket is on line 2 of `phr-node invite`).
    pub fn invite(&self) -> String {
        let out = self.cli_ok(["invite"]);
        let ticket = out.stdout.lines().nth(1).unwrap_or_default().trim().to_string();
        assert!(ticket.starts_with("PHRCLINIC1"), "no ticket on line 2:\n{}", out.stdout);
        ticket
    }

    /// One HTTP request; `token` None sends none. Returns the status and the body (JSON, or
    /// the text as a JSON string); Err if the node could not be reached.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.http));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let sent = match body {
            Some(b) => self.agent.run(
                req.header("Content-Type", "application/json")
                    .body(b.to_string())
                    .expect("a well-formed request"),
            ),
            None => self.agent.run(req.body(()).expect("a well-formed request")),
        };
        let mut res = sent.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// One HTTP request that must reach the node.
    #[track_caller]
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        self.try_call(method, path, token, body)
            .unwrap_or_else(|e| self.fail(e))
    }

    /// GET an API route with the token; it must answer 200.
    #[track_caller]
    pub fn get(&self, path: &str) -> Value {
        match self.call("GET", path, Some(&self.token), None) {
            (200, body) => body,
            (status, body) => self.fail(format!("GET {path} answered {status}: {body}")),
        }
    }

    /// POST a FHIR resource to `/v1/patients/PATIENT/KIND`; it must succeed.
    #[track_caller]
    pub fn push(&self, patient: &str, kind: &str, resource: &Value) -> Value {
        let path = format!("/v1/patients/{patient}/{kind}");
        match self.call("POST", &path, Some(&self.token), Some(&resource.to_string())) {
            (200 | 201, body) => body,
            (status, body) => self.fail(format!("POST {path} answered {status}: {body}")),
        }
    }

    /// A value from `/metrics`.
    #[track_caller]
    pub fn metric(&self, name: &str) -> f64 {
        let (status, body) = self.call("GET", "/metrics", None, None);
        let text = body.as_str().unwrap_or_default();
        assert_eq!(status, 200, "/metrics: {text}");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| self.fail(format!("no {name} in /metrics:\n{text}")))
    }

    /// The resources of a FHIR searchset bundle from an API route, which must be valid FHIR R4.
    #[track_caller]
    pub fn bundle(&self, path: &str) -> Vec<Value> {
        let bundle = self.get(path);
        assert_eq!(bundle["resourceType"], "Bundle", "{path}: {bundle}");
        assert_valid_fhir(&format!("GET {path}"), &bundle);
        let resources: Vec<Value> = bundle["entry"]
            .as_array()
            .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
            .unwrap_or_default();
        assert_eq!(bundle["total"], resources.len(), "{path}: {bundle}");
        resources
    }

    /// The HTTP API's socket address.
    pub fn http_addr(&self) -> std::net::SocketAddr {
        let addr = self.http.trim_start_matches("http://");
        addr.parse()
            .unwrap_or_else(|e| panic!("`{addr}` is not the node's HTTP address: {e}"))
    }

    /// Write `request` as it stands (whole, or cut short) on a new connection to the HTTP API,
    /// then read until the node closes the connection, waiting at most PATIENCE. Returns what
    /// came back and whether the node closed it.
    pub fn raw_http(&self, request: &str) -> (String, bool) {
        use std::io::Write;
        let mut conn =
            std::net::TcpStream::connect(self.http_addr()).unwrap_or_else(|e| self.fail(format!("connecting: {e}")));
        conn.write_all(request.as_bytes())
            .unwrap_or_else(|e| self.fail(format!("sending: {e}")));
        let until = Instant::now() + PATIENCE;
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let closed = loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            conn.set_read_timeout(Some(left)).expect("a read timeout");
            match conn.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break false;
                }
                // Reset by the node: closed too.
                Err(_) => break true,
            }
        };
        (String::from_utf8_lossy(&got).into_owned(), closed)
    }

    /// The HTTP status of `/health` (no token).
    pub fn health(&self) -> u16 {
        self.try_call("GET", "/health", None, None).map_or(0, |(s, _)| s)
    }
}

/// A device's `phr` home (a patient's device or a caregiver's), loopback networking only.
pub struct Dev {
    /// The home.
    pub home: Home,
    /// Its name, for failure messages.
    pub name: String,
    /// The network namespace its commands run in (None: this one, on loopback).
    pub netns: Option<String>,
}

impl Dev {
    /// The first device of a new record (`phr init`).
    pub fn init(patient: &str, device: &str) -> Dev {
        let d = Dev::fresh(device, None);
        d.ok(["init", "--name", patient, "--device-name", device]);
        d
    }

    /// A device without a record yet, named `name`, in network namespace `netns` if given.
    pub fn fresh(name: &str, netns: Option<&str>) -> Dev {
        Dev {
            home: Home::new(),
            name: name.to_string(),
            netns: netns.map(str::to_string),
        }
    }

    /// A command for `phr ARGS` on this device.
    pub fn command<I, S>(&self, args: I) -> (Command, String)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let mut cmd = command_in(self.netns.as_deref(), phr_bin());
        cmd.arg("--home")
            .arg(self.home.path())
            .args(&args)
            .env("PHR_PASSPHRASE", PASSPHRASE)
            .env("PHR_NET", "local")
            .env_remove("PHR_HOME")
            .env_remove("PHR_LOG")
            .env_remove("PHR_RELAY")
            .env_remove("PHR_BIND");
        if self.netns.is_some() {
            // Its LAN address, not loopback: peers reach it from other namespaces.
            cmd.env("PHR_BIND", "0.0.0.0:0");
        }
        (cmd, format!("{} (on {})", describe("phr", &args), self.name))
    }

    /// `phr ARGS` on this device, whatever comes of it.
    pub fn phr<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (cmd, line) = self.command(args);
        run(cmd, line)
    }

    /// `phr ARGS`, which must succeed.
    #[track_caller]
    pub fn ok<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.phr(args).ok()
    }

    /// `phr ARGS`, which must succeed and print JSON.
    #[track_caller]
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ok(args).json()
    }

    /// `phr ARGS` in the background.
    pub fn spawn<I, S>(&self, args: I) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (cmd, line) = self.command(args);
        Proc::spawn(cmd, line)
    }

    /// The record's id.
    pub fn record(&self) -> String {
        let status = self.json(["status", "--json"]);
        status["record"].as_str().expect("a record id").to_string()
    }

    /// This device's key.
    pub fn key(&self) -> String {
        let status = self.json(["status", "--json"]);
        status["device"].as_str().expect("a device key").to_string()
    }

    /// Pair a new device to this one's record (`phr devices add` / `phr devices join`).
    pub fn pair(&self, name: &str) -> Dev {
        self.pair_onto(Dev::fresh(name, None))
    }

    /// Pair `new` (a [`Dev::fresh`] one) to this one's record.
    pub fn pair_onto(&self, new: Dev) -> Dev {
        let name = new.name.clone();
        let name = name.as_str();
        let mut offer = self.spawn(["devices", "add"]);
        let ticket = offer.wait_line(|l| l.starts_with("PHRPAIR"));
        new.ok(["devices", "join", ticket.trim(), "--name", name]);
        offer.finish().ok();
        new
    }

    /// Share access (`phr share ARGS…`) and join with the ticket on a fresh home.
    pub fn share(&self, name: &str, args: &[&str]) -> Dev {
        let mut all = vec!["share"];
        all.extend_from_slice(args);
        let mut offer = self.spawn(all);
        let ticket = offer.wait_line(|l| l.starts_with("PHRPAIR"));
        let new = Dev::fresh(name, None);
        new.ok(["join", ticket.trim(), "--name", name]);
        offer.finish().ok();
        new
    }

    /// Connect the record to the clinic with a fresh invitation.
    pub fn connect(&self, node: &Node) {
        let out = self.phr(["clinic", "connect", &node.invite()]);
        if out.code != Some(0) {
            node.fail(format!("`{}` failed:\n{}", out.line, out.stderr));
        }
        assert!(
            out.stdout.contains(&format!("Connected to `{CLINIC}`")),
            "{}",
            out.stdout
        );
    }

    /// `phr sync --peer NODE`, which must complete with nothing refused; returns its report.
    #[track_caller]
    pub fn sync(&self, node: &Node) -> Value {
        let out = self.try_sync(node);
        if out.code != Some(0) {
            node.fail(format!("`{}` failed:\n{}", out.line, out.stderr));
        }
        let reports = out.json();
        let report = &reports[0];
        assert_eq!(report["ok"], true, "{reports}");
        for list in ["refused", "rejected_by_peer"] {
            let empty = report["report"][list].as_array().is_some_and(Vec::is_empty);
            assert!(empty, "{} sync: {list}: {reports}", self.name);
        }
        report["report"].clone()
    }

    /// `phr sync --peer NODE --json`, whatever comes of it.
    pub fn try_sync(&self, node: &Node) -> Run {
        self.sync_with(&node.sync)
    }

    /// `phr list notes --json`.
    #[track_caller]
    pub fn notes(&self) -> Vec<Value> {
        self.list("notes")
    }

    /// `phr sync --peer ADDR --json`, whatever comes of it.
    pub fn sync_with(&self, addr: &str) -> Run {
        self.phr(["sync", "--peer", addr, "--json"])
    }

    /// `phr list SECTION --json` as an array.
    #[track_caller]
    pub fn list(&self, section: &str) -> Vec<Value> {
        let v = self.json(["list", section, "--json"]);
        v.as_array().cloned().unwrap_or_else(|| panic!("not a list: {v}"))
    }
}

/// A therapy session note naming its author only by display name, as many EHRs do: the node
/// matches it to its staff list and writes it under that clinician's key.
pub fn session_note(id: &str, text: &str) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "id": id,
        "status": "current",
        "type": { "text": "Speech therapy progress note" },
        "author": [{ "type": "Practitioner", "display": "Jane Roe" }],
        "description": text,
        "context": { "period": { "start": "2024-03-02T10:00:00Z", "end": "2024-03-02T10:45:00Z" } }
    })
}
