#!/usr/bin/env bash
# Sets up the machine, builds everything, and runs the cluster-service
# against the Kubernetes cluster of $KUBECONFIG (default ~/.kube/config).
# The local Kubernetes emulator (kube-sim) will make this self-contained.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace --locked
kubeconfig="${KUBECONFIG:-$HOME/.kube/config}"
if [ ! -f "$kubeconfig" ] && [ -z "${KUBERNETES_SERVICE_HOST:-}" ]; then
  cat >&2 <<MSG
Built. To run the cluster-service it needs a Kubernetes API:
  export KUBECONFIG=/path/to/kubeconfig
  kubectl apply -f deploy/crds/
  scripts/run.sh
MSG
  exit 1
fi
echo "the CRDs must be installed: kubectl apply -f deploy/crds/"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
target/debug/cluster-service --listen 127.0.0.1:9090 --admin-listen 127.0.0.1:8080 & pids+=($!)
for c in lifecycle health; do
  port=$([ "$c" = lifecycle ] && echo 8081 || echo 8082)
  POD_NAME="$c-local" target/debug/$c-controller --cluster-service-endpoint http://127.0.0.1:9090 \
    --admin-listen "127.0.0.1:$port" & pids+=($!)
done
echo "cluster-service on 127.0.0.1:9090 (admin :8080); lifecycle (:8081) and health (:8082) controllers; Ctrl-C stops them"
wait -n "${pids[@]}"
