//! Host rewriting for endpoints, a stand-in for cluster DNS when the
//! operator runs outside the cluster (local runs and tests).

use std::{collections::BTreeMap, path::PathBuf};

/// Where a host missing from the hosts file points: loopback port 1, where connects are refused
/// (never the original port, where an unrelated local etcd could answer).
const UNLISTED: &str = "127.0.0.1:1";

/// Maps `host:port` (or `host`) to another `host:port`, like a hosts file for
/// endpoints; optionally also resolves hosts through a hosts file, re-read on
/// every use so addresses that change (restarted pods) are followed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointRewrite {
    map: BTreeMap<String, String>,
    hosts_file: Option<PathBuf>,
}

impl EndpointRewrite {
    /// Adds a rewrite from `from` (host or host:port) to `to` (host:port).
    pub fn insert(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.map.insert(from.into(), to.into());
    }

    /// Parses `from=to` pairs (command-line form).
    pub fn parse(pairs: &[String]) -> Result<Self, String> {
        let mut out = Self::default();
        for pair in pairs {
            let (from, to) =
                pair.split_once('=').filter(|(f, t)| !f.is_empty() && !t.is_empty()).ok_or_else(|| {
                    format!("endpoint rewrite {pair:?} must have the form host[:port]=host:port")
                })?;
            out.insert(from, to);
        }
        Ok(out)
    }

    /// Resolves hosts not rewritten explicitly through `path` (hosts-file format).
    pub fn with_hosts_file(mut self, path: Option<PathBuf>) -> Self {
        self.hosts_file = path;
        self
    }

    /// Rewrites one endpoint URL, keeping its scheme.
    pub fn apply(&self, endpoint: &str) -> String {
        let (scheme, rest) = endpoint.split_once("://").map_or(("", endpoint), |(s, r)| (s, r));
        let (host, port) = rest.split_once(':').map_or((rest, None), |(h, p)| (h, Some(p)));
        let replaced = self.map.get(rest).or_else(|| self.map.get(host)).cloned().or_else(|| {
            self.hosts_file.as_ref()?;
            if host.parse::<std::net::IpAddr>().is_ok() {
                return None;
            }
            // With a hosts file it is the only source of names: a host it does not list (a pod
            // without an address yet) is refused at once instead of waiting on DNS.
            let Some(ip) = self.lookup(host) else { return Some(UNLISTED.to_owned()) };
            Some(port.map_or_else(|| ip.clone(), |p| format!("{ip}:{p}")))
        });
        match (replaced, scheme) {
            (Some(to), "") => to,
            (Some(to), s) => format!("{s}://{to}"),
            (None, _) => endpoint.to_owned(),
        }
    }

    /// The first address the hosts file lists for `host`.
    fn lookup(&self, host: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.hosts_file.as_ref()?).ok()?;
        text.lines().map(|l| l.split('#').next().unwrap_or_default()).find_map(|l| {
            let mut fields = l.split_whitespace();
            let ip = fields.next()?;
            fields.any(|name| name == host).then(|| ip.to_owned())
        })
    }
}

/// The endpoints of one scheme, for one connection: etcd-client takes TLS settings for all of a
/// connection's endpoints or for none. While a cluster moves between plaintext and TLS its
/// members speak either; the larger group is taken (at most one member is restarting, so it
/// holds a live member), TLS on a tie when its settings are given. Plain URLs without settings
/// for TLS keep only the plain ones.
pub(super) fn one_scheme(endpoints: &[String], tls: bool) -> Vec<String> {
    let (secure, plain): (Vec<String>, Vec<String>) =
        endpoints.iter().cloned().partition(|e| e.starts_with("https://"));
    if !tls && !plain.is_empty() {
        return plain;
    }
    if secure.len() >= plain.len() { secure } else { plain }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_by_host_port_then_host() {
        let r = EndpointRewrite::parse(&[
            "demo-0.demo.default.svc:2379=127.0.0.1:32379".into(),
            "demo-1.demo.default.svc=127.0.0.1:32380".into(),
        ])
        .unwrap();
        assert_eq!(r.apply("http://demo-0.demo.default.svc:2379"), "http://127.0.0.1:32379");
        assert_eq!(r.apply("demo-1.demo.default.svc:2379"), "127.0.0.1:32380");
        assert_eq!(r.apply("http://other:2379"), "http://other:2379");
    }

    #[test]
    fn hosts_file_resolves_what_no_pair_rewrites_and_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "# comment\n10.0.0.2\tdemo-0.demo.prod.svc.cluster.local demo-0.demo\n")
            .unwrap();
        let r = EndpointRewrite::parse(&["pinned:2379=127.0.0.1:1".into()])
            .unwrap()
            .with_hosts_file(Some(hosts.clone()));
        assert_eq!(r.apply("http://demo-0.demo.prod.svc.cluster.local:2379"), "http://10.0.0.2:2379");
        assert_eq!(r.apply("http://pinned:2379"), "http://127.0.0.1:1");
        assert_eq!(r.apply("http://10.1.2.3:2379"), "http://10.1.2.3:2379");
        assert_eq!(r.apply("http://demo-9.demo.prod.svc.cluster.local:2379"), "http://127.0.0.1:1");
        std::fs::write(&hosts, "10.0.0.9 demo-0.demo.prod.svc.cluster.local\n").unwrap();
        assert_eq!(r.apply("http://demo-0.demo.prod.svc.cluster.local:2379"), "http://10.0.0.9:2379");
    }

    #[test]
    fn refuses_malformed_pairs() {
        assert!(EndpointRewrite::parse(&["nope".into()]).unwrap_err().contains("host[:port]=host:port"));
    }

    #[test]
    fn one_connection_speaks_one_scheme() {
        let urls = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mixed = urls(&["https://a:2379", "http://b:2379", "http://c:2379"]);
        assert_eq!(one_scheme(&mixed, true), urls(&["http://b:2379", "http://c:2379"]));
        assert_eq!(one_scheme(&mixed, false), urls(&["http://b:2379", "http://c:2379"]));
        let tie = urls(&["https://a:2379", "http://b:2379"]);
        assert_eq!(one_scheme(&tie, true), urls(&["https://a:2379"]));
        assert_eq!(one_scheme(&tie, false), urls(&["http://b:2379"]));
        let secure = urls(&["https://a:2379"]);
        assert_eq!(one_scheme(&secure, false), secure, "refused later with a clear error");
    }
}
