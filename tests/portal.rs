//! The patient portal (`phr portal`), as a family and as an attacker meet it: a real `phr`
//! process serving a real home on loopback, a real browser (Debian's Chromium driven by
//! tests/browser/portal.mjs) and a plain HTTP client sending what no browser would.

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Home;
use common::http::{self, Reply};
use common::processes::{Dev, Node, Proc, run, spawn_phr};

/// A running `phr portal` and the one-time sign-in link it printed.
struct Portal {
    _proc: Proc,
    login: String,
    addr: SocketAddr,
}

/// A signed-in browser as the server knows it: its cookie and its forms' token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Portal {
    /// `phr portal` on `home`, on a free loopback port.
    fn start(home: &Home) -> Portal {
        Portal::on(spawn_phr(home, &["portal", "--listen", "127.0.0.1:0"]))
    }

    /// The portal of an already started process, from the link it prints.
    fn on(mut proc: Proc) -> Portal {
        let line = proc.wait_line(|l| l.starts_with("Portal: open "));
        Portal::from_line(proc, &line)
    }

    /// The portal of a process that printed `line` ("Portal: open LINK …").
    fn from_line(proc: Proc, line: &str) -> Portal {
        let login = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no link in `{line}`"))
            .to_string();
        let addr = login
            .trim_start_matches("http://")
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {login}"));
        Portal {
            _proc: proc,
            login,
            addr,
        }
    }

    /// The path of the sign-in link.
    fn login_path(&self) -> String {
        self.login
            .trim_start_matches(&format!("http://{}", self.addr))
            .to_string()
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    /// GET `path` as the portal's own pages would, with `cookie` if given.
    fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let host = self.host();
        let mut headers = vec![("Host", host.as_str())];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        http::send(self.addr, "GET", path, &headers, None)
    }

    /// POST a form to `path` with `extra` headers (the browser's own, or a forger's).
    fn post(&self, path: &str, cookie: &str, form: &str, extra: &[(&str, &str)]) -> Reply {
        let host = self.host();
        let mut headers = vec![
            ("Host", host.as_str()),
            ("Cookie", cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        headers.extend_from_slice(extra);
        http::send(self.addr, "POST", path, &headers, Some(form))
    }

    /// The headers a browser sends with a form from the portal's own page.
    fn same_origin(&self) -> [(&'static str, String); 2] {
        [
            ("Sec-Fetch-Site", "same-origin".into()),
            ("Origin", format!("http://{}", self.addr)),
        ]
    }

    /// Sign in with the link; returns the session.
    fn sign_in(&self) -> Session {
        let reply = self.get(&self.login_path(), None);
        assert_eq!(reply.status, 303, "signing in: {reply:?}");
        let set = reply.header("set-cookie").expect("a session cookie");
        for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(part), "the cookie lacks {part}: {set}");
        }
        let cookie = set.split(';').next().expect("name=value").to_string();
        let home = self.get("/", Some(&cookie));
        assert_eq!(home.status, 200, "{home:?}");
        let csrf = home
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a form token on the home page")
            .to_string();
        Session { cookie, csrf }
    }
}

/// POST with the same-origin headers a browser sends.
/// The id of the first entry a section's list page links to.
fn first_entry<'a>(list: &'a str, section: &str) -> &'a str {
    list.split(&format!("href=\"/s/{section}/"))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no {section} entry is listed: {list}"))
}

fn post_as_browser(portal: &Portal, path: &str, s: &Session, form: &str) -> Reply {
    let [(a, av), (b, bv)] = portal.same_origin();
    portal.post(path, &s.cookie, form, &[(a, &av), (b, &bv)])
}

/// A record with something in every section the portal lists, and a `<script>` in a message.
fn full_record() -> Home {
    let home = Home::init("Mia Lopez");
    let adds: &[(&str, &[&str])] = &[
        (
            "medications",
            &["--name", "Amoxicillin", "--dose", "250 mg", "--schedule", "twice daily"],
        ),
        (
            "notes",
            &[
                "--discipline",
                "speech",
                "--clinician",
                "J. Ames",
                "--date",
                "2024-03-02",
                "--minutes",
                "45",
                "--subjective",
                "Tired after school",
            ],
        ),
        (
            "goals",
            &[
                "--goal",
                "Produce /s/ in single words",
                "--discipline",
                "speech",
                "--baseline",
                "20",
                "--target",
                "80",
                "--unit",
                "% correct",
                "--milestone",
                "10 words",
            ],
        ),
        (
            "labs",
            &[
                "--test",
                "Ferritin",
                "--value",
                "30",
                "--unit",
                "ng/mL",
                "--date",
                "2024-02-01",
            ],
        ),
        ("conditions", &["--name", "Speech sound disorder", "--code", "F80.0"]),
        ("allergies", &["--substance", "Penicillin", "--severity", "moderate"]),
        (
            "plans",
            &["--title", "Speech therapy", "--frequency", "2x weekly, 45 min"],
        ),
        (
            "documents",
            &["--title", "IEP 2024", "--kind", "iep", "--date", "2024-01-15"],
        ),
        ("insurance", &["--payer", "Blue Cross", "--member_id", "X123"]),
        (
            "appointments",
            &[
                "--reason",
                "Speech evaluation",
                "--start",
                "2099-05-02 14:30",
                "--minutes",
                "60",
                "--status",
                "confirmed",
            ],
        ),
        (
            "messages",
            &[
                "--thread",
                "Homework <script>window.__phrInjected=true</script>",
                "--body",
                "We practised /s/ <script>window.__phrInjected=true</script>",
                "--from",
                "Ana",
            ],
        ),
        (
            "caregiver_log",
            &[
                "--date",
                "2024-03-03",
                "--text",
                "Practised /s/ for 10 minutes",
                "--category",
                "practice",
            ],
        ),
        (
            "forms",
            &[
                "--title",
                "Intake",
                "--question",
                "text=Any allergies?; id=allergies; kind=yesno",
            ],
        ),
    ];
    for (section, fields) in adds {
        home.add(section, fields);
    }
    home.ok([
        "edit",
        "profile",
        "patient",
        "--language",
        "Spanish",
        "--guardian",
        "name=Ana Lopez; relationship=mother",
    ]);
    home
}

/// tests/browser, with its npm packages installed (`npm ci` from the committed lock file), and
/// Chromium; a missing piece fails the test naming what to install.
fn browser_kit() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("PHR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's `chromium` package (apt-get install chromium), as .ci/run does"
    );
    if !dir.join("node_modules/playwright-core").exists() || !dir.join("node_modules/axe-core").exists() {
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir);
        let out = run(npm, "npm ci (in tests/browser)".into());
        assert_eq!(
            out.code,
            Some(0),
            "`npm ci` in tests/browser failed (Node.js 20 and npm are needed):\n{}",
            out.stderr
        );
    }
    dir
}

