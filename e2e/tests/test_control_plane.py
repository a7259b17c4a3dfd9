"""The control plane is real (scheduler, controllers, RBAC) and the topology is right."""
from __future__ import annotations

import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from medmec.localcluster import topology
from medmec.waiting import wait_for

pytestmark = pytest.mark.e2e

GPU_TOLERATION = {"key": topology.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture
def namespace(cluster):
    core = client.CoreV1Api(cluster.api)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def zone_affinity(key: str, value: str) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": key, "operator": "In", "values": [value]}]}]}}}


def gpu_pod_spec(gpus: int, affinity: dict | None = None, priority_class: str | None = None) -> dict:
    spec = {"tolerations": [GPU_TOLERATION],
            "containers": [{"name": "model", "image": "medmec/test:1",
                            "resources": {"limits": {topology.GPU_RESOURCE: str(gpus)}}}]}
    if affinity:
        spec["affinity"] = affinity
    if priority_class:
        spec["priorityClassName"] = priority_class
    return spec


def nodes_by_name(cluster) -> dict:
    return {n.metadata.name: n for n in client.CoreV1Api(cluster.api).list_node().items}


def test_nodes_follow_the_topology_file(cluster):
    if not cluster.local:
        pytest.skip("an existing cluster has its own nodes")
    expected = {n["metadata"]["name"]: n for n in topology.load(cluster.state.topology_file).nodes()}
    nodes = nodes_by_name(cluster)
    assert set(expected) <= set(nodes)
    for name, want in expected.items():
        node = nodes[name]
        for key, value in want["metadata"]["labels"].items():
            assert node.metadata.labels.get(key) == value, (name, key)
        assert node.status.allocatable.get(topology.GPU_RESOURCE) == \
            want["status"]["allocatable"].get(topology.GPU_RESOURCE)
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_gpu_deployment_lands_on_gpu_nodes_of_its_base_station_and_is_garbage_collected(
        cluster, namespace):
    apps, core = client.AppsV1Api(cluster.api), client.CoreV1Api(cluster.api)
    labels = {"app": "diagnosis"}
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "diagnosis"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": gpu_pod_spec(1, zone_affinity(topology.BASE_STATION_LABEL,
                                                                    "gnb-south"))}}})

    def running_pods():
        pods = core.list_namespaced_pod(namespace, label_selector="app=diagnosis").items
        return pods if len(pods) == 3 and all(p.status.phase == "Running" for p in pods) else None

    pods = wait_for(running_pods, what="3 Running pods")
    nodes = nodes_by_name(cluster)
    for pod in pods:
        node = nodes[pod.spec.node_name]
        assert node.metadata.labels[topology.BASE_STATION_LABEL] == "gnb-south"
        assert int(node.status.allocatable[topology.GPU_RESOURCE]) >= 1

    replicasets = apps.list_namespaced_replica_set(namespace).items
    assert len(replicasets) == 1 and replicasets[0].metadata.owner_references[0].name == "diagnosis"
    apps.delete_namespaced_deployment("diagnosis", namespace)  # background propagation
    wait_for(lambda: not apps.list_namespaced_replica_set(namespace).items
             and not core.list_namespaced_pod(namespace).items,
             what="the garbage collector to remove the ReplicaSet and its Pods")


def test_pod_asking_for_more_gpus_than_any_node_has_stays_pending(cluster, namespace):
    core = client.CoreV1Api(cluster.api)
    most = max(int(n.status.allocatable.get(topology.GPU_RESOURCE, 0))
               for n in nodes_by_name(cluster).values())
    core.create_namespaced_pod(namespace, {"metadata": {"name": "too-big"},
                                           "spec": gpu_pod_spec(most + 1)})

    def failed_scheduling():
        events = core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=too-big,reason=FailedScheduling").items
        return events[0] if events else None

    event = wait_for(failed_scheduling, what="a FailedScheduling event")
    assert "Insufficient nvidia.com/gpu" in event.message
    pod = core.read_namespaced_pod("too-big", namespace)
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    condition = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert condition.status == "False" and condition.reason == "Unschedulable"


@pytest.fixture
def priority_classes(cluster):
    sched = client.SchedulingV1Api(cluster.api)
    suffix = uuid.uuid4().hex[:6]
    names = {"low": f"e2e-low-{suffix}", "high": f"e2e-high-{suffix}"}
    for level, value in (("low", 100), ("high", 100000)):
        sched.create_priority_class({"metadata": {"name": names[level]}, "value": value})
    yield names
    for name in names.values():
        sched.delete_priority_class(name)


def test_higher_priority_pod_preempts_a_lower_one_when_a_zones_gpus_are_full(
        cluster, namespace, priority_classes):
    core = client.CoreV1Api(cluster.api)
    zone = "mec-east"
    zone_nodes = [n for n in nodes_by_name(cluster).values()
                  if n.metadata.labels.get(topology.ZONE_LABEL) == zone]
    capacity = sum(int(n.status.allocatable.get(topology.GPU_RESOURCE, 0)) for n in zone_nodes)
    assert capacity > 0
    affinity = zone_affinity(topology.ZONE_LABEL, zone)
    for i in range(capacity):  # one GPU each: the zone is full
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": f"low-{i}", "labels": {"tier": "low"}},
            "spec": gpu_pod_spec(1, affinity, priority_classes["low"])})
    wait_for(lambda: all(p.status.phase == "Running" for p in
                         core.list_namespaced_pod(namespace, label_selector="tier=low").items)
             and len(core.list_namespaced_pod(namespace).items) == capacity,
             what="the low-priority pods to fill the zone")

    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "urgent", "labels": {"tier": "high"}},
        "spec": gpu_pod_spec(1, affinity, priority_classes["high"])})

    def urgent_running():
        pod = core.read_namespaced_pod("urgent", namespace)
        return pod if pod.status.phase == "Running" else None

    urgent = wait_for(urgent_running, timeout=90, what="the high-priority pod to run")
    assert nodes_by_name(cluster)[urgent.spec.node_name].metadata.labels[topology.ZONE_LABEL] == zone
    low_left = [p for p in core.list_namespaced_pod(namespace, label_selector="tier=low").items
                if p.metadata.deletion_timestamp is None]
    assert len(low_left) == capacity - 1
    events = core.list_namespaced_event(namespace, field_selector="reason=Preempted").items
    assert events and urgent.metadata.uid in events[0].message


def test_rbac_is_enforced_for_service_account_tokens(cluster, namespace):
    core, rbac = client.CoreV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}).status.token
    config = client.Configuration()
    config.host = cluster.api.configuration.host  # same server and CA as the admin
    config.ssl_ca_cert = cluster.api.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    as_reader = client.CoreV1Api(client.ApiClient(config))

    with pytest.raises(ApiException) as denied:
        as_reader.list_namespaced_config_map(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in denied.value.body

    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "configmap-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "configmap-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]})
    names = wait_for(lambda: [c.metadata.name for c in
                              _try(lambda: as_reader.list_namespaced_config_map(namespace).items)],
                     what="the role binding to take effect")
    assert "kube-root-ca.crt" in names  # published by the controller-manager
    with pytest.raises(ApiException) as still_denied:
        as_reader.list_namespaced_secret(namespace)
    assert still_denied.value.status == 403


def _try(call):
    try:
        return call()
    except ApiException:
        return []
