//! Time stamps in the Kubernetes format.

/// Now, as RFC 3339 with second precision in UTC (`2026-11-25T21:39:55Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