#[test]
fn a_family_uses_the_portal_in_a_real_browser() {
    let kit = browser_kit();
    let full = full_record();
    let empty = Home::init("Empty Record");
    let (p_full, p_empty) = (Portal::start(&full), Portal::start(&empty));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/portal-screenshots");
    let mut node = Command::new("node");
    node.arg(kit.join("portal.mjs"))
        .arg(&p_full.login)
        .arg(&p_empty.login)
        .arg(&shots)
        .current_dir(&kit);
    let out = run(node, "node tests/browser/portal.mjs".into());
    assert_eq!(
        out.code,
        Some(0),
        "the browser journey failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    // What the browser saved is in the record, as the CLI reads it (through the serving process).
    let meds = full.json(["list", "medications", "--json"]);
    assert!(meds.to_string().contains("Ibuprofen"), "{meds}");
    let notes = full.json(["list", "notes", "--json"]);
    let note = &notes[0];
    assert_eq!(
        note["fields"]["subjective"], "Tired after school",
        "the original is kept: {note}"
    );
    assert_eq!(
        note["fields"]["amendments"][0]["text"], "Arrived late; shortened session",
        "{note}"
    );
    let allergies = full.json(["list", "allergies", "--json"]).to_string();
    assert!(allergies.contains("Peanuts"), "the keyboard-only entry: {allergies}");
    let log = full.json(["list", "caregiver_log", "--json"]).to_string();
    assert!(log.contains("Slept well"), "the entry saved with JavaScript off: {log}");
}

/// A phone serving its portal, and its paired laptop serving (`laptop_args`, with `--peer` the
/// phone added) in live sync with it: the phone, its portal, the laptop, and the laptop's
/// serving process with the portal line it printed, if it serves one.
fn phone_and_laptop(laptop_args: &[&str]) -> (Dev, Portal, Dev, (Proc, Option<String>)) {
    let phone = Dev::init("Mia Lopez", "phone");
    let laptop = phone.pair("laptop");
    let mut serving = phone.spawn(["portal", "--listen", "127.0.0.1:0"]);
    let reach = serving.wait_line(|l| l.contains("phr sync --peer"));
    let peer = reach.rsplit(' ').next().expect("the phone's address").to_string();
    let portal = Portal::on(serving);
    let mut args = laptop_args.to_vec();
    args.extend(["--peer", &peer]);
    let mut laptop_serving = laptop.spawn(args);
    let line = laptop_args
        .contains(&"--portal")
        .then(|| laptop_serving.wait_line(|l| l.starts_with("Portal: open ")));
    laptop_serving.wait_line(|l| l.contains("connected, live"));
    (phone, portal, laptop, (laptop_serving, line))
}

#[test]
fn a_change_made_on_another_device_shows_up_in_an_open_page_without_a_reload() {
    let kit = browser_kit();
    // The phone serves the portal; the laptop serves too, in live sync with it.
    let (_phone, portal, laptop, _laptop_serving) = phone_and_laptop(&["serve"]);

    let mut node = Command::new("node");
    node.arg(kit.join("live.mjs"))
        .arg(&portal.login)
        .arg("Cetirizine")
        .current_dir(&kit);
    let mut browser = Proc::spawn(node, "node tests/browser/live.mjs".into());
    browser.wait_line(|l| l == "OPEN");
    // Added on the laptop (through its serving process), while the phone's page stays open.
    laptop.ok(["add", "medications", "--name", "Cetirizine", "--dose", "5 mg"]);
    let out = browser.finish();
    assert_eq!(
        out.code,
        Some(0),
        "the live journey failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn an_open_live_page_ends_with_the_portal_and_does_not_hold_it_up() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    let session = portal.sign_in();
    // A page's event stream: answered at once, then open until the portal stops.
    let mut stream = TcpStream::connect(portal.addr).expect("connecting");
    stream
        .set_read_timeout(Some(common::processes::PATIENCE))
        .expect("a read timeout");
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\r\n",
        portal.host(),
        session.cookie
    );
    stream.write_all(request.as_bytes()).expect("sending");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the stream's headers");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");

    let Portal { _proc: serving, .. } = portal;
    let stopped = serving.signal("INT").ok();
    assert!(stopped.stdout.contains("Stopping"), "{}", stopped.stdout);
    // It stopped (cleanly, within the patience of `signal`) with the stream open, which ended.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("the stream ends");
}

#[test]
fn a_wrong_host_header_is_refused_and_spends_nothing() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    for host in [
        "evil.example",
        "evil.example:80",
        &format!("attacker.test:{}", portal.addr.port()),
    ] {
        let reply = http::send(portal.addr, "GET", &portal.login_path(), &[("Host", host)], None);
        assert_eq!(reply.status, 421, "Host {host}: {reply:?}");
        assert!(reply.header("set-cookie").is_none());
    }
    let no_host = http::send(portal.addr, "GET", "/", &[], None);
    assert_eq!(no_host.status, 421, "{no_host:?}");
    // The link still works from the right host: nothing was spent.
    portal.sign_in();
}

#[test]
fn a_spent_or_forged_sign_in_link_is_refused() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    let forged = format!("/login/{}", "ab".repeat(32));
    for path in [forged.as_str(), "/login/", "/login/x"] {
        let reply = portal.get(path, None);
        assert!(matches!(reply.status, 403 | 404), "{path}: {reply:?}");
        assert!(reply.header("set-cookie").is_none(), "{path}: {reply:?}");
    }
    portal.sign_in();
    let again = portal.get(&portal.login_path(), None);
    assert_eq!(again.status, 403, "the link works once: {again:?}");
    assert!(again.body.contains("already used"), "{}", again.body);
}

#[test]
fn pages_and_forms_need_a_session() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    let name = format!("phr-session-{}", portal.addr.port());
    for cookie in [
        None,
        Some(format!("{name}={}", "0".repeat(64))),
        Some("other=1".to_string()),
    ] {
        for path in [
            "/",
            "/s/medications",
            "/s/medications/new",
            "/s/profile/patient",
            "/events",
        ] {
            let reply = portal.get(path, cookie.as_deref());
            assert_eq!(reply.status, 401, "{path} with {cookie:?}: {reply:?}");
            assert!(
                !reply.body.contains("Mia Lopez"),
                "{path} shows the record without a session"
            );
        }
    }
    let [(a, av), (b, bv)] = portal.same_origin();
    let forged = portal.post(
        "/s/medications/new",
        &format!("{name}=nope"),
        "name=Forged",
        &[(a, &av), (b, &bv)],
    );
    assert_eq!(forged.status, 401, "{forged:?}");
    assert!(
        !home
            .json(["list", "medications", "--json"])
            .to_string()
            .contains("Forged")
    );
}

