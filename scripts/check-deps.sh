#!/usr/bin/env bash
# Fails when two versions of a crate that must be single are in the build
# (two tonic/prost/kube/opentelemetry versions mean incompatible types and double build time).
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='^(tonic|tonic-[a-z-]+|prost|prost-[a-z-]+|kube|kube-[a-z-]+|k8s-openapi|opentelemetry[a-z_-]*|tracing-opentelemetry) v'
dups=$(cargo tree --workspace -d --depth 0 --prefix none -e normal,build,dev 2>/dev/null \
  | grep -E "$pattern" | awk '{print $1, $2}' | sort -u | awk '{print $1}' | uniq -d || true)
if [ -n "$dups" ]; then
  echo "more than one version of: $dups" >&2
  cargo tree --workspace -d -e normal,build,dev | grep -E "$pattern" >&2
  exit 1
fi
echo "no duplicate tonic/prost/kube/opentelemetry versions"
