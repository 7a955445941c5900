#!/usr/bin/env bash
# Sets up the machine, builds everything, and runs the cluster-service and the
# controllers against the cluster of $KUBECONFIG, or, when it is unset, against
# a local kube-sim whose node runs the etcd pods as real processes (as root),
# preloaded with the CRDs and examples/local-etcdcluster.yaml. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace --locked
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
with_cluster_dns=()
service_flags=()
listen=127.0.0.1:9090
if [ -z "${KUBECONFIG:-}" ]; then
  # The operator's image runs this build's binaries, each by its command's name (the restore agent of restored clusters).
  node=(--node --max-probe-period 2 --image "ghcr.io/etcd-k8s-operator/etcd-operator=$PWD/target/debug")
  if [ "$(id -u)" -ne 0 ]; then
    echo "not root: kube-sim runs without its node, so etcd pods stay Pending (the node needs network namespaces)" >&2
    node=()
  fi
  rm -f .kube-sim/kubeconfig .kube-sim/node/host-ip
  target/debug/kube-sim --listen 127.0.0.1:6443 --dir .kube-sim "${node[@]}" \
    --apply deploy/crds --apply examples/local-etcdcluster.yaml & pids+=($!)
  for _ in $(seq 50); do [ -f .kube-sim/kubeconfig ] && break; sleep 0.2; done
  export KUBECONFIG="$PWD/.kube-sim/kubeconfig"
  # The cluster-service reaches members by their cluster DNS names: give it the node's hosts file.
  if [ ${#node[@]} -gt 0 ]; then
    with_cluster_dns=(unshare --mount sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$PWD/.kube-sim/node/hosts")
    # Pods (restore agents) reach the cluster-service through the node's bridge address.
    for _ in $(seq 50); do [ -f .kube-sim/node/host-ip ] && break; sleep 0.2; done
    listen=0.0.0.0:9090
    host_ip=$(cat .kube-sim/node/host-ip)
    service_flags=(--etcd-hosts-file "$PWD/.kube-sim/node/hosts"
      --restore-endpoint "https://$host_ip:9090" --tls-san "$host_ip")
  fi
fi
# Identities, as the chart gives them: its ServiceAccounts and roles (not its Deployments: these
# processes run here), a token of each controller's account for the cluster-service's audience,
# and an account for tooling (examples/api-tooling.yaml).
python3 - <<'PY' | kubectl apply -f - >/dev/null
import yaml
kinds = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
docs = [d for d in yaml.safe_load_all(open("deploy/etcd-operator.yaml")) if d and d["kind"] in kinds]
print(yaml.safe_dump_all(docs))
PY
kubectl apply -f examples/api-tooling.yaml >/dev/null
mkdir -p .tokens
for c in lifecycle health scaling backup recovery; do
  kubectl -n etcd-operator create token "etcd-operator-$c-controller" --audience etcd-operator --duration 24h >".tokens/$c"
done
"${with_cluster_dns[@]}" target/debug/cluster-service --listen "$listen" --admin-listen 127.0.0.1:8080 \
  --snapshot-dir "$PWD/.snapshots" --backup-volume-root "$PWD/.backups" "${service_flags[@]}" & pids+=($!)
# Claim "local" of examples/local-etcdbackup.yaml, mounted for namespace default.
mkdir -p .backups/default/local
# The API serves TLS from a CA the cluster-service makes once (Secret etcd-operator-api-ca) and
# publishes (ConfigMap etcd-operator-api-ca): its callers verify the server with it.
for _ in $(seq 150); do
  kubectl -n etcd-operator get configmap etcd-operator-api-ca -o jsonpath='{.data.ca\.crt}' >.tokens/ca.crt 2>/dev/null || true
  [ -s .tokens/ca.crt ] && break; sleep 0.2
done
[ -s .tokens/ca.crt ] || { echo "the cluster-service published no CA (ConfigMap etcd-operator/etcd-operator-api-ca)" >&2; exit 1; }
port=8081
for c in lifecycle health scaling backup recovery; do
  POD_NAME="$c-local" target/debug/$c-controller --cluster-service-endpoint https://127.0.0.1:9090 \
    --ca-file .tokens/ca.crt --token-file ".tokens/$c" --admin-listen "127.0.0.1:$port" & pids+=($!)
  port=$((port + 1))
done
cat <<MSG

Running: cluster-service (gRPC over TLS 127.0.0.1:9090, admin :8080), lifecycle (:8081), health (:8082),
scaling (:8083), backup (:8084) and recovery (:8085) controllers against KUBECONFIG=$KUBECONFIG. Watch it:
  export KUBECONFIG=$KUBECONFIG
  kubectl get etcd --watch                       # phase goes Creating -> Running
  kubectl get etcd demo -o yaml                  # members, leader, conditions
  kubectl get statefulsets,pods,pvc
  kubectl patch etcd demo --type=merge -p '{"spec":{"size":5}}'   # scale: one learner at a time
  kubectl apply -f examples/local-etcdbackup.yaml  # a backup now and one every minute, into .backups/default/local
  kubectl get etcdbackups,etcdbackupschedules     # phase, size, revision; last success, next run
  kubectl apply -f examples/local-etcdcluster-restored.yaml  # a new cluster from backup demo-now
  etcdctl --endpoints=http://\$(kubectl get pod demo-0 -o jsonpath='{.status.podIP}'):2379 put hello world
  TOKEN=\$(kubectl create token etcd-tooling --audience etcd-operator)   # tooling's identity (examples/api-tooling.yaml)
  kubectl -n etcd-operator get configmap etcd-operator-api-ca -o jsonpath='{.data.ca\.crt}' >api-ca.crt   # the API's CA
  grpcurl -cacert api-ca.crt -H "authorization: Bearer \$TOKEN" -d '{"namespace":"default"}' 127.0.0.1:9090 etcd_operator.v1alpha1.ClusterService/ListClusters
  kubectl apply -f examples/local-etcdcluster-tls.yaml  # cluster "secure": operator-managed TLS, etcd auth
  kubectl get etcd secure -o jsonpath='{.status.certificates}'          # each certificate, its Secret and expiry
  grpcurl -cacert api-ca.crt -H "authorization: Bearer \$TOKEN" -d '{"cluster":{"namespace":"default","name":"secure"}}' 127.0.0.1:9090 etcd_operator.v1alpha1.SecurityService/GetCertificates
  curl -s 127.0.0.1:8081/metrics
  export ETCDOPCTL_SERVER=https://127.0.0.1:9090 PATH=$PWD/target/debug:\$PATH   # etcdopctl, and the kubectl plugin kubectl-etcd
  etcdopctl list                                 # the API's view of every cluster (-o json|yaml, --watch)
  etcdopctl status demo                          # members, leader, db sizes, conditions, the operation in progress
  etcdopctl scale demo 3                         # follows every step; Ctrl-C leaves it running
  etcdopctl backup now demo --claim local        # a backup now, followed to the verified copy in .backups/default/local/demo
  etcdopctl backup list demo                     # newest first: phase, size, revision, schedule
  kubectl etcd status demo                       # the same tool as a kubectl plugin
Pod logs: .kube-sim/node/logs/. Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