#[test]
fn a_cross_site_post_is_refused_and_changes_nothing() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    let s = portal.sign_in();
    let form = format!("csrf={}&name=Forged", s.csrf);
    let attempts: [&[(&str, &str)]; 5] = [
        &[("Sec-Fetch-Site", "cross-site"), ("Origin", "http://evil.example")],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Origin", "http://evil.example")],
        &[("Origin", "null")],
        &[],
    ];
    for headers in attempts {
        let reply = portal.post("/s/medications/new", &s.cookie, &form, headers);
        assert_eq!(reply.status, 403, "{headers:?}: {reply:?}");
    }
    // Same origin but without the form's token: refused too.
    let no_token = post_as_browser(&portal, "/s/medications/new", &s, "name=Forged");
    assert_eq!(no_token.status, 403, "{no_token:?}");
    let wrong_token = post_as_browser(
        &portal,
        "/s/medications/new",
        &s,
        &format!("csrf={}&name=Forged", "0".repeat(64)),
    );
    assert_eq!(wrong_token.status, 403, "{wrong_token:?}");
    assert!(
        !home
            .json(["list", "medications", "--json"])
            .to_string()
            .contains("Forged")
    );
    // A form too large to be one is refused before it is read.
    let huge = format!("csrf={}&name={}", s.csrf, "x".repeat(300 * 1024));
    let too_large = post_as_browser(&portal, "/s/medications/new", &s, &huge);
    assert_eq!(too_large.status, 413, "{}", too_large.status);
    // The browser's own form is saved.
    let ok = post_as_browser(
        &portal,
        "/s/medications/new",
        &s,
        &format!("csrf={}&name=Ibuprofen&dose=100+mg", s.csrf),
    );
    assert_eq!(ok.status, 303, "{ok:?}");
    assert!(
        home.json(["list", "medications", "--json"])
            .to_string()
            .contains("Ibuprofen")
    );
}

#[test]
fn a_cookie_replayed_after_signing_out_is_refused() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    let s = portal.sign_in();
    let out = post_as_browser(&portal, "/logout", &s, &format!("csrf={}", s.csrf));
    assert_eq!(out.status, 303, "{out:?}");
    assert!(
        out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")),
        "{out:?}"
    );
    let replayed = portal.get("/", Some(&s.cookie));
    assert_eq!(replayed.status, 401, "{replayed:?}");
    let post = post_as_browser(&portal, "/s/medications/new", &s, &format!("csrf={}&name=Late", s.csrf));
    assert_eq!(post.status, 401, "{post:?}");
}

#[test]
fn other_peoples_script_renders_as_text_and_every_page_carries_the_security_headers() {
    let home = full_record();
    let portal = Portal::start(&home);
    let s = portal.sign_in();
    let list = portal.get("/messages", Some(&s.cookie));
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains("<a href=\"/messages\" aria-current=\"page\">"),
        "the nav marks where the reader is: {}",
        list.body
    );
    // Escaped as character references (askama writes `&#60;`), shown as the text it is.
    assert!(
        list.body
            .contains("&#60;script&#62;window.__phrInjected=true&#60;/script&#62;"),
        "{}",
        list.body
    );
    assert!(!list.body.contains("<script>window"), "{}", list.body);
    let id = list
        .body
        .split("class=\"title\" href=\"/messages/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a thread");
    let entry = portal.get(&format!("/messages/{id}"), Some(&s.cookie));
    assert!(!entry.body.contains("<script>window"), "{}", entry.body);
    assert!(entry.body.contains("&#60;script&#62;"), "{}", entry.body);
    for (path, cookie) in [
        ("/", Some(s.cookie.as_str())),
        ("/s/notes", Some(&s.cookie)),
        ("/", None),
        ("/static/portal.css", None),
    ] {
        let reply = portal.get(path, cookie);
        let csp = reply.header("content-security-policy").unwrap_or_default();
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: CSP lacks {part}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert!(
            reply.headers.iter().all(|(k, _)| !k.starts_with("access-control-")),
            "{path}: CORS headers: {reply:?}"
        );
    }
}

#[test]
fn phr_serve_with_portal_serves_the_same_pages() {
    let home = Home::init("Mia Lopez");
    home.add("medications", &["--name", "Amoxicillin"]);
    let portal = Portal::on(spawn_phr(&home, &["serve", "--portal", "--listen", "127.0.0.1:0"]));
    let s = portal.sign_in();
    let meds = portal.get("/s/medications", Some(&s.cookie));
    assert_eq!(meds.status, 200, "{meds:?}");
    assert!(meds.body.contains("Amoxicillin"), "{}", meds.body);
    let id = meds
        .body
        .split("class=\"title\" href=\"/s/medications/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the medication");
    let page = portal.get(&format!("/s/medications/{id}"), Some(&s.cookie));
    assert!(page.body.contains("<dt>Status</dt><dd>Active</dd>"), "{}", page.body);
    // Stopped with a day and a reason, it stays listed, marked stopped.
    let form = format!("csrf={}&date=2024-03-10&reason=course+finished", s.csrf);
    let stopped = post_as_browser(&portal, &format!("/s/medications/{id}/stop"), &s, &form);
    assert_eq!(stopped.status, 303, "{stopped:?}");
    let page = portal.get(&format!("/s/medications/{id}"), Some(&s.cookie));
    assert!(page.body.contains("<dd>Stopped</dd>"), "{}", page.body);
    assert!(
        page.body.contains("March 10, 2024") && !page.body.contains("/stop\""),
        "{}",
        page.body
    );
    let listed = home.json(["list", "medications", "--json"]);
    assert_eq!(listed[0]["fields"]["stop_reason"], "course finished", "{listed}");
    // The profile's form holds its repeatable parts one per line; a change keeps the rest.
    let form = portal.get("/s/profile/patient/edit", Some(&s.cookie));
    assert_eq!(form.status, 200, "{form:?}");
    assert!(form.body.contains("name=…; relationship=…"), "{}", form.body);
    let change = format!(
        "csrf={}&name=Mia+Lopez&language=Spanish&guardian=name%3DAna+Lopez%3B+relationship%3Dmother",
        s.csrf
    );
    let saved = post_as_browser(&portal, "/s/profile/patient/edit", &s, &change);
    assert_eq!(saved.status, 303, "{saved:?}");
    let profile = home.json(["show", "profile", "patient", "--json"]);
    assert_eq!(profile["fields"]["language"], "Spanish", "{profile}");
    assert_eq!(profile["fields"]["guardians"][0]["relationship"], "mother", "{profile}");
    assert_eq!(profile["fields"]["name"], "Mia Lopez", "{profile}");
}

