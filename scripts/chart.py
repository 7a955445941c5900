#!/usr/bin/env python3
"""The Helm chart's checks, with Helm's own engine (helm-python-sdk), and the
generation of deploy/ from it.

  scripts/chart.py check      lint; render the defaults and several value sets; validate every
                              object against the Kubernetes schemas of two versions; check RBAC
                              against what each component uses, the "restricted" Pod Security
                              profile of every pod (the operator's and the etcd members' template),
                              that values.schema.json rejects bad values, and that deploy/ is what
                              the chart renders
  scripts/chart.py generate   write deploy/etcd-operator.yaml from the chart's defaults
  scripts/chart.py render [--set-json JSON] [--namespace NS] [--no-crds]
                              print the rendered manifests (what kube-sim installs in the tests)
"""

import argparse
import json
import pathlib
import sys

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "etcd-operator"
DEPLOY = ROOT / "deploy" / "etcd-operator.yaml"
NAMESPACE = "etcd-operator"
KUBERNETES_VERSIONS = ["1.33.0", "1.37.0"]
# Kinds of other projects' CRDs: no schema in kubernetes-validate; checked by shape only.
FOREIGN_GROUPS = {"monitoring.coreos.com/v1"}

VALUE_SETS = {
    "defaults": {},
    "namespace-scoped": {"watchNamespace": "prod"},
    "ha": {
        "clusterService": {"replicas": 3},
        "controllers": {k: {"replicas": 3} for k in ["lifecycle", "scaling", "health", "recovery", "backup"]},
    },
    "tracing-monitoring-networkpolicy": {
        "tracing": {"otlpEndpoint": "http://otel-collector.observability:4317"},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "podMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "clusterService": {"backupClaims": [{"claim": "etcd-backups", "namespace": "prod"}], "snapshotClaimName": "etcd-snapshots",
                           "s3Endpoints": ["https://minio.storage.svc:9000"]},
        "logging": {"format": "text", "level": "debug"},
    },
    "single-replica-custom-images": {
        "image": {"tag": "0.1.0-rc1"},
        "clusterService": {"replicas": 1, "image": {"repository": "registry.local/cluster-service"}},
        "controllers": {"backup": {"enabled": False}, "health": {"replicas": 1, "probeInterval": "10s"}},
        "leaderElection": {"leaseDuration": "30s", "renewGrace": "10s"},
        "api": {"caSecretName": "platform-issued-ca", "servingCertificateValidity": "24h"},
    },
}

# Values the schema must reject, with the path its message must name.
BAD_VALUES = [
    ({"clusterService": {"replicas": -1}}, "/clusterService/replicas"),
    ({"controllers": {"health": {"probeInterval": "often"}}}, "/controllers/health/probeInterval"),
    ({"logging": {"format": "xml"}}, "/logging/format"),
    ({"watchNamespace": "Prod_1"}, "/watchNamespace"),
    ({"leaderElection": {"leaseDuration": "15"}}, "/leaderElection/leaseDuration"),
    ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext/runAsNonRoot"),
    ({"containerSecurityContext": {"allowPrivilegeEscalation": True}}, "/containerSecurityContext/allowPrivilegeEscalation"),
    ({"controllers": {"scaling": {"extraArgs": ["oops"]}}}, "/controllers/scaling/extraArgs/0"),
    ({"tracing": {"otlpEndpoint": "collector:4317"}}, "/tracing/otlpEndpoint"),
    ({"controllers": {"sharding": {"enabled": True}}}, "/controllers"),
    ({"clusterService": {"service": {"port": 70000}}}, "/clusterService/service/port"),
    ({"clusterService": {"s3Endpoints": ["minio:9000"]}}, "/clusterService/s3Endpoints/0"),
    # A backup claim is always mapped to exactly one namespace.
    ({"clusterService": {"backupClaims": [{"claim": "etcd-backups"}]}}, "/clusterService/backupClaims/0"),
]

# Which grants each component needs is proven, not listed: the chart's end-to-end test
# (tests/e2e/tests/chart.rs) fails on any grant its run never used (but for documented rare
# paths) and on any request or RPC of the chart's accounts that RBAC refused. Here: only the
# shape that no run shows, checked for every value set.
LEASE_VERBS = {(None, "create"), ("name", "get"), ("name", "patch")}


