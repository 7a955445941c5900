"""The Python kubernetes client against kube-sim: create, list, patch, a watch resumed from a
resourceVersion, and a watch from a compacted one (410 Gone), then relist and watch again;
server-side apply with a conflict and its force (the dynamic client), strict field validation
and a server-side dry run (the typed client).
Run by python_client.rs with the kubeconfig as its argument; kube-sim keeps 5 events."""

import sys

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
NS = "default"


def watched(resource_version, count):
    """The first `count` events from `resource_version` as (type, data n)."""
    seen, w = [], watch.Watch()
    for event in w.stream(v1.list_namespaced_config_map, NS, label_selector="from=python",
                          resource_version=resource_version, timeout_seconds=5):
        seen.append((event["type"], event["object"].data["n"]))
        if len(seen) == count:
            w.stop()
    return seen


meta = client.V1ObjectMeta(name="py", labels={"from": "python"})
created = v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=meta, data={"n": "0"}))
assert created.metadata.uid and created.metadata.resource_version, created.metadata
try:
    v1.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=meta, data={"n": "0"}))
    raise AssertionError("a second create of py was accepted")
except ApiException as e:
    assert e.status == 409, e

listed = v1.list_namespaced_config_map(NS, label_selector="from=python")
assert [c.metadata.name for c in listed.items] == ["py"], listed.items
start = listed.metadata.resource_version

versions = []
for n in range(1, 11):
    patched = v1.patch_namespaced_config_map("py", NS, {"data": {"n": str(n)}})
    assert patched.data["n"] == str(n), patched.data
    versions.append(patched.metadata.resource_version)

# Resumed from the 8th change (still in the kept history): the 9th and 10th, in order.
assert watched(versions[7], 2) == [("MODIFIED", "9"), ("MODIFIED", "10")]

# From the list before the changes: compacted since, so 410 Gone.
try:
    watched(start, 1)
    raise AssertionError("a watch from a compacted resourceVersion was served")
except ApiException as e:
    assert e.status == 410, e

# As the client's documentation says: list again, and watch from there.
relisted = v1.list_namespaced_config_map(NS, label_selector="from=python")
v1.patch_namespaced_config_map("py", NS, {"data": {"n": "11"}})
assert watched(relisted.metadata.resource_version, 1) == [("MODIFIED", "11")]

v1.delete_namespaced_config_map("py", NS)
assert v1.list_namespaced_config_map(NS, label_selector="from=python").items == []

# Server-side apply: another manager's field is a conflict (409) until forced.
config_maps = dynamic.DynamicClient(client.ApiClient()).resources.get(api_version="v1", kind="ConfigMap")
body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": NS}, "data": {"a": "1"}}
config_maps.server_side_apply(body=body, name="ssa", namespace=NS, field_manager="py-apply")
v1.patch_namespaced_config_map("ssa", NS, {"data": {"a": "2"}}, field_manager="py-editor")
try:
    config_maps.server_side_apply(body=body, name="ssa", namespace=NS, field_manager="py-apply")
    raise AssertionError("an apply over another manager's field was accepted")
except DynamicApiError as e:
    assert e.status == 409 and 'conflict with \\"py-editor\\"' in e.body, e.body
applied = config_maps.server_side_apply(body=body, name="ssa", namespace=NS, field_manager="py-apply",
                                        force_conflicts=True)
assert applied.data.a == "1", applied.data
owners = {(m.manager, m.operation) for m in applied.metadata.managedFields}
assert owners == {("py-apply", "Apply")}, owners

# Strict field validation names the unknown field (the dynamic client: the typed one checks
# fields itself); a dry run stores nothing.
typo = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "typo"}, "datta": {"a": "b"}}
try:
    config_maps.create(body=typo, namespace=NS, query_params=[("fieldValidation", "Strict")])
    raise AssertionError("an unknown field passed strict validation")
except DynamicApiError as e:
    assert e.status == 400 and 'unknown field \\"datta\\"' in e.body, e.body
dry = v1.create_namespaced_config_map(NS, {"metadata": {"name": "dry"}, "data": {"a": "b"}}, dry_run="All")
assert dry.metadata.uid and not dry.metadata.resource_version, dry.metadata
assert [c.metadata.name for c in v1.list_namespaced_config_map(NS).items if c.metadata.name == "dry"] == []
print("ok")
