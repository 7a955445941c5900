//! What the security service decides, from Secrets' contents and the time:
//! which certificates to issue or renew, whether they are usable, and what
//! the status says about them. Pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use etcd_operator_api::cluster::{
    CertificateStatus, TlsSpec,
    tls::{OperatorManagedTls, SECRET_KEYS},
};
use etcd_operator_common::{Violations, duration::parse_duration};
use etcd_operator_resource::templates::tls::Purpose;

use super::certs::{self, Facts, Unusable};

/// A Secret as read: its name, and its data when it exists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretView {
    /// Name of the Secret.
    pub name: String,
    /// Its data; `None` when the Secret does not exist.
    pub data: Option<BTreeMap<String, Vec<u8>>>,
}

/// One certificate as found in its Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// What it is for.
    pub purpose: Purpose,
    /// The Secret holding it.
    pub secret: String,
    /// What the Secret holds.
    pub state: Finding,
}

/// The state of a certificate Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The Secret does not exist.
    Missing,
    /// The Secret lacks these keys.
    KeysMissing(Vec<&'static str>),
    /// The keys are there but cannot be used.
    Unusable(Unusable),
    /// A certificate that chains to its CA, with its dates.
    Usable(Facts),
}

/// Reads one certificate Secret.
pub fn examine(purpose: Purpose, secret: &SecretView) -> Found {
    let state = match &secret.data {
        None => Finding::Missing,
        Some(data) => {
            let missing: Vec<&'static str> =
                SECRET_KEYS.into_iter().filter(|k| !data.contains_key(*k)).collect();
            if missing.is_empty() {
                match certs::inspect(&data["tls.crt"], &data["tls.key"], &data["ca.crt"]) {
                    Ok(facts) => Finding::Usable(facts),
                    Err(e) => Finding::Unusable(e),
                }
            } else {
                Finding::KeysMissing(missing)
            }
        }
    };
    Found { purpose, secret: secret.name.clone(), state }
}

/// Every certificate of a cluster with spec.tls, as the status reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateReport {
    /// Client, peer and operator certificates.
    pub found: Vec<Found>,
    /// Lifetimes of operator-managed certificates (`None`: provided Secrets).
    pub managed: Option<Lifetimes>,
    /// Why operator-managed certificates cannot be issued, if they cannot.
    pub problem: Option<CaProblem>,
}

impl CertificateReport {
    /// The `CertificatesReady` condition now: (status, reason, message).
    pub fn condition(&self, now: DateTime<Utc>) -> (bool, &'static str, String) {
        condition(&self.found, self.managed, self.problem.as_ref(), now)
    }

    /// The status entries.
    pub fn statuses(&self) -> Vec<CertificateStatus> {
        self.found.iter().map(|f| f.status(self.managed)).collect()
    }
}

/// The operator-managed CA, if its Secret holds one that can sign; `Err` says what is wrong with it.
pub fn ca_state(ca: &SecretView) -> Result<certs::Pair, String> {
    let data = ca.data.as_ref().ok_or("does not exist")?;
    let crt = data.get("ca.crt").ok_or("has no key ca.crt")?;
    let key = data.get("ca.key").ok_or("has no key ca.key")?;
    let pair = certs::Pair {
        crt: String::from_utf8_lossy(crt).into_owned(),
        key: String::from_utf8_lossy(key).into_owned(),
    };
    certs::ca_usable(&pair).map_err(|e| format!("cannot sign: {e}"))?;
    Ok(pair)
}

/// A change to operator-managed certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Issue {
    /// A new CA (only for a cluster none of whose certificates exist yet).
    Ca,
    /// A new certificate and key from the CA.
    Leaf(Purpose),
}