#[test]
fn the_portal_will_not_listen_beyond_this_computer() {
    let home = Home::init("Mia Lopez");
    for addr in ["0.0.0.0:0", "192.168.1.10:8080", "[::]:0"] {
        let out = home.phr(["portal", "--listen", addr]);
        let err = out.refused();
        assert!(err.contains("TLS"), "{addr}: {err}");
    }
    let out = home.phr(["serve", "--portal", "--listen", "0.0.0.0:0"]);
    assert!(out.refused().contains("TLS"));
}

/// Mia's phone, holding what a caregiver must not see (insurance) and must not rewrite (a note).
fn phone_with_insurance_and_a_note() -> Dev {
    let phone = Dev::init("Mia Lopez", "Mia's phone");
    phone.ok(["add", "insurance", "--payer", "Blue Cross", "--member_id", "X123"]);
    phone.ok([
        "add",
        "notes",
        "--discipline",
        "speech",
        "--clinician",
        "J. Ames",
        "--date",
        "2024-03-02",
        "--subjective",
        "Tired",
    ]);
    phone
}

#[test]
fn a_caregivers_portal_shows_only_what_the_grant_reads_and_offers_only_its_writes() {
    let phone = phone_with_insurance_and_a_note();
    phone.ok(["add", "goals", "--goal", "Walk 10 steps", "--target", "10"]);
    let grandma = phone.share("Grandma's phone", &["--preset", "caregiver", "--label", "Grandma"]);
    let portal = Portal::on(grandma.spawn(["portal", "--listen", "127.0.0.1:0"]));
    let s = portal.sign_in();
    let home = portal.get("/", Some(&s.cookie));
    assert!(home.body.contains("Mia Lopez"), "{}", home.body);
    assert!(
        !home.body.contains("/s/insurance"),
        "the caregiver is offered insurance: {}",
        home.body
    );
    assert_eq!(portal.get("/s/insurance", Some(&s.cookie)).status, 404);
    let notes = portal.get("/s/notes", Some(&s.cookie));
    let note = first_entry(&notes.body, "notes");
    let page = portal.get(&format!("/s/notes/{note}"), Some(&s.cookie));
    assert!(
        page.body.contains("Tired") && !page.body.contains("/amend"),
        "{}",
        page.body
    );
    assert!(
        !notes.body.contains("/s/notes/new"),
        "the caregiver is offered a new note"
    );
    assert_eq!(portal.get("/s/notes/new", Some(&s.cookie)).status, 403);
    let form = format!(
        "csrf={}&discipline=speech&clinician=X&date=2024-01-01&subjective=forged",
        s.csrf
    );
    assert_eq!(post_as_browser(&portal, "/s/notes/new", &s, &form).status, 403);
    // The writes the grant allows are offered: goal progress, appointment requests, the log.
    let goals = portal.get("/s/goals", Some(&s.cookie));
    let goal = first_entry(&goals.body, "goals");
    let page = portal.get(&format!("/s/goals/{goal}"), Some(&s.cookie));
    assert!(
        page.body.contains("/progress") && !page.body.contains("/edit"),
        "{}",
        page.body
    );
    let appts = portal.get("/s/appointments", Some(&s.cookie));
    assert!(appts.body.contains("Request an appointment"), "{}", appts.body);
    let request = format!("csrf={}&reason=Check-up&start=2099-01-02T10:00", s.csrf);
    assert_eq!(
        post_as_browser(&portal, "/s/appointments/new", &s, &request).status,
        303
    );
    let log = portal.get("/s/caregiver_log", Some(&s.cookie));
    assert!(log.body.contains("/s/caregiver_log/new"), "{}", log.body);
    // Messages may be written; the clinic's form templates are not offered for editing.
    let threads = portal.get("/messages", Some(&s.cookie));
    assert!(threads.body.contains("action=\"/messages\""), "{}", threads.body);
    let message = format!("csrf={}&thread=Pick-up&body=I+will+bring+her", s.csrf);
    assert_eq!(post_as_browser(&portal, "/messages", &s, &message).status, 303);
    let forms = portal.get("/s/forms", Some(&s.cookie));
    assert!(!forms.body.contains("/s/forms/new"), "{}", forms.body);
    assert_eq!(portal.get("/s/forms/new", Some(&s.cookie)).status, 403);
}

