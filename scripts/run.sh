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
echo "installing CRDs is your call: kubectl apply -f deploy/crds/"
exec target/debug/cluster-service --listen "${CLUSTER_SERVICE_LISTEN:-127.0.0.1:9090}" "$@"
