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
step "binaries";         cargo build --workspace --locked  # the end-to-end tests run them as processes (and run.sh builds this)
step "tests"
# The TLS variant: the system tests of membership, replacement, backup, restore and quorum
# recovery again, every cluster with operator-managed TLS (tests/system/src/secure.rs).
TLS_TESTS=(scaling scaling_crash recovery backup restore quorum_recovery)
if cargo nextest --version >/dev/null 2>&1; then
  status=0
  cargo nextest run --workspace --locked --no-fail-fast || status=$?
  step "tests, TLS variant"
  filter=$(printf 'binary(%s) | ' "${TLS_TESTS[@]}")
  # --workspace with a filter, not -p: the same features, so nothing is built again.
  SYSTEM_TESTS_TLS=1 cargo nextest run --workspace --locked --no-fail-fast \
    -E "package(system-tests) & (${filter% | })" || status=$?
  exit "$status"
else
  cargo test --workspace --locked --no-fail-fast
  step "tests, TLS variant"
  # shellcheck disable=SC2046
  SYSTEM_TESTS_TLS=1 cargo test -p system-tests --locked --no-fail-fast $(printf -- '--test %s ' "${TLS_TESTS[@]}")
fi