/// A `multipart/form-data` body of text `fields` and one `file` (its name and contents), as a
/// browser sends an upload form; returns the body and its content type.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str)>) -> (String, String) {
    let boundary = "----phrTestBoundary7MA4YWxkTrZu0gW";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    if let Some((name, contents)) = file {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/pdf\r\n\r\n{contents}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// POST an upload form to `path` with `extra` headers (the browser's own, or a forger's).
fn post_upload(
    portal: &Portal,
    path: &str,
    s: &Session,
    (body, kind): &(String, String),
    extra: &[(&str, &str)],
) -> Reply {
    let host = portal.host();
    let mut headers = vec![
        ("Host", host.as_str()),
        ("Cookie", s.cookie.as_str()),
        ("Content-Type", kind.as_str()),
    ];
    headers.extend_from_slice(extra);
    http::send(portal.addr, "POST", path, &headers, Some(body))
}

fn upload_as_browser(portal: &Portal, path: &str, s: &Session, form: &(String, String)) -> Reply {
    let [(a, av), (b, bv)] = portal.same_origin();
    post_upload(portal, path, s, form, &[(a, &av), (b, &bv)])
}

/// The documents the record holds, as the CLI lists them, and whether the portal left any
/// upload behind in the home.
fn documents_and_leftovers(home: &Home) -> (Vec<serde_json::Value>, usize) {
    let docs = home.json(["list", "documents", "--json"]);
    let left = std::fs::read_dir(home.path().join("portal-uploads")).map_or(0, |d| d.count());
    (docs.as_array().cloned().unwrap_or_default(), left)
}

#[test]
fn an_upload_too_large_or_from_another_site_is_refused_and_stores_nothing() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    let s = portal.sign_in();
    let form = portal.get("/documents/new", Some(&s.cookie));
    assert_eq!(form.status, 200, "{form:?}");
    assert!(
        form.body.contains("Files up to 100 MB"),
        "the limit is stated: {}",
        form.body
    );
    assert!(form.body.contains("enctype=\"multipart/form-data\""), "{}", form.body);

    // One byte over the limit: refused before it is read, the limit named beside the file.
    let huge = "x".repeat(100 * 1024 * 1024 + 1);
    let fields = [("csrf", s.csrf.as_str()), ("title", "Too big")];
    let too_large = upload_as_browser(
        &portal,
        "/documents/upload",
        &s,
        &multipart(&fields, Some(("big.pdf", &huge))),
    );
    drop(huge);
    assert_eq!(too_large.status, 413, "{}", too_large.status);
    assert!(
        too_large
            .body
            .contains("files up to 100 MB are taken. Nothing was stored."),
        "{}",
        too_large.body
    );
    // From another site, or without the form's token: refused, even when small.
    let small = multipart(&fields, Some(("iep.pdf", "%PDF-1.4 small")));
    for headers in [
        &[("Sec-Fetch-Site", "cross-site"), ("Origin", "http://evil.example")][..],
        &[("Origin", "http://evil.example")],
        &[],
    ] {
        let reply = post_upload(&portal, "/documents/upload", &s, &small, headers);
        assert_eq!(reply.status, 403, "{headers:?}: {reply:?}");
    }
    let no_token = multipart(&[("title", "Forged")], Some(("iep.pdf", "%PDF-1.4 small")));
    assert_eq!(
        upload_as_browser(&portal, "/documents/upload", &s, &no_token).status,
        403
    );
    let cross_import = post_upload(
        &portal,
        "/transfer/import",
        &s,
        &small,
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(cross_import.status, 403, "{cross_import:?}");
    assert_eq!(documents_and_leftovers(&home), (Vec::new(), 0), "nothing was stored");
    let attached = home.json(["attachments", "list", "--json"]);
    assert_eq!(attached, serde_json::json!([]), "no file was sealed");
}

#[test]
fn a_documents_script_title_renders_as_text_and_its_file_downloads_under_a_safe_name() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    let s = portal.sign_in();
    let fields = [
        ("csrf", s.csrf.as_str()),
        ("title", "IEP <script>window.__phrInjected=true</script>"),
        ("kind", "iep"),
        ("date", "2024-09-01"),
    ];
    let contents = "%PDF-1.4 the school's plan\nline two\n";
    let sent = multipart(&fields, Some(("..\\..\\IEP \"final\"\r\nX-Evil: 1.pdf", contents)));
    let saved = upload_as_browser(&portal, "/documents/upload", &s, &sent);
    assert_eq!(saved.status, 303, "{saved:?}");
    let at = saved.header("location").expect("the new document's page").to_string();
    let page = portal.get(&at, Some(&s.cookie));
    assert!(!page.body.contains("<script>window"), "{}", page.body);
    assert!(page.body.contains("IEP &#60;script&#62;"), "{}", page.body);
    // Asked for as a browser asks (gzip accepted): the file comes back whole, as it was.
    let host = portal.host();
    let headers = [
        ("Host", host.as_str()),
        ("Cookie", s.cookie.as_str()),
        ("Accept-Encoding", "gzip"),
    ];
    let file = http::send(portal.addr, "GET", &format!("{at}/file"), &headers, None);
    assert_eq!(file.status, 200, "{file:?}");
    assert_eq!(file.body, contents, "the file comes back as it was sent");
    assert_eq!(file.header("content-type"), Some("application/pdf"));
    let disposition = file.header("content-disposition").expect("a download");
    assert!(disposition.starts_with("attachment; filename=\"IEP"), "{disposition}");
    for bad in ["..", "\\", "\r", "\n", "X-Evil:"] {
        assert!(!disposition.contains(bad), "{bad:?} in {disposition}");
    }
    assert!(file.header("x-evil").is_none(), "{file:?}");
    assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    // The CLI opens the same file from the same store.
    let out = home.scratch("opened.pdf");
    let id = at.rsplit('/').next().expect("an id");
    home.ok(["open", id, "--out", out.to_str().expect("a path")]);
    assert_eq!(std::fs::read_to_string(&out).expect("the opened file"), contents);
    assert_eq!(documents_and_leftovers(&home).1, 0, "no upload is left in the home");
    // A missing file, an unknown entry: not found, not a failure.
    assert_eq!(portal.get("/s/documents/nope/file", Some(&s.cookie)).status, 404);
    assert_eq!(portal.get("/s/medications/nope/file", Some(&s.cookie)).status, 404);
}

#[test]
fn every_report_and_the_fhir_export_download_from_the_portal() {
    let home = full_record();
    let portal = Portal::start(&home);
    let s = portal.sign_in();
    let page = portal.get("/reports", Some(&s.cookie));
    assert_eq!(page.status, 200, "{page:?}");
    for audience in ["iep", "specialist", "insurer"] {
        for format in ["pdf", "html"] {
            let form = format!("csrf={}&audience={audience}&format={format}&since=2024-01-01", s.csrf);
            let r = post_as_browser(&portal, "/reports", &s, &form);
            assert_eq!(r.status, 200, "{audience} {format}: {r:?}");
            let disposition = r.header("content-disposition").unwrap_or_default();
            assert!(
                disposition.contains(&format!("report-{audience}-")) && disposition.contains(&format!(".{format}\"")),
                "{disposition}"
            );
            match format {
                "pdf" => assert!(
                    r.body.starts_with("%PDF"),
                    "{audience}: {}",
                    &r.body[..20.min(r.body.len())]
                ),
                _ => assert!(r.body.contains("Mia Lopez"), "{audience}: the child's name"),
            }
        }
    }
    // A report in the future, or for nobody: the form again, the words beside the fields.
    let wrong = post_as_browser(
        &portal,
        "/reports",
        &s,
        &format!("csrf={}&format=pdf&since=2999-01-01", s.csrf),
    );
    assert_eq!(wrong.status, 422, "{wrong:?}");
    assert!(
        wrong.body.contains("id=\"e-audience\"") && wrong.body.contains("id=\"e-since\""),
        "{}",
        wrong.body
    );
    // Without the form's token: refused.
    let forged = post_as_browser(&portal, "/transfer/export", &s, "csrf=nope");
    assert_eq!(forged.status, 403, "{forged:?}");

    // Exporting asks for the passphrase again first, then comes back to the page.
    let asked = post_as_browser(&portal, "/transfer/export", &s, &format!("csrf={}", s.csrf));
    assert_eq!(location(&asked), "/confirm?next=/transfer", "{asked:?}");
    let confirmed = confirm_passphrase(&portal, &s, "/transfer", common::PASSPHRASE);
    assert_eq!(location(&confirmed), "/transfer");
    let export = post_as_browser(&portal, "/transfer/export", &s, &format!("csrf={}", s.csrf));
    assert_eq!(export.status, 200, "{export:?}");
    assert_eq!(export.header("content-type"), Some("application/fhir+json"));
    let bundle: serde_json::Value = serde_json::from_str(&export.body).expect("a JSON bundle");
    assert_eq!(bundle["resourceType"], "Bundle");
    let problems = common::fhir_validator::fhir_problems(&bundle);
    assert!(
        problems.is_empty(),
        "the exported bundle is not valid FHIR R4:\n{}",
        problems.join("\n")
    );
    // Each download was recorded as a disclosure.
    let audit = home.json(["audit", "--json"]).to_string();
    assert!(audit.contains("downloaded from the portal"), "{audit}");
}