# Values each valid alone that contradict each other: rendering fails with Helm's `fail`,
# naming them.
CONTRADICTIONS = [
    ({"leaderElection": {"leaseDuration": "2s", "renewGrace": "5s"}},
     [": leaderElection.renewGrace (5s)", "than leaderElection.leaseDuration (2s)"]),
    ({"controllers": {"health": {"leaderElection": {"leaseDuration": "10s", "renewGrace": "10s"}}}},
     [": controllers.health.leaderElection.renewGrace (10s)"]),
    ({"clusterService": {"replicas": 1, "podDisruptionBudget": {"enabled": True, "minAvailable": 2}}},
     ["clusterService.podDisruptionBudget.minAvailable (2)", "clusterService.replicas (1)"]),
    ({"clusterService": {"replicas": 3, "podDisruptionBudget": {"enabled": True, "minAvailable": 3}}},
     ["clusterService.podDisruptionBudget.minAvailable (3)"]),
]


def render(values, namespace=NAMESPACE):
    """Objects the chart renders (CRDs first), with the template each came from."""
    with helm.Chart.load(str(CHART)) as chart:
        merged = chart.merge_values(values)
        chart.validate_schema(merged)
        manifests = chart.render(values, name="etcd-operator", namespace=namespace, is_install=True)
        crds = list(chart.crds)
    objects = []
    for crd in crds:
        objects.append(("crds/" + pathlib.Path(crd["name"]).name, yaml.safe_load(crd["data"])))
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append((path, doc))
    return objects


def fail(problems, what):
    if problems:
        print(f"FAILED: {what}", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(1)


def validate_schemas(name, objects):
    problems = []
    for path, obj in objects:
        if obj.get("apiVersion") in FOREIGN_GROUPS:
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{name}: {path} {obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}): {e.message}")
    fail(problems, f"Kubernetes schema validation of {name}")


def component_of(obj):
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/name")


def check_rbac(name, objects, watch_namespace):
    """Nothing wild, nothing cluster-wide in a namespace-scoped install (but the reviews of gRPC
    callers), Roles only where they belong, and each controller's Lease by name."""
    problems = []
    leases = {}
    for _, obj in objects:
        if obj["kind"] not in ("Role", "ClusterRole"):
            continue
        comp = component_of(obj)
        role = obj["metadata"]["name"]
        leader_election = role.endswith("-leader-election")
        # The reviews of gRPC callers are cluster-scoped APIs, whatever the install's scope.
        auth_delegator = role.endswith("-auth-delegator")
        # The API's CA lives in the release's namespace, whatever the install's scope.
        api_ca = role.endswith("-api-ca")
        if obj["kind"] == "ClusterRole" and watch_namespace and not auth_delegator:
            problems.append(f"{name}: ClusterRole {role} in a namespace-scoped install")
        home = NAMESPACE if (leader_election or api_ca) else (watch_namespace or NAMESPACE)
        if obj["kind"] == "Role" and obj["metadata"]["namespace"] != home:
            problems.append(f"{name}: Role {role} outside namespace {home}")
        for rule in obj["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                if "*" in rule.get(field, []):
                    problems.append(f"{name}: {role} grants '*' {field}")
            if api_ca and set(rule["verbs"]) - {"create"} and len(rule.get("resourceNames", [])) != 1:
                problems.append(f"{name}: {role} reads or changes more than the API's CA")
            if leader_election:
                scope = "name" if rule.get("resourceNames") else None
                for verb in rule["verbs"]:
                    leases.setdefault(comp, set()).add((scope, verb))
                if rule.get("resourceNames") and rule["resourceNames"] != [f"etcd-operator-{comp}"]:
                    problems.append(f"{name}: {comp} may use Leases {rule['resourceNames']}")
    for comp, got in leases.items():
        if got != LEASE_VERBS:
            problems.append(f"{name}: {comp} leader election grants {sorted(got, key=str)}")
    deployed = {component_of(obj) for _, obj in objects if obj["kind"] == "Deployment"}
    for _, obj in objects:
        if obj["kind"] in ("Role", "ClusterRole") and component_of(obj) not in deployed:
            problems.append(f"{name}: {component_of(obj)} is not deployed but keeps {obj['metadata']['name']}")
    fail(problems, f"RBAC of {name}")


def pod_problems(where, spec):
    """The Pod Security Standards "restricted" profile, as the admission plugin checks it."""
    problems = []
    pod_sc = spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{where}: {key}")
    for vol in spec.get("volumes", []):
        allowed = {"name", "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
        if set(vol) - allowed:
            problems.append(f"{where}: volume {vol['name']} of a restricted type")
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        sc = c.get("securityContext", {})
        cwhere = f"{where} container {c['name']}"
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cwhere}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{cwhere}: capabilities must drop ALL")
        if set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{cwhere}: adds capabilities")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{cwhere}: runAsNonRoot must be true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{cwhere}: runs as root")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{cwhere}: seccompProfile must be RuntimeDefault or Localhost")
        if sc.get("privileged"):
            problems.append(f"{cwhere}: privileged")
    return problems


