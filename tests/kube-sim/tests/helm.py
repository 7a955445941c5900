"""Helm's engine (helm-python-sdk: Helm 4's Go SDK, no helm binary) installs, upgrades and
uninstalls the project's chart against kube-sim; kubectl checks what each step left.

Usage: python3 helm.py <kubeconfig> <chart directory>
"""
import json
import subprocess
import sys

import helm_python as helm

kubeconfig, chart = sys.argv[1], sys.argv[2]
NS = "etcd-operator"
cfg = helm.Config(kubeconfig_path=kubeconfig, namespace=NS)


def kubectl(*args):
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


def names(kind):
    code, out = kubectl("-n", NS, "get", kind, "-o", "json")
    assert code == 0, out
    return sorted(item["metadata"]["name"] for item in json.loads(out)["items"])


# A dry run renders against the server (lookups) and stores nothing.
dry = cfg.install(chart, "eo", namespace=NS, create_namespace=True, dry_run="server", timeout=60)
assert "kind: Deployment" in dry["manifest"], dry
code, out = kubectl("get", "namespace", NS)
assert code != 0 and "not found" in out, out

release = cfg.install(chart, "eo", namespace=NS, create_namespace=True, timeout=60)
assert release["status"] == "deployed" and release["revision"] == 1, release
deployments = names("deployments")
assert "eo-etcd-operator-cluster-service" in deployments and len(deployments) == 6, deployments
assert names("secrets") == ["sh.helm.release.v1.eo.v1"], names("secrets")

release = cfg.upgrade(chart, "eo", {"clusterService": {"replicas": 1}}, namespace=NS, timeout=60)
assert release["status"] == "deployed" and release["revision"] == 2, release
code, out = kubectl("-n", NS, "get", "deployment", "eo-etcd-operator-cluster-service", "-o", "jsonpath={.spec.replicas}")
assert out == "1", out
assert names("secrets") == ["sh.helm.release.v1.eo.v1", "sh.helm.release.v1.eo.v2"], names("secrets")

cfg.uninstall("eo", timeout=60)
assert names("deployments") == [], names("deployments")
assert names("secrets") == [], names("secrets")
code, out = kubectl("get", "clusterrole", "-l", "app.kubernetes.io/instance=eo", "-o", "name")
assert code == 0 and out.strip() == "", out
print("ok")
