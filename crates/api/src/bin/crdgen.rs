//! Writes the generated CRDs into the given directories (default: `deploy/crds` and the
//! Helm chart's `helm/etcd-operator/crds`).
//!
//! `crdgen --check DIR...` fails instead of writing when a file differs.

#![warn(clippy::too_many_lines)]

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.first().is_some_and(|a| a == "--check");
    if check {
        args.remove(0);
    }
    if args.is_empty() {
        args.extend(["deploy/crds".into(), "helm/etcd-operator/crds".into()]);
    }
    let mut drift = false;
    for dir in args.iter().map(PathBuf::from) {
        for (file, crd) in etcd_operator_api::crd::all() {
            let path = dir.join(file);
            let yaml = etcd_operator_api::crd::to_yaml(&crd);
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current == yaml {
                continue;
            }
            if check {
                eprintln!(
                    "{} is out of date; run `cargo run -p etcd-operator-api --bin crdgen`",
                    path.display()
                );
                drift = true;
            } else if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, &yaml)) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            } else {
                println!("wrote {}", path.display());
            }
        }
    }
    if drift { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