def check_api_ca(name, objects, values):
    """The cluster-service reads the CA Secret its Role names: the one it makes, or the one given."""
    args = [a for _, o in objects if o["kind"] == "Deployment" and component_of(o) == "cluster-service"
            for c in o["spec"]["template"]["spec"]["containers"] for a in c.get("args", [])]
    flag = next((a.split("=", 1)[1] for a in args if a.startswith("--tls-ca-secret=")), None)
    readable = [n for _, o in objects if o["kind"] == "Role" and o["metadata"]["name"].endswith("-api-ca")
                for r in o["rules"] if "get" in r["verbs"] for n in r.get("resourceNames", [])]
    want = values.get("api", {}).get("caSecretName") or "etcd-operator-api-ca"
    if flag != want or readable != [want]:
        fail([f"{name}: --tls-ca-secret={flag}, the Role reads {readable}, values ask {want}"], "the API's CA")


def check_pod_security(name, objects):
    problems = []
    for path, obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            problems += pod_problems(f"{name}: {obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"])
    fail(problems, f"Pod Security (restricted) of {name}")


def check_bad_values():
    problems = []
    with helm.Chart.load(str(CHART)) as chart:
        for values, path in BAD_VALUES:
            try:
                chart.validate_schema(chart.merge_values(values))
                problems.append(f"values.schema.json accepts {json.dumps(values)}")
            except helm.HelmError as e:
                if f"'{path}'" not in str(e):
                    problems.append(f"{json.dumps(values)}: the message does not name {path}: {e}")
    fail(problems, "values.schema.json rejections")
    print(f"values.schema.json rejects {len(BAD_VALUES)} bad value sets, naming each field")
    for values, named in CONTRADICTIONS:
        try:
            render(values)
            problems.append(f"{json.dumps(values)} renders without complaint")
        except helm.HelmError as e:
            problems.extend(f"{json.dumps(values)}: the message does not name {n}: {e}" for n in named if n not in str(e))
    fail(problems, "contradictory values")
    print(f"the chart refuses {len(CONTRADICTIONS)} contradictory value sets, naming the values")


def generated_deploy():
    header = (
        "# Generated by `scripts/chart.py generate` from helm/etcd-operator with its default values\n"
        "# (release etcd-operator in namespace etcd-operator); do not edit. CRDs: deploy/crds/.\n"
        "# kubectl apply -f deploy/crds/ && kubectl apply -f deploy/etcd-operator.yaml\n"
    )
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": {
        "app.kubernetes.io/part-of": "etcd-operator",
        "pod-security.kubernetes.io/enforce": "restricted"}}}
    docs = [namespace] + [obj for path, obj in render({}) if not path.startswith("crds/")]
    return header + yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def check():
    report = helm.lint(str(CHART), strict=True)
    errors = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    fail([str(e) for e in errors], "helm lint --strict")
    for name, values in VALUE_SETS.items():
        objects = render(values)
        validate_schemas(name, objects)
        check_rbac(name, objects, values.get("watchNamespace", ""))
        check_api_ca(name, objects, values)
        check_pod_security(name, objects)
        print(f"{name}: {len(objects)} objects valid for Kubernetes {', '.join(KUBERNETES_VERSIONS)}; RBAC and Pod Security checked")
    snapshot = yaml.safe_load((ROOT / "crates/resource/tests/snapshots/statefulset.yaml").read_text())
    fail(pod_problems("etcd member StatefulSet (resource layer)", snapshot["spec"]["template"]["spec"]), "Pod Security of etcd members")
    print("etcd member pods meet the restricted profile")
    check_bad_values()
    chart_crds = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    for crd in chart_crds:
        if (CHART / "crds" / crd).read_text() != (ROOT / "deploy/crds" / crd).read_text():
            fail([crd], "chart CRDs equal deploy/crds (run crdgen)")
    if DEPLOY.read_text() != generated_deploy():
        fail([str(DEPLOY)], "deploy/ is out of date; run scripts/chart.py generate")
    print("deploy/etcd-operator.yaml and the chart's CRDs match the chart and the Rust types")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    sub.add_parser("generate")
    r = sub.add_parser("render")
    r.add_argument("--set-json", default="{}", help="values as JSON")
    r.add_argument("--namespace", default=NAMESPACE)
    r.add_argument("--no-crds", action="store_true", help="leave out the CRDs")
    args = parser.parse_args()
    if args.command == "check":
        check()
    elif args.command == "generate":
        DEPLOY.write_text(generated_deploy())
        print(f"wrote {DEPLOY.relative_to(ROOT)}")
    else:
        objects = render(json.loads(args.set_json), args.namespace)
        keep = [o for path, o in objects if not (args.no_crds and path.startswith("crds/"))]
        print(yaml.safe_dump_all(keep, sort_keys=False), end="")


if __name__ == "__main__":
    main()