/// Why operator-managed certificates cannot be issued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CaProblem {
    /// The CA Secret is gone or broken while certificates it signed are in use.
    #[error(
        "the CA Secret {secret} {what}, but certificates it signed exist: a new CA would cut the members off from \
         each other (etcd reads its trusted CAs only at start), so nothing is issued. Restore {secret} from a \
         backup of the namespace's Secrets"
    )]
    Lost { secret: String, what: String },
}

/// Durations of operator-managed certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Lifetime of a certificate.
    pub validity: chrono::Duration,
    /// Renew this long before it ends.
    pub renew_before: chrono::Duration,
}

impl Lifetimes {
    /// Parses the spec (validated before; malformed values fall back to the defaults).
    pub fn of(m: &OperatorManagedTls) -> Self {
        let d = OperatorManagedTls::default();
        let parse = |s: &str, default: &str| {
            parse_duration(s).or_else(|_| parse_duration(default)).unwrap_or_default()
        };
        let to = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or_default();
        Self {
            validity: to(parse(&m.validity, &d.validity)),
            renew_before: to(parse(&m.renew_before, &d.renew_before)),
        }
    }
}

/// What to issue so that every operator-managed certificate exists, chains to the CA and is
/// not due for renewal. `ca` is the CA Secret's state ([`ca_state`]).
pub fn plan(
    ca: &Result<certs::Pair, String>,
    ca_secret: &str,
    leaves: &[Found],
    now: DateTime<Utc>,
    lifetimes: Lifetimes,
) -> Result<Vec<Issue>, CaProblem> {
    let due = |f: &Found| match &f.state {
        Finding::Usable(facts) => now >= facts.not_after - lifetimes.renew_before,
        Finding::Missing | Finding::KeysMissing(_) | Finding::Unusable(_) => true,
    };
    let mut out = Vec::new();
    if let Err(what) = ca {
        if leaves.iter().any(|f| f.state != Finding::Missing) {
            return Err(CaProblem::Lost { secret: ca_secret.to_owned(), what: what.clone() });
        }
        out.push(Issue::Ca);
    }
    out.extend(leaves.iter().filter(|f| due(f)).map(|f| Issue::Leaf(f.purpose)));
    Ok(out)
}

/// The `CertificatesReady` condition: (status, reason, message).
pub fn condition(
    found: &[Found],
    managed: Option<Lifetimes>,
    problem: Option<&CaProblem>,
    now: DateTime<Utc>,
) -> (bool, &'static str, String) {
    if let Some(p) = problem {
        return (false, "CALost", p.to_string());
    }
    let what = |f: &Found| format!("Secret {} ({} certificate)", f.secret, f.purpose.as_str());
    for f in found {
        let bad = match &f.state {
            Finding::Missing => Some(("SecretMissing", format!("{} does not exist", what(f)))),
            Finding::KeysMissing(keys) => Some((
                "SecretKeyMissing",
                format!("{} has no key {}; it needs tls.crt, tls.key and ca.crt", what(f), keys.join(", ")),
            )),
            Finding::Unusable(Unusable::WrongCa { .. }) => {
                Some(("WrongCA", format!("{}: {}", what(f), f.state_message())))
            }
            Finding::Unusable(_) => {
                Some(("CertificateInvalid", format!("{}: {}", what(f), f.state_message())))
            }
            Finding::Usable(facts) if now >= facts.not_after => Some((
                "CertificateExpired",
                format!("{} expired at {}", what(f), facts.not_after.to_rfc3339()),
            )),
            Finding::Usable(_) => None,
        };
        if let Some((reason, message)) = bad {
            return (false, reason, message);
        }
    }
    let expiring = found.iter().find_map(|f| match &f.state {
        Finding::Usable(facts) if now >= facts.not_after - warn_within(facts, managed) => Some((f, facts)),
        _ => None,
    });
    if let Some((f, facts)) = expiring {
        let hint = if managed.is_some() {
            "renewal is overdue: see the cluster-service's log"
        } else {
            "renew it in place (cert-manager does so before expiry)"
        };
        return (
            false,
            "CertificateExpiring",
            format!("{} expires at {}; {hint}", what(f), facts.not_after.to_rfc3339()),
        );
    }
    (
        true,
        "CertificatesValid",
        "every certificate is present, chains to its CA and is not about to expire".into(),
    )
}

