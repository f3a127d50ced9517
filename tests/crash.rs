//! Crash safety (issue 7): real `phr` and `phr-node` processes killed with SIGKILL at random
//! points while they write, compact, sync and fetch attached files; after every kill the store
//! must open, every write that was acknowledged must be there, and nothing unacknowledged may be
//! half there (an entry is whole or absent, an edit of two fields shows both or neither). Then
//! the storage faults a patient meets: a full disk and a read-only store.
//!
//! Kill points are drawn from a seeded PRNG; every scenario prints the seed. Replay a failure
//! with `PHR_CRASH_SEED=N`; `PHR_CRASH_ITERS=N` sets the writes scenario's kill count (the
//! others scale with it). Each scenario prints one summary line (`crash: writes: 120 kills
//! survived, …`); see them with `cargo test -p phr --test crash -- --nocapture`.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::{Home, PASSPHRASE, Run, phr_bin, phr_node_bin};
use serde_json::{Value, json};

/// The longest any one command or wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);
/// Kills in the writes scenario by default (`PHR_CRASH_ITERS` overrides it); the others'
/// defaults scale with it.
const WRITES_KILLS: usize = 100;

// ---------------------------------------------------------------------------------------------
// Seeds, kill counts, pacing
// ---------------------------------------------------------------------------------------------

/// The run's seed: `PHR_CRASH_SEED`, or the clock.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let given = std::env::var("PHR_CRASH_SEED").ok().and_then(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        });
        let seed = given.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
        eprintln!("crash: seed {seed} (replay with PHR_CRASH_SEED={seed})");
        seed
    })
}

/// How many kills a scenario whose default is `default` makes in this run.
fn kills(default: usize) -> usize {
    match std::env::var("PHR_CRASH_ITERS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
    {
        Some(n) => (default * n).div_ceil(WRITES_KILLS).max(1),
        None => default,
    }
}

/// SplitMix64: small, seedable, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    /// The generator of one scenario: the run's seed mixed with the scenario's name, so each
    /// scenario replays alone.
    fn for_scenario(name: &str) -> Rng {
        let mut h = seed() ^ 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A delay between `lo` and `hi`.
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        lo + hi.saturating_sub(lo).mul_f64(self.unit())
    }
}

/// A moving average of how long a command takes when it is not killed, to aim the kills.
struct Pace(Duration);

impl Pace {
    fn update(&mut self, took: Duration) {
        self.0 = self.0.mul_f64(0.6) + took.mul_f64(0.4);
    }

