#!/usr/bin/env bash
# Sets up the machine, builds everything, and runs the cluster-service and the
# controllers against the cluster of $KUBECONFIG, or, when it is unset, against
# a local kube-sim preloaded with the CRDs and examples/etcdcluster.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace --locked
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
if [ -z "${KUBECONFIG:-}" ]; then
  # No cluster given: kube-sim serves the Kubernetes API locally, with the CRDs and a sample cluster.
  target/debug/kube-sim --listen 127.0.0.1:6443 --dir .kube-sim --apply deploy/crds --apply examples/etcdcluster.yaml & pids+=($!)
  for _ in $(seq 50); do [ -f .kube-sim/kubeconfig ] && break; sleep 0.2; done
  export KUBECONFIG="$PWD/.kube-sim/kubeconfig"
fi
target/debug/cluster-service --listen 127.0.0.1:9090 --admin-listen 127.0.0.1:8080 & pids+=($!)
for c in lifecycle health; do
  port=$([ "$c" = lifecycle ] && echo 8081 || echo 8082)
  POD_NAME="$c-local" target/debug/$c-controller --cluster-service-endpoint http://127.0.0.1:9090 \
    --admin-listen "127.0.0.1:$port" & pids+=($!)
done
cat <<MSG

Running: cluster-service (gRPC 127.0.0.1:9090, admin :8080), lifecycle (:8081) and health (:8082) controllers
against KUBECONFIG=$KUBECONFIG. Watch it:
  KUBECONFIG=$KUBECONFIG kubectl get etcdclusters,statefulsets,services,configmaps,pdb
  grpcurl -plaintext -d '{"namespace":"default"}' 127.0.0.1:9090 etcd_operator.v1alpha1.ClusterService/ListClusters
  curl -s 127.0.0.1:8081/metrics
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