/// How long before expiry the condition warns: operator-managed certificates are renewed at
/// renewBefore, so half of it means renewal failed; provided ones warn with a week (or a third
/// of their lifetime) to go, after cert-manager's renewal at two thirds of it.
fn warn_within(facts: &Facts, managed: Option<Lifetimes>) -> chrono::Duration {
    match managed {
        Some(l) => l.renew_before / 2,
        None => chrono::Duration::days(7).min((facts.not_after - facts.not_before) / 3),
    }
}

impl Found {
    /// Why the certificate cannot be used; `None` when it can.
    pub fn problem(&self) -> Option<String> {
        match &self.state {
            Finding::Usable(_) => None,
            Finding::Missing => Some(format!("Secret {} does not exist", self.secret)),
            Finding::KeysMissing(keys) => {
                Some(format!("Secret {} has no key {}", self.secret, keys.join(", ")))
            }
            Finding::Unusable(e) => Some(e.to_string()),
        }
    }

    fn state_message(&self) -> String {
        match &self.state {
            Finding::Unusable(e) => e.to_string(),
            other => format!("{other:?}"),
        }
    }

    /// The status entry of this certificate.
    pub fn status(&self, managed: Option<Lifetimes>) -> CertificateStatus {
        let facts = match &self.state {
            Finding::Usable(f) => Some(f),
            _ => None,
        };
        CertificateStatus {
            purpose: self.purpose.as_str().to_owned(),
            secret_name: self.secret.clone(),
            not_after: facts.map(|f| f.not_after.to_rfc3339()),
            renews_at: facts.zip(managed).map(|(f, l)| (f.not_after - l.renew_before).to_rfc3339()),
        }
    }
}

/// The service's checks of spec.tls (the CRD's CEL rules, for specs that bypass them).
pub fn validate(tls: &TlsSpec, v: &mut Violations) {
    v.check(
        tls.operator_managed.is_some() != tls.provided.is_some(),
        "spec.tls",
        "must set exactly one of operatorManaged or provided",
    );
    if let Some(m) = &tls.operator_managed {
        let validity = parse_duration(&m.validity);
        let renew = parse_duration(&m.renew_before);
        match &validity {
            Ok(d) => v.check(
                *d >= std::time::Duration::from_secs(600),
                "spec.tls.operatorManaged.validity",
                "must be at least 10m",
            ),
            Err(e) => v.push("spec.tls.operatorManaged.validity", e.clone()),
        }
        match &renew {
            Ok(d) => v.check(
                *d >= std::time::Duration::from_secs(60),
                "spec.tls.operatorManaged.renewBefore",
                "must be at least 1m",
            ),
            Err(e) => v.push("spec.tls.operatorManaged.renewBefore", e.clone()),
        }
        if let (Ok(validity), Ok(renew)) = (validity, renew) {
            v.check(
                renew < validity,
                "spec.tls.operatorManaged.renewBefore",
                "must be shorter than spec.tls.operatorManaged.validity",
            );
        }
    }
    if let Some(p) = &tls.provided {
        for (field, name) in [
            ("spec.tls.provided.clientSecretName", &p.client_secret_name),
            ("spec.tls.provided.peerSecretName", &p.peer_secret_name),
            ("spec.tls.provided.operatorSecretName", &p.operator_secret_name),
        ] {
            let dns = !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric());
            v.check(dns, field, "must be a Secret name: lowercase letters, digits, '-' and '.'");
        }
    }
}

pub mod auth;
pub mod rotation;
#[cfg(test)]
mod rotation_tests;
#[cfg(test)]
mod tests;
pub mod transport;
#[cfg(test)]
mod transport_tests;