/// `len` bytes that do not repeat in any short period (a file no compression or dedup flatters).
fn varied_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[test]
fn a_20_mb_iep_uploaded_on_one_device_downloads_byte_identical_on_another() {
    let kit = browser_kit();
    // Each serves its own portal, in live sync with the other.
    let (phone, phone_portal, _laptop, laptop_serving) =
        phone_and_laptop(&["serve", "--portal", "--listen", "127.0.0.1:0"]);
    let laptop_portal = Portal::from_line(laptop_serving.0, &laptop_serving.1.expect("the laptop's portal"));

    let files = tempfile::tempdir().expect("a scratch directory");
    let iep = files.path().join("IEP 2024-25.pdf");
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.extend(varied_bytes(20 * 1024 * 1024));
    std::fs::write(&iep, &bytes).expect("writing the IEP");
    let bundle = files.path().join("clinic.json");
    let clinic = serde_json::json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "AllergyIntolerance", "id": "a1", "code": {"text": "Peanut"}, "patient": {"reference": "Patient/1"}}},
            {"resource": {"resourceType": "Device", "id": "d1"}}
        ]
    });
    std::fs::write(&bundle, clinic.to_string()).expect("writing the bundle");
    let (saved, exported) = (files.path().join("saved.pdf"), files.path().join("export.json"));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/portal-screenshots");
    let mut node = Command::new("node");
    node.arg(kit.join("documents.mjs"))
        .args([&phone_portal.login, &laptop_portal.login])
        .args([&iep, &saved, &exported, &bundle, &shots])
        .arg(common::PASSPHRASE)
        .current_dir(&kit);
    let out = run(node, "node tests/browser/documents.mjs".into());
    assert_eq!(
        out.code,
        Some(0),
        "the documents journey failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    let got = std::fs::read(&saved).expect("the laptop's download");
    assert!(
        got == bytes,
        "the laptop's copy differs: {} bytes against {}",
        got.len(),
        bytes.len()
    );
    let export: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exported).expect("the export")).expect("JSON");
    let problems = common::fhir_validator::fhir_problems(&export);
    assert!(
        problems.is_empty(),
        "the exported bundle is not valid FHIR R4:\n{}",
        problems.join("\n")
    );
    let allergies = phone.json(["list", "allergies", "--json"]).to_string();
    assert!(allergies.contains("Peanut"), "the imported allergy: {allergies}");
}

/// The passphrase form, sent as the browser sends it, before going on to `next`.
fn confirm_passphrase(portal: &Portal, s: &Session, next: &str, passphrase: &str) -> Reply {
    let form = format!("csrf={}&passphrase={}", s.csrf, passphrase.replace(' ', "+"));
    post_as_browser(portal, &format!("/confirm?next={next}"), s, &form)
}

#[test]
fn a_parent_shares_with_grandma_in_the_portal_sees_her_join_and_stops_sharing() {
    let phone = phone_with_insurance_and_a_note();
    let mut serving = phone.spawn(["portal", "--listen", "127.0.0.1:0"]);
    let reach = serving.wait_line(|l| l.contains("phr sync --peer"));
    let phone_addr = reach.rsplit(' ').next().expect("the phone's address").to_string();
    let portal = Portal::on(serving);
    let s = portal.sign_in();

    // Sharing asks for the passphrase again first, and comes back to the form.
    let asked = portal.get("/sharing/new", Some(&s.cookie));
    assert_eq!(location(&asked), "/confirm?next=/sharing/new");
    let sent_anyway = post_as_browser(
        &portal,
        "/sharing/new",
        &s,
        &format!("csrf={}&label=X&preset=caregiver", s.csrf),
    );
    assert!(
        location(&sent_anyway).starts_with("/confirm"),
        "a share without the passphrase"
    );
    let confirmed = confirm_passphrase(&portal, &s, "/sharing/new", common::PASSPHRASE);
    assert_eq!(location(&confirmed), "/sharing/new");
    let form = portal.get("/sharing/new", Some(&s.cookie));
    assert_eq!(form.status, 200, "{form:?}");
    assert!(form.body.contains("Starting point"), "{}", form.body);

    // A caregiver share, shown as a QR code and as text.
    let share = format!("csrf={}&label=Grandma&preset=caregiver&days=30", s.csrf);
    let made = post_as_browser(&portal, "/sharing/new", &s, &share);
    let offer = location(&made).to_string();
    let page = portal.get(&offer, Some(&s.cookie));
    assert!(page.body.contains("Waiting for it to be used"), "{}", page.body);
    let ticket = page
        .body
        .split("<code>")
        .nth(1)
        .and_then(|r| r.split("</code>").next())
        .expect("the ticket's text")
        .to_string();
    assert!(ticket.starts_with("PHRPAIR"), "{ticket}");
    let qr = portal.get(&format!("{offer}/qr.svg"), Some(&s.cookie));
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"), "{qr:?}");
    assert!(qr.body.contains("<svg"), "{}", qr.body);

    // Grandma joins from her own home, with the command line; the page says she did.
    let grandma = Dev::fresh("Grandma's phone", None);
    grandma.ok(["join", &ticket, "--name", "Grandma's phone"]);
    let page = portal.get(&offer, Some(&s.cookie));
    assert!(page.body.contains("Grandma joined on"), "{}", page.body);
    let listed = portal.get("/sharing", Some(&s.cookie));
    assert!(
        listed.body.contains("Grandma") && listed.body.contains("Can see it now"),
        "{}",
        listed.body
    );

    // Her portal lists no insurance and offers no note editing.
    {
        let hers = Portal::on(grandma.spawn(["portal", "--listen", "127.0.0.1:0"]));
        let g = hers.sign_in();
        let home = hers.get("/", Some(&g.cookie));
        assert!(
            home.body.contains("Mia Lopez") && !home.body.contains("/s/insurance"),
            "{}",
            home.body
        );
        assert!(
            !home.body.contains("/sharing"),
            "a caregiver is offered sharing: {}",
            home.body
        );
        let notes = hers.get("/s/notes", Some(&g.cookie));
        let note = first_entry(&notes.body, "notes");
        let page = hers.get(&format!("/s/notes/{note}"), Some(&g.cookie));
        assert!(
            page.body.contains("Tired") && !page.body.contains("/amend"),
            "{}",
            page.body
        );
        assert_eq!(hers.get("/sharing", Some(&g.cookie)).status, 403);
    }
    assert_eq!(
        grandma.sync_with(&phone_addr).code,
        Some(0),
        "she syncs before the revocation"
    );

    // Stopping the share: a confirmation, then it takes effect.
    let id = listed
        .body
        .split("href=\"/sharing/")
        .filter_map(|r| r.split_once("/revoke\"").map(|(id, _)| id))
        .next()
        .expect("a link to stop sharing")
        .to_string();
    let revoke = format!("/sharing/{id}/revoke");
    let ask = portal.get(&revoke, Some(&s.cookie));
    assert!(ask.body.contains("will no longer see this record"), "{ask:?}");
    let done = post_as_browser(&portal, &revoke, &s, &format!("csrf={}", s.csrf));
    assert_eq!(location(&done), "/sharing");
    let access = phone.json(["access", "list", "--json"]);
    assert!(access[0]["status"] == "revoked", "{access}");
    let refused = grandma.sync_with(&phone_addr);
    assert_ne!(
        refused.code,
        Some(0),
        "she still syncs after the revocation: {}",
        refused.stdout
    );

    // The activity log lists the share and its end, and filters by what happened.
    let log = portal.get("/activity", Some(&s.cookie));
    assert!(
        log.body.contains("Shared") && log.body.contains("Stopped sharing"),
        "{}",
        log.body
    );
    let revokes = portal.get("/activity?what=revoke", Some(&s.cookie));
    assert!(revokes.body.contains("One event."), "{}", revokes.body);
    assert!(revokes.body.contains("Grandma"), "{}", revokes.body);
}

