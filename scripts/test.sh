#!/usr/bin/env bash
# Every check CI runs: formatting, lints, generated-artifact drift, dependency
# duplicates, manifest validation, and the whole test suite (real etcd inside).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in protoc kubernetes-validate check-jsonschema kubectl moto_server nft grpcurl promtool; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/setup.sh first" >&2; exit 1; }
done
python3 -c "import helm_python" 2>/dev/null || { echo "missing helm-python-sdk: run scripts/setup.sh first" >&2; exit 1; }
[ -x /usr/bin/etcd ] || [ -n "${ETCD_BIN:-}" ] || { echo "missing etcd: run scripts/setup.sh first" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }
step "format";           cargo fmt --all --check
step "lints";            cargo clippy --workspace --all-targets --locked -- -D warnings
step "CRD drift";        cargo run -q --locked -p etcd-operator-api --bin crdgen -- --check
step "duplicate deps";   scripts/check-deps.sh
step "service layout";   scripts/check-service-layout.sh  # pure decisions, no import circles
step "manifests";        scripts/check-manifests.sh
step "helm chart";       python3 scripts/chart.py check
step "protobuf table";   python3 scripts/protobuf_messages.py --check  # kube-sim reads kubectl's protobuf bodies with it
step "alert rules";      promtool check rules helm/etcd-operator/files/etcd-operator.rules.yaml \
                           && promtool test rules monitoring/rules.test.yaml
# The end-to-end tests run the binaries as processes. They are built with the tests, in one
# build: built alone (as run.sh does) they leave out the dev-dependencies' features
# (opentelemetry_sdk's `testing`), and the tests' build would compile everything above
# opentelemetry a second time (~4 min of CI).
step "binaries and tests"; cargo build --workspace --locked --bins --tests
step "tests"
# The system tests of membership, replacement, backup, restore and quorum recovery run twice:
# as written and as their TLS variant (`<test>_tls_variant` in tests/system/Cargo.toml: every
# cluster with operator-managed TLS and auth), side by side in this one run.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
