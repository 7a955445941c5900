//! Probes of the etcd container, by what its version offers.
//!
//! Liveness must never depend on the cluster: a kubelet that restarts members
//! because the cluster has no leader turns a lost quorum into a crash loop of
//! the survivors. etcd 3.5.11+ has `/livez` and `/readyz`; 3.5.3+ checks only
//! the local member with `/health?serializable=true`; 3.4 has no local health
//! endpoint at all, so its liveness is whether the client port accepts
//! connections. Readiness (in the Service's endpoints) does need a leader.

use etcd_operator_api::version::EtcdVersion;
use k8s_openapi::{
    api::core::v1::{HTTPGetAction, Probe, TCPSocketAction},
    apimachinery::pkg::util::intstr::IntOrString,
};

use crate::names::{CLIENT_PORT, METRICS_PORT};

fn probe(failure_threshold: i32) -> Probe {
    Probe {
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

fn http(path: &str, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(METRICS_PORT),
            ..HTTPGetAction::default()
        }),
        ..probe(failure_threshold)
    }
}

/// Ready = a member of a cluster with a leader.
pub fn readiness(version: Option<EtcdVersion>) -> Probe {
    match version {
        Some(v) if v.has_livez_and_readyz() => http("/readyz", 3),
        _ => http("/health", 3),
    }
}

/// Alive = the member's own process answers, whatever the cluster's state.
pub fn liveness(version: Option<EtcdVersion>) -> Probe {
    match version {
        Some(v) if v.has_livez_and_readyz() => http("/livez", 8),
        Some(v) if v.has_serializable_health() => http("/health?serializable=true", 8),
        _ => Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(CLIENT_PORT),
                ..TCPSocketAction::default()
            }),
            ..probe(8)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(version: &str) -> (String, String) {
        let v = EtcdVersion::parse(version).ok();
        let path = |p: Probe| match (p.http_get, p.tcp_socket) {
            (Some(h), _) => h.path.unwrap_or_default(),
            (None, Some(t)) => format!("tcp:{:?}", t.port),
            _ => String::new(),
        };
        (path(readiness(v)), path(liveness(v)))
    }

    #[test]
    fn liveness_never_asks_for_a_leader() {
        assert_eq!(paths("3.6.5"), ("/readyz".into(), "/livez".into()));
        assert_eq!(paths("3.5.11"), ("/readyz".into(), "/livez".into()));
        assert_eq!(paths("3.5.10"), ("/health".into(), "/health?serializable=true".into()));
        assert_eq!(paths("3.4.23"), ("/health".into(), "tcp:Int(2379)".into()));
    }
}