#[test]
fn twenty_wrong_passphrases_in_a_row_are_each_refused_and_change_nothing() {
    let home = Home::init("Mia Lopez");
    let portal = Portal::start(&home);
    let s = portal.sign_in();
    let before = home.json(["access", "list", "--json"]);
    let mut waits = 0;
    for i in 0..20 {
        let reply = confirm_passphrase(&portal, &s, "/sharing/new", &format!("wrong guess {i}"));
        assert!(matches!(reply.status, 422 | 429), "guess {i}: {reply:?}");
        assert!(reply.body.contains("Nothing was changed"), "{}", reply.body);
        if reply.status == 429 {
            assert!(reply.body.contains("Too many wrong passphrases"), "{}", reply.body);
            waits += 1;
        }
        // Still not confirmed: the sensitive pages still ask.
        let asked = portal.get("/sharing/new", Some(&s.cookie));
        assert!(location(&asked).starts_with("/confirm"));
    }
    assert!(waits > 0, "a client guessing twenty times was never made to wait");
    assert_eq!(home.json(["access", "list", "--json"]), before);
    let attempt = post_as_browser(&portal, "/devices/add", &s, &format!("csrf={}", s.csrf));
    assert!(location(&attempt).starts_with("/confirm"));
    // The right one now waits too: the guesser cannot tell.
    let right = confirm_passphrase(&portal, &s, "/sharing/new", common::PASSPHRASE);
    assert_eq!(right.status, 429, "{right:?}");
}

