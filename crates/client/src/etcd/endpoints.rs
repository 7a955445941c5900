//! Host rewriting for endpoints, a stand-in for cluster DNS when the
//! operator runs outside the cluster (local runs and tests).

use std::collections::BTreeMap;

/// Maps `host:port` (or `host`) to another `host:port`, like a hosts file for endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointRewrite {
    map: BTreeMap<String, String>,
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

    /// Rewrites one endpoint URL, keeping its scheme.
    pub fn apply(&self, endpoint: &str) -> String {
        let (scheme, rest) = endpoint.split_once("://").map_or(("", endpoint), |(s, r)| (s, r));
        let host = rest.split(':').next().unwrap_or(rest);
        let replaced = self.map.get(rest).or_else(|| self.map.get(host));
        match (replaced, scheme) {
            (Some(to), "") => to.clone(),
            (Some(to), s) => format!("{s}://{to}"),
            (None, _) => endpoint.to_owned(),
        }
    }
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
    fn refuses_malformed_pairs() {
        assert!(EndpointRewrite::parse(&["nope".into()]).unwrap_err().contains("host[:port]=host:port"));
    }
}
