//! Real networks for tests, made by the test: Linux network namespaces joined by veth pairs.
//!
//! ```text
//!  laptop 10.1.0.2 ── home router (NAT) ══ impaired link ══╗
//!                                                          internet ── clinic 203.0.113.2
//!  phone  10.2.0.2 ── mobile router (NAT) ═ impaired link ═╝            (node + relay)
//! ```
//!
//! Each LAN sits behind its own router that masquerades (nftables) onto its "internet" address;
//! the clinic has a public address. The links between the routers and the internet are
//! userspace bridges ([`super::impair::Link`]) with latency, jitter, loss and outages, and can be
//! rate limited (tc tbf). Namespace names carry the test process's id and a counter, so tests
//! run in parallel; everything is removed when the [`Lab`] is dropped, whatever the test did.
//! Needs root; where namespaces cannot be made, [`Lab::new`] says why and tests skip.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::impair::{Impairment, Link};

/// The clinic's address on the "internet".
pub const CLINIC_IP: &str = "203.0.113.2";

/// Which side of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The family's home LAN (the laptop).
    Home,
    /// The phone's mobile network.
    Mobile,
}

/// Two NATed LANs and a clinic, joined through an "internet" namespace.
pub struct Lab {
    prefix: String,
    made: Vec<String>,
    links: Vec<(Side, Link)>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Run `ip`/`nft`/`tc`/`ethtool` (optionally inside namespace `ns`); the error says what failed.
fn sh(ns: Option<&str>, program: &str, args: &[&str]) -> Result<(), String> {
    let mut cmd = match ns {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", n, program]);
            c
        }
        None => Command::new(program),
    };
    let out = cmd.args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` in {ns:?}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lab {
    /// The two homes and the clinic, links unimpaired; `None` (with the reason printed) where
    /// this machine cannot make network namespaces.
    pub fn new() -> Option<Lab> {
        let prefix = format!("phr{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut lab = Lab {
            prefix,
            made: Vec::new(),
            links: Vec::new(),
        };
        if let Err(e) = lab.ns("probe") {
            eprintln!("SKIPPED: cannot make network namespaces here (needs root and iproute2): {e}");
            return None;
        }
        if let Err(e) = lab.build() {
            panic!("building the test networks: {e}");
        }
        Some(lab)
    }

    /// A namespace's full name.
    pub fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// The namespace the laptop (home) or the phone (mobile) runs in.
    pub fn device_ns(&self, side: Side) -> String {
        self.name(match side {
            Side::Home => "laptop",
            Side::Mobile => "phone",
        })
    }

    /// The clinic's namespace.
    pub fn clinic_ns(&self) -> String {
        self.name("clinic")
    }

    /// Impair `side`'s link to the internet (both directions).
    pub fn impair(&self, side: Side, how: Impairment) {
        self.link(side).set(how);
    }

    /// Cut `side`'s link to the internet, or restore it.
    pub fn set_down(&self, side: Side, down: bool) {
        self.link(side).set_down(down);
    }

    /// Limit `side`'s link to `mbit` megabits per second each way (tc tbf).
    pub fn rate_limit(&self, side: Side, mbit: u32) {
        let rate = format!("{mbit}mbit");
        let (router, net_if) = match side {
            Side::Home => ("homer", "home"),
            Side::Mobile => ("mobr", "mobile"),
        };
        for (ns, dev) in [(self.name(router), "wan"), (self.name("net"), net_if)] {
            let args = [
                "qdisc", "replace", "dev", dev, "root", "tbf", "rate", &rate, "burst", "32kb", "latency", "400ms",
            ];
            sh(Some(&ns), "tc", &args).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Let `side`'s router forward no UDP at all (a network that lets only TCP out): its
    /// devices reach others only through a relay.
    pub fn block_udp(&self, side: Side) {
        let router = self.name(match side {
            Side::Home => "homer",
            Side::Mobile => "mobr",
        });
        let rules = "add table inet phr_block; add chain inet phr_block deny { type filter hook forward priority 0; }; add rule inet phr_block deny meta l4proto udp drop";
        sh(Some(&router), "nft", &[rules]).unwrap_or_else(|e| panic!("{e}"));
    }

    fn link(&self, side: Side) -> &Link {
        self.links
            .iter()
            .find(|(s, _)| *s == side)
            .map(|(_, l)| l)
            .expect("every side has a link")
    }

    /// Make namespace `short` with its loopback up.
    fn ns(&mut self, short: &str) -> Result<String, String> {
        let name = self.name(short);
        sh(None, "ip", &["netns", "add", &name])?;
        self.made.push(name.clone());
        sh(Some(&name), "ip", &["link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// A veth pair from `a` (named `a_if` there) to `b` (`b_if`), both up, without the
    /// offloads a userspace bridge cannot pass on (checksums left to the card, giant segments).
    fn wire(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), String> {
        let (na, nb) = (self.name(a), self.name(b));
        sh(
            None,
            "ip",
            &[
                "link", "add", "name", a_if, "netns", &na, "type", "veth", "peer", "name", b_if, "netns", &nb,
            ],
        )?;
        for (ns, dev) in [(&na, a_if), (&nb, b_if)] {
            sh(
                Some(ns),
                "ethtool",
                &["-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"],
            )?;
            sh(Some(ns), "ip", &["link", "set", "dev", dev, "up"])?;
        }
        Ok(())
    }

    fn addr(&self, ns: &str, dev: &str, cidr: &str) -> Result<(), String> {
        sh(Some(&self.name(ns)), "ip", &["addr", "add", cidr, "dev", dev])
    }

    fn route(&self, ns: &str, via: &str) -> Result<(), String> {
        sh(Some(&self.name(ns)), "ip", &["route", "add", "default", "via", via])
    }

    fn forwarding(&self, ns: &str) -> Result<(), String> {
        sh(Some(&self.name(ns)), "sysctl", &["-qw", "net.ipv4.ip_forward=1"])
    }

    fn build(&mut self) -> Result<(), String> {
        for n in ["net", "clinic", "homer", "homex", "laptop", "mobr", "mobx", "phone"] {
            self.ns(n)?;
        }
        self.forwarding("net")?;
        self.wire("clinic", "wan", "net", "clinic")?;
        self.addr("clinic", "wan", "203.0.113.2/24")?;
        self.addr("net", "clinic", "203.0.113.1/24")?;
        self.route("clinic", "203.0.113.1")?;
        self.lan(
            Side::Home,
            ("homer", "homex", "laptop", "home"),
            ("198.51.100", "10.1.0"),
        )?;
        self.lan(Side::Mobile, ("mobr", "mobx", "phone", "mobile"), ("192.0.2", "10.2.0"))
    }

    /// One side: device ── router (NAT) ── bridge ── internet.
    fn lan(
        &mut self,
        side: Side,
        (router, bridge, device, net_if): (&str, &str, &str, &str),
        (wan, lan): (&str, &str),
    ) -> Result<(), String> {
        self.forwarding(router)?;
        self.wire(router, "wan", bridge, "torouter")?;
        self.wire(bridge, "tonet", "net", net_if)?;
        self.addr(router, "wan", &format!("{wan}.2/24"))?;
        self.addr("net", net_if, &format!("{wan}.1/24"))?;
        self.route(router, &format!("{wan}.1"))?;
        self.wire(device, "lan", router, "lan")?;
        self.addr(device, "lan", &format!("{lan}.2/24"))?;
        self.addr(router, "lan", &format!("{lan}.1/24"))?;
        self.route(device, &format!("{lan}.1"))?;
        let nat = "add table ip phr_nat; add chain ip phr_nat post { type nat hook postrouting priority 100; }; add rule ip phr_nat post oifname \"wan\" masquerade";
        sh(Some(&self.name(router)), "nft", &[nat])?;
        let link =
            Link::bridge(&self.name(bridge), "torouter", "tonet").map_err(|e| format!("bridge {bridge}: {e}"))?;
        self.links.push((side, link));
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Stop the bridges first: their sockets hold the namespaces' interfaces.
        self.links.clear();
        for ns in self.made.drain(..).rev() {
            // Processes still inside keep a namespace alive only until they exit; the name goes now.
            let _ = sh(None, "ip", &["netns", "del", &ns]);
        }
    }
}
