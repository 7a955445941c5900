#!/usr/bin/env bash
# The code's shape: the service layer's pure decisions stay pure, and no
# crate's module imports form a circle.
#
# Pure: every `decide.rs` and `decide/*.rs` under crates/service/src, and the
# shared pure modules below, import neither kube, nor tokio, nor the client
# crate (their inputs are the service's own plain types, converted at the edge
# in observe/gather.rs). Their tests (`*tests.rs`) may build anything.
set -euo pipefail
cd "$(dirname "$0")/.."

src=crates/service/src
shared=(membership.rs operation.rs plan/mod.rs quorum_evidence.rs refusal.rs transfer.rs observe/mod.rs)
mapfile -t pure < <(
  { find "$src" -name decide.rs; find "$src" -path '*/decide/*.rs' ! -name 'tests.rs'
    for f in "${shared[@]}"; do echo "$src/$f"; done; } | sort -u
)
status=0
for f in "${pure[@]}"; do
  # `use kube…`, `kube::…`, `tokio::…`, `etcd_operator_client::…` anywhere outside comments.
  if hits=$(grep -nE '^[^/]*\b(kube|tokio|etcd_operator_client)::|^\s*use\s+(kube|tokio|etcd_operator_client)\b' "$f"); then
    echo "$f must stay pure (no kube, tokio or client crate):"
    echo "$hits" | sed 's/^/    /'
    status=1
  fi
done
echo "${#pure[@]} pure decision files checked"
# Every crate with a src/ (product, kube-sim, test support): no circle between modules two
# levels deep (`super::` and `self::` imports count).
for crate in crates/* services/* tests/kube-sim tests/system; do
  [ -d "$crate/src" ] || continue
  python3 scripts/import_cycles.py "$crate" --depth 2 >/dev/null || {
    python3 scripts/import_cycles.py "$crate" --depth 2; status=1; }
done
echo "no import circle in any crate (two levels deep)"
exit $status
