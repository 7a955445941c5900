#!/usr/bin/env bash
# Validates every committed manifest against the Kubernetes schemas of two
# versions, and docker-compose.yml against the Compose specification.
set -euo pipefail
cd "$(dirname "$0")/.."
manifests=(deploy/crds/*.yaml deploy/etcd-operator.yaml crates/resource/tests/snapshots/*.yaml)
for version in 1.33.0 1.37.0; do
  kubernetes-validate --strict --quiet -k "$version" "${manifests[@]}"
done
echo "${#manifests[@]} manifests valid for Kubernetes 1.33 and 1.37"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