    /// A kill point between `lo` and `hi` times the usual duration.
    fn pick(&self, rng: &mut Rng, lo: f64, hi: f64) -> Duration {
        rng.between(self.0.mul_f64(lo), self.0.mul_f64(hi))
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// `phr --home HOME` with the test passphrase, loopback networking only.
fn phr(home: &Path) -> Command {
    let mut cmd = Command::new(phr_bin());
    cmd.arg("--home")
        .arg(home)
        .env("PHR_PASSPHRASE", PASSPHRASE)
        .env("PHR_NET", "local")
        .env_remove("PHR_HOME")
        .env_remove("PHR_LOG")
        .env_remove("PHR_BIND")
        .stdin(Stdio::null());
    cmd
}

fn describe(cmd: &Command) -> String {
    let args: Vec<_> = cmd.get_args().map(OsStr::to_string_lossy).collect();
    format!("{} {}", cmd.get_program().to_string_lossy(), args.join(" "))
}

/// Run to completion.
fn run(mut cmd: Command) -> Run {
    let line = describe(&cmd);
    let out = cmd.output().unwrap_or_else(|e| panic!("running `{line}`: {e}"));
    Run {
        line,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `phr ARGS` on `home`, which must succeed.
#[track_caller]
fn ok(home: &Path, args: &[&str]) -> Run {
    let mut cmd = phr(home);
    cmd.args(args);
    run(cmd).ok()
}

/// `phr ARGS --json` on `home`, which must succeed; its output parsed.
#[track_caller]
fn json(home: &Path, args: &[&str]) -> Value {
    ok(home, args).json()
}

/// What became of a command that was to be killed at a given moment.
struct Outcome {
    /// It was killed by SIGKILL (rather than finishing first).
    killed: bool,
    run: Run,
    took: Duration,
}

/// Run `cmd`, SIGKILLing it `after` its start unless it finished before. Output goes to files in
/// `scratch` (never a pipe nobody reads, which would stall a process that prints a lot).
fn run_or_kill(mut cmd: Command, after: Duration, scratch: &Path) -> Outcome {
    let line = describe(&cmd);
    let (out_path, err_path) = (scratch.join("kill.out"), scratch.join("kill.err"));
    let file = |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
    cmd.stdout(file(&out_path)).stderr(file(&err_path));
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting `{line}`: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        let now = start.elapsed();
        if now >= after {
            let _ = child.kill();
            break child.wait().expect("reaping a killed child");
        }
        assert!(now < PATIENCE, "`{line}` ran for {now:?}");
        std::thread::sleep((after - now).min(Duration::from_millis(1)));
    };
    let took = start.elapsed();
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Outcome {
        killed: status.signal() == Some(libc::SIGKILL),
        run: Run {
            line,
            code: status.code(),
            stdout: read(&out_path),
            stderr: read(&err_path),
        },
        took,
    }
}

/// A long-running process (`phr serve`, `phr-node run`) whose stdout is read line by line.
struct Daemon {
    line: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    log: PathBuf,
}

impl Daemon {
    fn spawn(mut cmd: Command, log: PathBuf) -> Daemon {
        let line = describe(&cmd);
        let err = std::fs::File::create(&log).expect("a log file");
        cmd.stdout(Stdio::piped()).stderr(err);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting `{line}`: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Daemon {
            line,
            child,
            lines,
            seen: Vec::new(),
            log,
        }
    }

    /// Wait (bounded) for a line satisfying `want`.
    #[track_caller]
    fn wait_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + PATIENCE;
        loop {
            match self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "`{}` did not print the expected line; stdout:\n{}\nstderr:\n{}",
                    self.line,
                    self.seen.join("\n"),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }

    /// SIGKILL it and reap it.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `phr serve` on `home`; returns it and the address peers sync with.
fn serve(home: &Path, log: PathBuf) -> (Daemon, String) {
    let mut cmd = phr(home);
    // Its log says why a session ended, should a test's sync fail.
    cmd.arg("serve").env("PHR_LOG", "phr_engine=info");
    let mut d = Daemon::spawn(cmd, log);
    let line = d.wait_line(|l| l.contains("phr sync --peer "));
    let addr = line.rsplit(' ').next().unwrap_or_default().to_string();
    (d, addr)
}

/// Pair a new device with `first`'s record: `phr devices add` there, `devices join` on `new`.
fn pair(first: &Path, new: &Path, name: &str, log: PathBuf) {
    let mut cmd = phr(first);
    cmd.args(["devices", "add"]);
    let mut offer = Daemon::spawn(cmd, log);
    let ticket = offer.wait_line(|l| l.starts_with("PHRPAIR"));
    ok(new, &["devices", "join", ticket.trim(), "--name", name]);
    let until = Instant::now() + PATIENCE;
    while matches!(offer.child.try_wait(), Ok(None)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry["fields"][name].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Labs: an entry is whole when its value is the number in its test's name
// ---------------------------------------------------------------------------------------------

/// A FHIR bundle of `count` lab results, `Test {first}` … with value = the number.
fn lab_bundle(first: u64, count: u64) -> Value {
    let entries: Vec<Value> = (first..first + count)
        .map(|i| {
            json!({ "resource": {
                "resourceType": "Observation",
                "id": format!("obs-{i}"),
                "status": "final",
                "code": { "text": format!("Test {i}") },
                "valueQuantity": { "value": i, "unit": "mg/dL" },
                "effectiveDateTime": "2024-03-02"
            }})
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
}

/// Import `count` labs into `home` (the store must be free or served).
fn import_labs(home: &Path, scratch: &Path, first: u64, count: u64) {
    let file = scratch.join(format!("labs-{first}.json"));
    std::fs::write(&file, lab_bundle(first, count).to_string()).expect("writing the bundle");
    ok(home, &["import", "--fhir", &file.to_string_lossy()]);
}

/// `phr add labs` for lab `n`, with a kill point; returns what came of it.
fn add_lab(home: &Path, n: u64, after: Duration, scratch: &Path) -> Outcome {
    let mut cmd = phr(home);
    let (test, value) = (format!("Test {n}"), n.to_string());
    cmd.args([
        "add",
        "labs",
        "--test",
        &test,
        "--value",
        &value,
        "--date",
        "2024-01-01",
        "--json",
    ]);
    run_or_kill(cmd, after, scratch)
}

/// The labs of `home` by id, each checked whole; panics (naming `when`) on a half entry.
#[track_caller]
fn whole_labs(home: &Path, when: &str) -> BTreeMap<String, u64> {
    let list = json(home, &["list", "labs", "--json"]);
    let mut out = BTreeMap::new();
    for e in list.as_array().into_iter().flatten() {
        let n: Option<u64> = field(e, "test").strip_prefix("Test ").and_then(|n| n.parse().ok());
        let whole = n.is_some_and(|n| field(e, "value") == n.to_string()) && !field(e, "date").is_empty();
        assert!(whole, "{when}: a half-written lab entry: {e}");
        out.insert(id_of(e), n.unwrap_or_default());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// (a) Writes
// ---------------------------------------------------------------------------------------------

/// A medication as the test wrote it.
#[derive(Clone, Debug, PartialEq)]
struct Med {
    id: String,
    dose: String,
    schedule: String,
}

/// A write in flight when the process was killed.
enum Pending {
    Add {
        name: String,
        dose: String,
        schedule: String,
    },
    Edit {
        name: String,
        dose: String,
        schedule: String,
    },
    Progress {
        note: String,
        value: f64,
    },
}

/// The writes' model: what was acknowledged (or seen after a kill, which it must keep).
#[derive(Default)]
struct Written {
    meds: BTreeMap<String, Med>,
    progress: BTreeMap<String, f64>,
}

impl Written {
    /// Check the whole record against the model after a kill; the write in flight may have
    /// landed (wholly) or not at all. What landed joins the model.
    #[track_caller]
    fn check(&mut self, home: &Path, goal: &str, pending: Option<&Pending>, when: &str) {
        let rec = json(home, &["show", "--json"]);
        let mut seen = BTreeSet::new();
        for e in rec["medications"].as_array().into_iter().flatten() {
            let (name, dose, schedule) = (field(e, "name"), field(e, "dose"), field(e, "schedule"));
            let got = Med {
                id: id_of(e),
                dose: dose.to_string(),
                schedule: schedule.to_string(),
            };
            seen.insert(name.to_string());
            match (self.meds.get(name), pending) {
                (Some(want), _) if *want == got => {}
                (
                    Some(want),
                    Some(Pending::Edit {
                        name: n,
                        dose: d,
                        schedule: s,
                    }),
                ) if n == name && want.id == got.id && *d == got.dose && *s == got.schedule => {
                    self.meds.insert(name.to_string(), got);
                }
                (Some(want), _) => {
                    panic!("{when}: medication {name} is {got:?}, expected {want:?} (a lost or half-written edit): {e}")
                }
                (
                    None,
                    Some(Pending::Add {
                        name: n,
                        dose: d,
                        schedule: s,
                    }),
                ) if n == name && *d == got.dose && *s == got.schedule => {
                    self.meds.insert(name.to_string(), got);
                }
                (None, _) => panic!("{when}: an unexpected or half-written medication: {e}"),
            }
        }
        let lost: Vec<_> = self.meds.keys().filter(|n| !seen.contains(*n)).collect();
        assert!(lost.is_empty(), "{when}: acknowledged medications lost: {lost:?}");

        let goal_entry = rec["goals"]
            .as_array()
            .and_then(|g| g.iter().find(|e| e["id"] == goal))
            .unwrap_or_else(|| panic!("{when}: the goal is gone: {rec}"));
        let mut notes = BTreeSet::new();
        for p in goal_entry["fields"]["progress"].as_array().into_iter().flatten() {
            let note = p["note"].as_str().unwrap_or_default().to_string();
            let value = p["value"].as_f64();
            match (self.progress.get(&note), pending) {
                (Some(v), _) if Some(*v) == value => {}
                (None, Some(Pending::Progress { note: n, value: v })) if *n == note && Some(*v) == value => {
                    self.progress.insert(note.clone(), *v);
                }
                _ => panic!("{when}: unexpected or half-written progress: {p}"),
            }
            notes.insert(note);
        }
        let lost: Vec<_> = self.progress.keys().filter(|n| !notes.contains(*n)).collect();
        assert!(lost.is_empty(), "{when}: acknowledged progress lost: {lost:?}");
    }
}

#[test]
fn writes_killed_at_random_points_keep_every_acknowledged_write() {
    // Built (or found) before the clock starts.
    let _ = (phr_bin(), phr_node_bin());
    let start = Instant::now();
    let mut rng = Rng::for_scenario("writes");
    let target = kills(WRITES_KILLS);
    let home = Home::new();
    let (h, scratch) = (home.path(), home.scratch(""));
    ok(&h, &["init", "--name", "Mia Lopez"]);
    let goal = id_of(&json(
        &h,
        &[
            "add",
            "goals",
            "--goal",
            "Produce /s/",
            "--discipline",
            "speech",
            "--json",
        ],
    ));
    let mut model = Written::default();
    let mut pace = Pace(Duration::from_millis(150));
    let (mut killed, mut acked, mut landed) = (0, 0, 0);
    let mut n = 0u64;
    while killed < target {
        n += 1;
        let names: Vec<String> = model.meds.keys().cloned().collect();
        let pick = rng.below(10);
        let (args, pending): (Vec<String>, Pending) = if names.is_empty() || pick < 5 {
            let (name, dose, schedule) = (format!("med-{n}"), format!("{n} mg"), format!("{n} times daily"));
            let args = [
                "add",
                "medications",
                "--name",
                &name,
                "--dose",
                &dose,
                "--schedule",
                &schedule,
                "--json",
            ];
            (args.map(String::from).to_vec(), Pending::Add { name, dose, schedule })
        } else if pick < 8 {
            let name = names[rng.below(names.len() as u64) as usize].clone();
            let id = model.meds[&name].id.clone();
            let (dose, schedule) = (format!("{n}0 mg"), format!("every {n} hours"));
            let args = ["edit", "medications", &id, "--dose", &dose, "--schedule", &schedule];
            (args.map(String::from).to_vec(), Pending::Edit { name, dose, schedule })
        } else {
            let (note, value) = (format!("session {n}"), n as f64);
            let v = value.to_string();
            let args = ["goal", "progress", &goal, "--value", &v, "--note", &note];
            (args.map(String::from).to_vec(), Pending::Progress { note, value })
        };
        let mut cmd = phr(&h);
        cmd.args(&args);
        // About two writes in three run to the end (acknowledged, and they set the pace); the
        // others are killed late enough in their run to hit the write itself as often as not.
        let to_end = rng.below(3) < 2;
        let at = if to_end {
            PATIENCE
        } else {
            pace.pick(&mut rng, 0.3, 1.1)
        };
        let out = run_or_kill(cmd, at, &scratch);
        if !out.killed {
            let r = out.run.ok();
            pace.update(out.took);
            acked += 1;
            match pending {
                Pending::Add { name, dose, schedule } => {
                    let id = id_of(&r.json());
                    model.meds.insert(name, Med { id, dose, schedule });
                }
                Pending::Edit { name, dose, schedule } => {
                    let med = model.meds.get_mut(&name).expect("an edited medication");
                    (med.dose, med.schedule) = (dose, schedule);
                }
                Pending::Progress { note, value } => {
                    model.progress.insert(note, value);
                }
            }
            continue;
        }
        killed += 1;
        let before = model.meds.len() + model.progress.len();
        model.check(
            &h,
            &goal,
            Some(&pending),
            &format!("after kill {killed} (`{}`)", out.run.line),
        );
        landed += model.meds.len() + model.progress.len() - before;
    }
    model.check(&h, &goal, None, "at the end");
    println!(
        "crash: writes: {killed} kills survived, {acked} acknowledged writes checked after every kill \
         ({} medications, {} progress entries at the end; {landed} killed adds had landed whole), {:.1?}, seed {}",
        model.meds.len(),
        model.progress.len(),
        start.elapsed(),
        seed()
    );
}

// ---------------------------------------------------------------------------------------------
// (a) Compaction
// ---------------------------------------------------------------------------------------------

#[test]
fn compaction_killed_at_random_points_loses_nothing() {
    // Built (or found) before the clock starts.
    let _ = (phr_bin(), phr_node_bin());
    let start = Instant::now();
    let mut rng = Rng::for_scenario("compaction");
    let target = kills(25);
    let home = Home::new();
    let (h, scratch) = (home.path(), home.scratch(""));
    ok(&h, &["init", "--name", "Mia Lopez"]);
    // Enough entries (in changes, then folded into snapshots) that compacting takes a while.
    import_labs(&h, &scratch, 0, 1000);
    let mut model = whole_labs(&h, "after the import");
    assert_eq!(model.len(), 1000);
    let mut acked = 1000;
    let mut pace = Pace(Duration::from_millis(400));
    let (mut killed, mut compacted) = (0, 0);
    let mut n = 100_000;
    while killed < target {
        // Something new to fold in, acknowledged.
        for _ in 0..1 + rng.below(3) {
            n += 1;
            let added = add_lab(&h, n, PATIENCE, &scratch);
            model.insert(id_of(&added.run.ok().json()), n);
            acked += 1;
        }
        let mut cmd = phr(&h);
        cmd.arg("compact");
        let out = run_or_kill(cmd, pace.pick(&mut rng, 0.2, 1.2), &scratch);
        if !out.killed {
            out.run.ok();
            pace.update(out.took);
            compacted += 1;
            continue;
        }
        killed += 1;
        let got = whole_labs(&h, &format!("after compaction kill {killed}"));
        assert_eq!(got, model, "after compaction kill {killed}: the labs changed");
    }
    ok(&h, &["compact"]);
    assert_eq!(whole_labs(&h, "after a full compaction"), model);
    println!(
        "crash: compaction: {killed} kills survived ({compacted} compactions finished), {acked} acknowledged \
         entries checked after every kill, {:.1?}, seed {}",
        start.elapsed(),
        seed()
    );
}

// ---------------------------------------------------------------------------------------------
// (a) Sync between two devices
// ---------------------------------------------------------------------------------------------

#[test]
fn sync_killed_mid_transfer_resumes_and_converges() {
    // Built (or found) before the clock starts.
    let _ = (phr_bin(), phr_node_bin());
    let start = Instant::now();
    let mut rng = Rng::for_scenario("sync");
    let target = kills(30);
    let (phone, laptop) = (Home::new(), Home::new());
    let (a, b, scratch) = (phone.path(), laptop.path(), laptop.scratch(""));
    ok(&a, &["init", "--name", "Mia Lopez", "--device-name", "phone"]);
    pair(&a, &b, "laptop", phone.scratch("pair.log"));
    // The laptop is far behind: the phone gets 600 labs it has to fetch.
    import_labs(&a, &phone.scratch(""), 0, 400);
    let mut on_phone: BTreeSet<u64> = (0..400).collect();
    let mut on_laptop: BTreeSet<u64> = BTreeSet::new();
    let (mut served, mut addr) = serve(&a, phone.scratch("serve.log"));
    let mut pace = Pace(Duration::from_millis(800));
    let (mut killed, mut serve_kills, mut synced, mut acked) = (0, 0, 0, 400);
    let mut n = 100_000;
    while killed + serve_kills < target {
        // Writes on each side, acknowledged: the phone's go through its `phr serve`, a batch
        // of 40 labs (so every sync has something to transfer) and one lab.
        import_labs(&a, &phone.scratch(""), n + 1, 40);
        on_phone.extend(n + 1..n + 41);
        acked += 40;
        n += 41;
        add_lab(&a, n, PATIENCE, &scratch).run.ok();
        on_phone.insert(n);
        n += 1;
        add_lab(&b, n, PATIENCE, &scratch).run.ok();
        on_laptop.insert(n);
        acked += 2;
        let mut cmd = phr(&b);
        cmd.args(["sync", "--peer", &addr, "--json"]);
        let kill_serve = rng.below(6) == 0;
        let at = pace.pick(&mut rng, 0.1, 1.1);
        let out = if kill_serve && killed + serve_kills + 2 <= target {
            // Kill the serving phone instead, mid-session.
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting phr sync");
            // Both devices go down at once, mid-session (the laptop would otherwise wait for
            // the dead connection to time out).
            std::thread::sleep(at);
            served.kill();
            serve_kills += 1;
            if matches!(child.try_wait(), Ok(None)) {
                killed += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
            // Everything the phone acknowledged is there after the kill, whole.
            let got: BTreeSet<u64> = whole_labs(&a, "after killing phr serve").into_values().collect();
            let lost: Vec<_> = on_phone.difference(&got).collect();
            assert!(
                lost.is_empty(),
                "phone: acknowledged labs lost with phr serve: {lost:?}"
            );
            (served, addr) = serve(&a, phone.scratch("serve.log"));
            None
        } else {
            Some(run_or_kill(cmd, at, &scratch))
        };
        match out {
            Some(out) if out.killed => killed += 1,
            Some(out) => {
                let r = out.run.ok();
                assert_eq!(r.json()[0]["ok"], true, "{}", r.stdout);
                pace.update(out.took);
                synced += 1;
            }
            None => {}
        }
        // The laptop's store opens, holds what it acknowledged, and only whole entries.
        let got: BTreeSet<u64> = whole_labs(&b, &format!("laptop after kill {killed}"))
            .into_values()
            .collect();
        let lost: Vec<_> = on_laptop.difference(&got).collect();
        assert!(lost.is_empty(), "laptop: acknowledged labs lost: {lost:?}");
        let foreign: Vec<_> = got.difference(&on_laptop).filter(|x| !on_phone.contains(x)).collect();
        assert!(foreign.is_empty(), "laptop: labs nobody wrote: {foreign:?}");
    }
    // A full sync afterwards converges both ways.
    let r = ok(&b, &["sync", "--peer", &addr, "--json"]);
    assert_eq!(r.json()[0]["ok"], true, "{}", r.stdout);
    let all: BTreeSet<u64> = on_phone.union(&on_laptop).copied().collect();
    let (pa, pb) = (whole_labs(&a, "phone at the end"), whole_labs(&b, "laptop at the end"));
    assert_eq!(pa, pb, "the devices did not converge");
    assert_eq!(pa.into_values().collect::<BTreeSet<_>>(), all);
    // Nothing is left to fetch (each sync itself is logged in the audit section).
    let again = ok(&b, &["sync", "--peer", &addr, "--json"]).json();
    let received = again[0]["report"]["received"].as_object().cloned().unwrap_or_default();
    assert!(received.keys().all(|k| k == "audit"), "{again:#}");
    served.kill();
    println!(
        "crash: sync: {} kills survived ({killed} of `phr sync` mid-transfer, {serve_kills} of the serving \
         `phr serve`; {synced} syncs finished), {acked} acknowledged writes checked, converged, {:.1?}, seed {}",
        killed + serve_kills,
        start.elapsed(),
        seed()
    );
}

// ---------------------------------------------------------------------------------------------
// (a) The clinic's node
// ---------------------------------------------------------------------------------------------

const CLINIC: &str = "Bright Steps Therapy";
const FILLER: &str = "The child practised /s/ in initial position with picture cards.";

/// `phr-node --data DIR ARGS`.
fn node_cmd(data: &Path) -> Command {
    let mut cmd = Command::new(phr_node_bin());
    cmd.arg("--data")
        .arg(data)
        .env("PHR_PASSPHRASE", PASSPHRASE)
        .env("NO_COLOR", "1")
        .env_remove("PHR_NODE_DATA")
        .env_remove("PHR_NET")
        .stdin(Stdio::null());
    cmd
}

/// `phr-node run` on loopback; returns it, its sync address and its HTTP base.
fn start_node(data: &Path, log: PathBuf) -> (Daemon, String, String) {
    let mut cmd = node_cmd(data);
    cmd.args([
        "run",
        "--net",
        "local",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]);
    let mut d = Daemon::spawn(cmd, log);
    let ready = d.wait_line(|l| l.starts_with("phr-node ready:"));
    let after = |word: &str| {
        let mut words = ready.split_whitespace().skip_while(|w| *w != word);
        words.nth(1).unwrap_or_default().to_string()
    };
    let (sync, http) = (after("sync"), after("http"));
    (d, sync, http)
}

fn note(i: u64) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "id": format!("crash-{i}"),
        "status": "current",
        "type": { "text": "Speech therapy progress note" },
        "author": [{ "type": "Practitioner", "display": "Jane Roe" }],
        "description": format!("crash-note-{i}: {FILLER}"),
        "context": { "period": { "start": "2024-03-02T10:00:00Z", "end": "2024-03-02T10:45:00Z" } }
    })
}

/// The note numbers in `text` (JSON of notes), each checked whole.
#[track_caller]
fn whole_notes(entries: &[Value], when: &str) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for e in entries {
        let text = e.to_string();
        let Some(at) = text.find("crash-note-") else { continue };
        let rest = &text[at + "crash-note-".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let i: u64 = digits.parse().unwrap_or_else(|_| panic!("{when}: a garbled note: {e}"));
        assert!(
            text.contains(&format!("crash-note-{i}: {FILLER}")),
            "{when}: a half-written note: {e}"
        );
        out.insert(i);
    }
    out
}

#[test]
fn phr_node_killed_while_the_ehr_pushes_keeps_every_acknowledged_note() {
    // Built (or found) before the clock starts.
    let _ = (phr_bin(), phr_node_bin());
    let start = Instant::now();
    let mut rng = Rng::for_scenario("node");
    let target = kills(20);
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let data = data_dir.path().join("clinic");
    let log = data_dir.path().join("node.log");
    let init = run({
        let mut c = node_cmd(&data);
        c.args(["init", "--name", CLINIC]);
        c
    })
    .ok();
    assert!(init.stdout.contains(CLINIC), "{}", init.stdout);
    let token = std::fs::read_to_string(data.join("api-token")).expect("the API token");
    let auth = format!("Bearer {}", token.trim());
    let (mut node, mut sync_addr, mut http) = start_node(&data, log.clone());
    let staff = run({
        let mut c = node_cmd(&data);
        c.args(["staff", "add", "--name", "Jane Roe", "--role", "SLP"]);
        c
    });
    assert_eq!(staff.code, Some(0), "{}", staff.stderr);
    let phone = Home::new();
    let (p, scratch) = (phone.path(), phone.scratch(""));
    ok(&p, &["init", "--name", "Mia Lopez", "--device-name", "phone"]);
    let invite = run({
        let mut c = node_cmd(&data);
        c.arg("invite");
        c
    })
    .ok();
    let ticket = invite.stdout.lines().nth(1).unwrap_or_default().trim().to_string();
    ok(&p, &["clinic", "connect", &ticket]);
    let patient = json(&p, &["status", "--json"])["record"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .proxy(None)
        .build()
        .into();
    let acked: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let mut next = 0u64;
    let mut pace = Pace(Duration::from_millis(1500));
    let (mut killed, mut sync_kills, mut refused) = (0, 0, 0);
    while killed < target {
        // The EHR pushes notes one after another, recording each the node acknowledged.
        let url = format!("{http}/v1/patients/{patient}/notes");
        let pusher = {
            let (agent, auth, acked) = (agent.clone(), auth.clone(), acked.clone());
            let first = next;
            std::thread::spawn(move || {
                let mut i = first;
                let mut other = 0;
                loop {
                    let Ok(mut res) = agent.post(&url).header("Authorization", &auth).send_json(note(i)) else {
                        return (i, other); // the node is gone
                    };
                    let status = res.status().as_u16();
                    let _ = res.body_mut().read_to_string();
                    if (200..300).contains(&status) {
                        acked.lock().unwrap_or_else(PoisonError::into_inner).insert(i);
                    } else {
                        other += 1;
                    }
                    i += 1;
                }
            })
        };
        std::thread::sleep(rng.between(Duration::from_millis(50), Duration::from_millis(600)));
        node.kill();
        killed += 1;
        let (last, others) = pusher.join().expect("the pusher");
        next = last + 1;
        refused += others;
        (node, sync_addr, http) = start_node(&data, log.clone());
        // The restarted node still holds every note it acknowledged: the phone fetches them
        // (its first sync is killed half the time), and they arrive whole.
        if rng.below(2) == 0 {
            let mut cmd = phr(&p);
            cmd.args(["sync", "--peer", &sync_addr, "--json"]);
            let out = run_or_kill(cmd, pace.pick(&mut rng, 0.1, 1.0), &scratch);
            if out.killed {
                sync_kills += 1;
            } else {
                pace.update(out.took);
            }
        }
        let t = Instant::now();
        let r = ok(&p, &["sync", "--peer", &sync_addr, "--json"]);
        pace.update(t.elapsed());
        assert_eq!(r.json()[0]["ok"], true, "{}", r.stdout);
        let on_phone = whole_notes(
            json(&p, &["list", "notes", "--json"])
                .as_array()
                .map_or(&[][..], Vec::as_slice),
            &format!("phone after node kill {killed}"),
        );
        let want = acked.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let lost: Vec<_> = want.difference(&on_phone).collect();
        assert!(
            lost.is_empty(),
            "after kill {killed}: acknowledged notes lost by phr-node: {lost:?}\nnode log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    // Every acknowledged note reaches the phone.
    let r = ok(&p, &["sync", "--peer", &sync_addr, "--json"]);
    assert_eq!(r.json()[0]["ok"], true, "{}", r.stdout);
    let on_phone = whole_notes(
        json(&p, &["list", "notes", "--json"])
            .as_array()
            .map_or(&[][..], Vec::as_slice),
        "phone at the end",
    );
    let want = acked.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let lost: Vec<_> = want.difference(&on_phone).collect();
    assert!(lost.is_empty(), "acknowledged notes never reached the phone: {lost:?}");
    assert_eq!(refused, 0, "the node refused pushes it should have taken");
    node.kill();
    println!(
        "crash: node: {} kills survived ({killed} of `phr-node run` during HTTP pushes, {sync_kills} of the \
         phone's `phr sync`), {} acknowledged pushes checked on the node after every kill and on the phone, {:.1?}, seed {}",
        killed + sync_kills,
        want.len(),
        start.elapsed(),
        seed()
    );
}

// ---------------------------------------------------------------------------------------------
// (a) Attachment transfers
// ---------------------------------------------------------------------------------------------

/// `size` pseudo-random bytes from `rng`.
fn random_bytes(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(size);
    out
}

#[test]
fn attachment_fetch_killed_midway_resumes_byte_identical() {
    // Built (or found) before the clock starts.
    let _ = (phr_bin(), phr_node_bin());
    let start = Instant::now();
    let mut rng = Rng::for_scenario("attachments");
    let target = kills(20);
    let (phone, laptop) = (Home::new(), Home::new());
    let (a, b, scratch) = (phone.path(), laptop.path(), laptop.scratch(""));
    ok(&a, &["init", "--name", "Mia Lopez", "--device-name", "phone"]);
    pair(&a, &b, "laptop", phone.scratch("pair.log"));
    let serve_log = phone.scratch("serve.log");
    let (served, addr) = serve(&a, serve_log.clone());
    let mut pace = Pace(Duration::from_millis(1500));
    let (mut killed, mut partial, mut files) = (0, 0, 0);
    let mut bytes_total = 0;
    while killed < target {
        // A multi-megabyte file attached on the phone (through its `phr serve`): acknowledged.
        files += 1;
        let size = 3 * 1024 * 1024 + rng.below(1024 * 1024) as usize;
        let content = random_bytes(&mut rng, size);
        bytes_total += size;
        let file = phone.scratch(&format!("scan-{files}.pdf"));
        std::fs::write(&file, &content).expect("writing the file");
        let title = format!("Scan {files}");
        let added = json(&a, &["attach", &file.to_string_lossy(), "--title", &title, "--json"]);
        let id = id_of(&added);
        // The laptop's sync (record, then the file) is killed until one gets through.
        let per_file = (target - killed).min(3 + rng.below(4) as usize);
        let mut kills_here = 0;
        loop {
            let mut cmd = phr(&b);
            cmd.args(["sync", "--peer", &addr, "--json"]);
            let (lo, hi) = if kills_here < per_file {
                (0.1, 1.0)
            } else {
                (50.0, 50.0)
            };
            let out = run_or_kill(cmd, pace.pick(&mut rng, lo, hi), &scratch);
            if !out.killed {
                // A failure here is the phone's to explain: show what its `phr serve` logged.
                let served_log = || std::fs::read_to_string(&serve_log).unwrap_or_default();
                let r = out.run;
                assert!(
                    r.code == Some(0),
                    "`{}` failed:\n{}\nthe phone's serve log:\n{}",
                    r.line,
                    r.stderr,
                    served_log()
                );
                assert_eq!(
                    r.json()[0]["ok"],
                    true,
                    "{}\nthe phone's serve log:\n{}",
                    r.stdout,
                    served_log()
                );
                pace.update(out.took);
                break;
            }
            killed += 1;
            kills_here += 1;
            // The laptop's store opens; the file is held whole, partly, or not at all, and
            // opening it either gives exactly the file or says it is not here yet.
            let list = json(&b, &["attachments", "list", "--json"]);
            let held = list
                .as_array()
                .and_then(|l| l.iter().find(|e| e["id"] == id.as_str()))
                .map(|e| e["held"].as_str().unwrap_or_default().to_string());
            if held
                .as_deref()
                .is_some_and(|h| h != "here" && h != "no" && h != "missing")
            {
                partial += 1;
            }
            let out = laptop.scratch(&format!("open-{files}-{kills_here}"));
            let mut cmd = phr(&b);
            cmd.args(["open", &id, "--out", &out.to_string_lossy()]);
            let opened = run(cmd);
            if opened.code == Some(0) {
                assert!(
                    std::fs::read(&out).ok() == Some(content.clone()),
                    "an opened file differs"
                );
            } else {
                opened.refused();
                assert!(!out.exists(), "a refused `phr open` left a file behind");
            }
        }
        // The sync resumed and finished: the laptop opens the very bytes.
        let out = laptop.scratch(&format!("final-{files}"));
        ok(&b, &["open", &id, "--out", &out.to_string_lossy()]);
        let got = std::fs::read(&out).expect("the opened file");
        assert!(
            got == content,
            "scan {files}: the laptop's copy differs ({} bytes)",
            got.len()
        );
        let _ = std::fs::remove_file(&out);
    }
    served.kill();
    println!(
        "crash: attachments: {killed} kills survived during transfers of {files} files ({:.1} MiB; {partial} \
         kills left a file partly fetched), every acknowledged file opened byte-identical, {:.1?}, seed {}",
        bytes_total as f64 / 1048576.0,
        start.elapsed(),
        seed()
    );
}

// ---------------------------------------------------------------------------------------------
// (b) Disk full and read-only stores
// ---------------------------------------------------------------------------------------------

/// `cmd` with its file size capped at `limit` bytes (RLIMIT_FSIZE) and SIGXFSZ ignored, so a
/// write past it fails with EFBIG, as on a full disk, without root.
fn capped(cmd: &mut Command, limit: u64) {
    // SAFETY: runs in the forked child before exec; setrlimit and signal are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

#[test]
fn a_full_disk_is_reported_clearly_and_nothing_is_half_written() {
    let home = Home::new();
    let (h, scratch) = (home.path(), home.scratch(""));
    ok(&h, &["init", "--name", "Mia Lopez"]);
    for i in 0..5 {
        add_lab(&h, i, PATIENCE, &scratch).run.ok();
    }
    let before = json(&h, &["show", "--json"]);
    let size = std::fs::metadata(home.store()).expect("the store").len();
    // Writes that need the store to grow: one entry, and a large import.
    let file = scratch.join("big.json");
    std::fs::write(&file, lab_bundle(1000, 3000).to_string()).expect("the bundle");
    let attempts: [&[&str]; 2] = [
        &["import", "--fhir", &file.to_string_lossy()],
        &[
            "add",
            "labs",
            "--test",
            "Test 77",
            "--value",
            "77",
            "--date",
            "2024-01-01",
        ],
    ];
    for args in attempts {
        let mut cmd = phr(&h);
        cmd.args(args);
        capped(&mut cmd, size);
        let out = run(cmd);
        if out.code == Some(0) {
            // It fit in the file's free pages: nothing to check for this one.
            let after = json(&h, &["show", "--json"]);
            assert_ne!(after, before, "`{}` succeeded without writing", out.line);
            continue;
        }
        let msg = out.refused();
        assert!(msg.contains("the disk is full"), "not a clear message: {msg}");
        assert!(!msg.contains("panicked"), "{msg}");
        // The store opens without the cap and holds exactly what it held before.
        let after = json(&h, &["show", "--json"]);
        assert_eq!(after, before, "a refused write changed the record");
        println!("crash: disk full: `{}` → {}", args[0], msg.trim());
    }
    // And it takes writes again once there is room.
    add_lab(&h, 99, PATIENCE, &scratch).run.ok();
}

#[test]
fn a_read_only_store_is_reported_clearly_and_left_unchanged() {
    // The engine's mapping, whatever this machine allows.
    for (kind, says) in [
        (std::io::ErrorKind::ReadOnlyFilesystem, "read-only"),
        (std::io::ErrorKind::PermissionDenied, "read-only"),
        (std::io::ErrorKind::StorageFull, "the disk is full"),
        (std::io::ErrorKind::FileTooLarge, "the disk is full"),
    ] {
        let io = || std::io::Error::new(kind, "test");
        let direct = phr::Error::from(io()).to_string();
        let redb = phr::db_error::db_err(redb::StorageError::Io(io())).to_string();
        assert!(direct.contains(says), "{kind:?}: {direct}");
        assert!(redb.contains(says), "{kind:?} from redb: {redb}");
    }
    // A real read-only mount, where the machine allows a private mount namespace (tests run as
    // root, for whom file modes do not block writes).
    let home = Home::new();
    let (h, scratch) = (home.path(), home.scratch(""));
    ok(&h, &["init", "--name", "Mia Lopez"]);
    add_lab(&h, 1, PATIENCE, &scratch).run.ok();
    let before = home.store_bytes();
    let mut cmd = Command::new("unshare");
    let phr_line = format!(
        "mount --bind '{h}' '{h}' && mount -o remount,bind,ro '{h}' && exec '{bin}' --home '{h}' add labs --test 'Test 2' --value 2 --date 2024-01-01",
        h = h.display(),
        bin = phr_bin().display()
    );
    cmd.args(["--mount", "sh", "-c", &phr_line])
        .env("PHR_PASSPHRASE", PASSPHRASE)
        .env_remove("PHR_HOME")
        .stdin(Stdio::null());
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            println!("crash: read-only store: no `unshare` here ({e}); checked the error mapping only");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.starts_with("error: ") || stderr.contains("mount") && !stderr.contains("read-only") {
        println!(
            "crash: read-only store: no private read-only mount here ({}); checked the error mapping only",
            stderr.trim()
        );
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("read-only"), "not a clear message: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(home.store_bytes() == before, "a read-only store was changed");
    assert_eq!(whole_labs(&h, "after the read-only attempt").len(), 1);
    println!("crash: read-only store: {}", stderr.trim());
}
