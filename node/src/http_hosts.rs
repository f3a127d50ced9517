//! Which `Host` a local HTTP server (the clinic node's API, a patient's portal) answers to.
//!
//! A web page can make a browser send requests to a server on the viewer's own machine under
//! the page's domain name, once that name is made to resolve to 127.0.0.1 (DNS rebinding).
//! Such requests carry the attacker's name in `Host`. Answering only to the names the server
//! is really reached by (loopback names and addresses, the address it is bound to, and names
//! its operator lists) turns them away before they touch anything.

use std::net::{IpAddr, SocketAddr};

/// The `Host` values a server answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    bind: Option<IpAddr>,
    names: Vec<String>,
    addrs: Vec<IpAddr>,
}

impl AllowedHosts {
    /// `localhost`, every loopback address, `bind`'s address unless it is the unspecified
    /// 0.0.0.0 or `::`, and `extra`: names (letter case aside) or IP addresses, with or without
    /// a port.
    pub fn new(bind: SocketAddr, extra: &[String]) -> AllowedHosts {
        let mut names = vec!["localhost".to_string()];
        let mut addrs = Vec::new();
        for e in extra {
            let host = host_part(e.trim());
            match host.parse::<IpAddr>() {
                Ok(ip) => addrs.push(ip),
                Err(_) => names.push(normal_name(host)),
            }
        }
        AllowedHosts {
            bind: Some(bind.ip()).filter(|ip| !ip.is_unspecified()),
            names,
            addrs,
        }
    }

    /// Whether a request whose `Host` header is `host` (`name`, `name:port`, `1.2.3.4:port`,
    /// `[::1]:port`) is answered. Any port: a browser sends the one it connected to.
    pub fn allows(&self, host: &str) -> bool {
        let host = host_part(host.trim());
        if host.is_empty() {
            return false;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || Some(ip) == self.bind || self.addrs.contains(&ip),
            Err(_) => self.names.contains(&normal_name(host)),
        }
    }
}

/// `host` without its port, and an IPv6 address without its brackets.
fn host_part(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or("", |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        // One colon: `name:port`. More would be a bare IPv6 address.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// A name as DNS compares it: letter case aside, without the root's trailing dot.
fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(bind: &str, extra: &[&str]) -> AllowedHosts {
        let extra: Vec<String> = extra.iter().map(|e| e.to_string()).collect();
        AllowedHosts::new(bind.parse().unwrap(), &extra)
    }

    #[test]
    fn loopback_names_and_addresses_are_answered_on_any_port() {
        let h = hosts("127.0.0.1:4920", &[]);
        for ok in [
            "localhost",
            "LOCALHOST:4920",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:4920",
            "127.5.6.7:80",
            "[::1]:4920",
            "[::1]",
            "::1",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
    }

    #[test]
    fn other_names_are_refused_unless_listed() {
        let h = hosts("127.0.0.1:4920", &[]);
        for bad in [
            "evil.example",
            "evil.example:4920",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.5:4920",
            "",
            ":4920",
            "[evil",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        let h = hosts("127.0.0.1:4920", &["ehr-gateway.clinic.lan", "10.0.0.5:4920"]);
        assert!(h.allows("EHR-Gateway.clinic.lan:4920"));
        assert!(h.allows("10.0.0.5"));
        assert!(!h.allows("evil.example"));
    }

    #[test]
    fn the_address_the_server_is_bound_to_is_answered_but_not_the_unspecified_one() {
        let h = hosts("192.168.1.20:4920", &[]);
        assert!(h.allows("192.168.1.20:4920"));
        assert!(!h.allows("192.168.1.21:4920"));
        let any = hosts("0.0.0.0:4920", &[]);
        assert!(!any.allows("0.0.0.0:4920"));
        assert!(any.allows("127.0.0.1:4920"));
        let v6 = hosts("[fd00::20]:4920", &[]);
        assert!(v6.allows("[fd00::20]:4920"));
    }
}
