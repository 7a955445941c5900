//! etcd's own pre-3.6 check (`etcdutl check v2store`), at the one moment a member's data directory
//! is not in use: the first start of a member whose pod runs 3.6 or later on data an older etcd
//! wrote. The operator never sets `--enable-v2`, and a restore brings back no v2 content, so per
//! etcd's upgrade guide nothing is expected here; the check makes that evidence, not an
//! assumption. A member refused here keeps its data untouched and etcd 3.6 never opens it; the
//! roll stops at it, naming it and this message.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use etcd_operator_api::version::EtcdVersion;

/// `<data-dir>.v2store-checked`, beside the data directory on the same volume: written once a
/// check passed, so later restarts of the member do not read its whole history again.
pub fn marker(data_dir: &Path) -> PathBuf {
    crate::beside(data_dir, ".v2store-checked")
}

/// Whether a member of `version` holding data must be checked before it starts.
pub fn needed(version: &str, data_dir: &Path) -> bool {
    let refuses = EtcdVersion::parse(version).is_ok_and(|v| v.refuses_v2_custom_content());
    refuses && data_dir.join("member").is_dir() && !marker(data_dir).exists()
}

/// Runs `etcdutl check v2store` on the data directory; records a pass, refuses otherwise.
pub fn check(etcdutl: &Path, data_dir: &Path) -> Result<String, String> {
    let run = |args: &[&str]| {
        Command::new(etcdutl).args(args).output().map_err(|e| format!("{}: {e}", etcdutl.display()))
    };
    let help = run(&["check", "v2store", "--help"])?;
    if !help.status.success() {
        return Err(format!(
            "{} has no `check v2store` (etcdutl 3.5.26+ or 3.6 has it): the member is not started on 3.6 \
             without etcd's pre-upgrade check; use an operator image with a newer etcdutl",
            etcdutl.display()
        ));
    }
    let dir = data_dir.display().to_string();
    let out = run(&["check", "v2store", "--data-dir", &dir])?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let said = said.trim();
    if !out.status.success() {
        return Err(format!(
            "etcd's pre-3.6 check refuses {dir}: {said}. etcd 3.6 would not start on it; the data is left \
             untouched (see etcd's v2 migration guide)"
        ));
    }
    let marker = marker(data_dir);
    std::fs::write(&marker, said).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(format!("etcd's pre-3.6 check passed on {dir}: {said}"))
}

#[cfg(test)]
#[path = "v2store_tests.rs"]
mod tests;