#[test]
fn sharing_devices_and_the_activity_log_work_in_a_real_browser() {
    let kit = browser_kit();
    let phone = Dev::init("Mia Lopez", "Mia's phone");
    let portal = Portal::on(phone.spawn(["portal", "--listen", "127.0.0.1:0"]));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/portal-screenshots");
    let mut node = Command::new("node");
    node.arg(kit.join("share.mjs"))
        .arg(&portal.login)
        .arg(common::PASSPHRASE)
        .arg(&shots)
        .current_dir(&kit);
    let out = run(node, "node tests/browser/share.mjs".into());
    assert_eq!(
        out.code,
        Some(0),
        "the sharing journey failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

/// Where a form's `303 See Other` sends the browser.
fn location(reply: &Reply) -> String {
    assert_eq!(reply.status, 303, "{reply:?}");
    reply.header("location").expect("a Location header").to_string()
}

/// The `<svg>` chart on a page, if it has one.
fn chart(page: &str) -> Option<String> {
    let start = page.find("<svg")?;
    let end = page[start..].find("</svg>")?;
    Some(page[start..start + end].to_string())
}

#[test]
fn a_goals_page_shows_its_chart_and_progress_added_in_two_taps_changes_it() {
    let home = Dev::init("Mia Lopez", "Mia's phone");
    home.ok([
        "add",
        "goals",
        "--goal",
        "Walk 10 steps",
        "--target",
        "10",
        "--unit",
        "steps",
        "--milestone",
        "text=First steps; due=2099-01-01",
    ]);
    let portal = Portal::on(home.spawn(["portal", "--listen", "127.0.0.1:0"]));
    let s = portal.sign_in();
    let goal = home.list("goals")[0]["id"].as_str().expect("an id").to_string();
    let page = portal.get(&format!("/s/goals/{goal}"), Some(&s.cookie)).body;
    assert!(chart(&page).is_none(), "a chart without measurements: {page}");
    assert!(page.contains("First steps") && page.contains("Milestones"), "{page}");
    let today = chrono::Local::now().date_naive().to_string();
    let mut charts = Vec::new();
    for value in ["4", "7"] {
        // The short form on the goal's page: type the value, press Add.
        let form = format!("csrf={}&date={today}&value={value}", s.csrf);
        let to = location(&post_as_browser(
            &portal,
            &format!("/s/goals/{goal}/progress"),
            &s,
            &form,
        ));
        assert_eq!(to, format!("/s/goals/{goal}"));
        let page = portal.get(&to, Some(&s.cookie)).body;
        charts.push(chart(&page).unwrap_or_else(|| panic!("no chart after progress: {page}")));
    }
    assert_ne!(charts[0], charts[1], "the second measurement did not change the chart");
    assert!(charts[1].contains("role=\"img\""), "{}", charts[1]);
    let goals = home.json(["list", "goals", "--json"]);
    assert_eq!(goals[0]["fields"]["progress"][1]["value"], 7.0, "{goals}");
    // A value that is no number is refused beside its field, and nothing is written.
    let form = format!("csrf={}&date={today}&value=lots", s.csrf);
    let refused = post_as_browser(&portal, &format!("/s/goals/{goal}/progress"), &s, &form);
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(refused.body.contains("id=\"e-value\""), "{}", refused.body);
}

#[test]
fn a_family_writes_to_the_clinic_by_thread_and_others_script_stays_text() {
    let home = Dev::init("Mia Lopez", "Mia's phone");
    home.ok([
        "messages",
        "send",
        "--thread",
        "Homework",
        "--from",
        "Dr. <b>Ames</b>",
        "Practise /s/ daily",
    ]);
    let portal = Portal::on(home.spawn(["portal", "--listen", "127.0.0.1:0"]));
    let s = portal.sign_in();
    // The section's list is read by thread.
    assert_eq!(location(&portal.get("/s/messages", Some(&s.cookie))), "/messages");
    let threads = portal.get("/messages", Some(&s.cookie)).body;
    assert!(
        threads.contains("Homework") && threads.contains("One message"),
        "{threads}"
    );
    assert!(threads.contains("Ames") && !threads.contains("<b>Ames"), "{threads}");

    let form = format!(
        "csrf={}&thread=Trains+%3Cscript%3Ealert(1)%3C%2Fscript%3E&body=%3Cscript%3Ealert(2)%3C%2Fscript%3E+loves+trains",
        s.csrf
    );
    let thread = location(&post_as_browser(&portal, "/messages", &s, &form));
    let reply = format!("csrf={}&body=We+practised+every+day", s.csrf);
    assert_eq!(location(&post_as_browser(&portal, &thread, &s, &reply)), thread);
    let page = portal.get(&thread, Some(&s.cookie)).body;
    assert!(
        !page.contains("<script>alert"),
        "a message's script reached the page: {page}"
    );
    assert!(page.contains("alert(2)&#60;/script&#62; loves trains"), "{page}");
    assert!(page.contains("We practised every day"), "{page}");
    // Written as `phr messages send` writes them: one thread of two, signed by this device.
    let listed = home.json(["messages", "list", "--json"]);
    let trains = listed
        .as_array()
        .and_then(|t| t.iter().find(|t| t["thread"] == "Trains <script>alert(1)</script>"))
        .unwrap_or_else(|| panic!("no new thread: {listed:#}"));
    assert_eq!(trains["messages"].as_array().map(Vec::len), Some(2), "{trains:#}");
    assert_eq!(
        trains["messages"][1]["fields"]["from"], "Mia Lopez via Mia's phone",
        "{trains:#}"
    );
    // The newest thread comes first.
    let threads = portal.get("/messages", Some(&s.cookie)).body;
    let (trains_at, homework_at) = (threads.find("Trains"), threads.find("Homework"));
    assert!(trains_at < homework_at, "{threads}");
    // A new conversation needs its subject, said beside it.
    let form = format!("csrf={}&thread=+&body=Hello", s.csrf);
    let refused = post_as_browser(&portal, "/messages", &s, &form);
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(refused.body.contains("needs a subject"), "{}", refused.body);
}

#[test]
fn a_conflict_made_on_two_devices_is_shown_and_settled_in_the_portal() {
    let phone = Dev::init("Mia Lopez", "phone");
    let laptop = phone.pair("laptop");
    phone.ok(["add", "medications", "--name", "Ibuprofen", "--dose", "100 mg"]);
    let mut serving = phone.spawn(["portal", "--listen", "127.0.0.1:0"]);
    let reach = serving.wait_line(|l| l.contains("phr sync --peer"));
    let peer = reach.rsplit(' ').next().expect("the phone's address").to_string();
    let portal = Portal::on(serving);
    assert_eq!(laptop.sync_with(&peer).code, Some(0));
    let med = laptop.list("medications")[0]["id"].as_str().expect("an id").to_string();
    // Both change the dose while apart, then meet.
    phone.ok(["edit", "medications", &med, "--dose", "150 mg"]);
    laptop.ok(["edit", "medications", &med, "--dose", "200 mg"]);
    assert_eq!(laptop.sync_with(&peer).code, Some(0));

    let s = portal.sign_in();
    let home = portal.get("/", Some(&s.cookie)).body;
    assert!(home.contains("href=\"/conflicts\""), "{home}");
    let page = portal.get("/conflicts", Some(&s.cookie)).body;
    for want in [
        "150 mg",
        "200 mg",
        "Dose",
        "Ibuprofen",
        "this device",
        "laptop",
        "Keep this one",
    ] {
        assert!(page.contains(want), "no {want}: {page}");
    }
    // Keep the value shown now: an edit to it would change nothing, the choice settles it.
    let listed = phone.json(["conflicts", "--json"]);
    let shown = phone.list("medications")[0]["fields"]["dose"].clone();
    let values = listed[0]["values"].as_array().cloned().unwrap_or_default();
    let pick = values
        .iter()
        .position(|v| v["value"] == shown)
        .expect("the shown value is one side");
    let form = format!("csrf={}&section=medications&entry={med}&field=dose&pick={pick}", s.csrf);
    assert_eq!(
        location(&post_as_browser(&portal, "/conflicts", &s, &form)),
        "/conflicts"
    );
    assert_eq!(phone.json(["conflicts", "--json"]), serde_json::json!([]));
    let page = portal.get("/conflicts", Some(&s.cookie)).body;
    assert!(page.contains("Nothing to choose"), "{page}");
    // The choice is a change like any other: the laptop gets it and is settled too.
    assert_eq!(laptop.sync_with(&peer).code, Some(0));
    assert_eq!(laptop.json(["conflicts", "--json"]), serde_json::json!([]));
    assert_eq!(laptop.list("medications")[0]["fields"]["dose"], shown);
    // Choosing again is refused with the engine's words, and writes nothing.
    let again = post_as_browser(&portal, "/conflicts", &s, &form);
    assert_eq!(again.status, 409, "{again:?}");
}

#[test]
fn an_appointment_requested_in_the_portal_shows_the_clinics_confirmation() {
    let node = Node::start_new();
    node.staff("Ana Diaz", "front desk");
    let phone = Dev::init("Mia Lopez", "Mia's phone");
    phone.connect(&node);
    let mia = phone.record();
    let portal = Portal::on(phone.spawn(["portal", "--listen", "127.0.0.1:0"]));
    let s = portal.sign_in();
    let form = format!(
        "csrf={}&reason=Speech+evaluation&start=2099-05-02T14%3A30&status=requested&discipline=speech",
        s.csrf
    );
    let to = location(&post_as_browser(&portal, "/s/appointments/new", &s, &form));
    let id = to.rsplit('/').next().expect("the new entry's id").to_string();
    let page = portal.get(&to, Some(&s.cookie)).body;
    assert!(page.contains("Requested"), "{page}");
    phone.sync(&node);
    let path = format!("/v1/patients/{mia}/appointments/{id}/confirm?clinician=Ana+Diaz");
    let (status, body) = node.call("POST", &path, Some(&node.token), None);
    assert_eq!(status, 200, "{body}");
    phone.sync(&node);
    let list = portal.get("/s/appointments", Some(&s.cookie)).body;
    assert!(
        list.contains("Confirmed") && list.contains("Speech evaluation"),
        "{list}"
    );
    let page = portal.get(&to, Some(&s.cookie)).body;
    assert!(page.contains("Confirmed"), "{page}");
}
