"""What a pod does on the real nodes: the medmec image runs, probes gate readiness, a
crashing container backs off, Services resolve by name, volumes outlive pods, GPU pods land
on the requested site, and kubectl logs, exec and port-forward reach the containers."""
from __future__ import annotations

import json
import socket
import subprocess
import urllib.request

import pytest

from medmec.localcluster import topology
from medmec.waiting import wait_for

from .conftest import apply, container, get, pod, ready, wait_phase

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def real_nodes(cluster) -> dict[str, dict]:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"]: n for n in nodes
            if n["metadata"]["labels"].get(topology.NODE_KIND_LABEL) == "real"}


def test_the_real_nodes_are_ready_with_their_site_labels_and_simulated_gpus(real_cluster):
    nodes = real_nodes(real_cluster)
    sites = {n["metadata"]["labels"][topology.BASE_STATION_LABEL] for n in nodes.values()}
    assert sites == {"gnb-north", "gnb-south", "gnb-east"}
    for node in nodes.values():
        assert ready(node)
        assert node["status"]["allocatable"][topology.GPU_RESOURCE] == "1"
        assert node["metadata"]["labels"][topology.SIMULATED_GPU_LABEL] == "true"
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://2.")


def test_a_pod_of_the_medmec_image_runs_a_command_and_its_log_is_read(real_cluster, ns, image):
    apply(real_cluster, ns, pod("hello", [container(image, "hello", [
        "sh", "-c", "echo medmec-pod-says-hello; id -u; medmec --help | head -1"])],
        restartPolicy="Never"))
    done = wait_phase(real_cluster, ns, "hello", {"Succeeded", "Failed"})
    logs = real_cluster.kubectl("logs", "-n", ns, "hello").stdout
    assert done["status"]["phase"] == "Succeeded", logs
    assert "medmec-pod-says-hello" in logs
    assert "10001" in logs.splitlines()  # non-root
    assert "usage: medmec" in logs
    assert done["spec"]["nodeName"] in real_nodes(real_cluster)


def test_readiness_follows_the_probe_and_exec_reaches_the_container(real_cluster, ns, image):
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "probed"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "probed"}},
                 "template": {"metadata": {"labels": {"app": "probed"}},
                              "spec": pod("probed", [container(
                                  image, "probed", ["sleep", "3600"],
                                  readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]},
                                                  "periodSeconds": 1, "failureThreshold": 1})])
                              ["spec"]}}}
    apply(real_cluster, ns, deployment)

    def running_pod():
        pods = json.loads(real_cluster.kubectl("get", "pods", "-n", ns, "-l", "app=probed",
                                               "-o", "json").stdout)["items"]
        return next((p for p in pods if p["status"].get("containerStatuses", [{}])[0]
                     .get("state", {}).get("running")), None)
    first = wait_for(running_pod, 180, "the probed pod running")
    name = first["metadata"]["name"]
    # running, probed every second, and still not Ready: the probe fails
    wait_for(lambda: sum(1 for e in json.loads(real_cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}",
        "-o", "json").stdout)["items"] if e["reason"] == "Unhealthy"), 60,
        "readiness probe failures")
    assert not ready(get(real_cluster, ns, "pod", name))
    assert get(real_cluster, ns, "deployment", "probed")["status"].get("readyReplicas") is None

    real_cluster.kubectl("exec", "-n", ns, name, "--", "touch", "/tmp/ready")
    wait_for(lambda: ready(get(real_cluster, ns, "pod", name)), 60, "the pod Ready")
    assert get(real_cluster, ns, "deployment", "probed")["status"]["readyReplicas"] == 1


def test_a_container_that_exits_non_zero_restarts_into_crash_loop_back_off(real_cluster, ns, image):
    """The kubelet restarts it, backing off in between, and says so in an Event ("Back-off
    restarting failed container"). Its status may show the last termination rather than
    waiting: CrashLoopBackOff during the back-off (kubelet 1.36 reports the waiting state
    only on a sync within it), so the test reads what the kubelet always gives."""
    apply(real_cluster, ns, pod("crasher", [container(image, "crasher",
                                                      ["sh", "-c", "echo boom; exit 3"])]))
    seen = {}

    def backing_off():
        seen["status"] = get(real_cluster, ns, "pod", "crasher")["status"]
        status = seen["status"].get("containerStatuses", [{}])[0]
        seen["events"] = [e["reason"] for e in json.loads(real_cluster.kubectl(
            "get", "events", "-n", ns, "-o", "json", "--field-selector",
            "involvedObject.kind=Pod,involvedObject.name=crasher").stdout)["items"]]
        return status if status.get("restartCount", 0) >= 2 and "BackOff" in seen["events"] else None
    status = wait_for(backing_off, 180, "restarts with back-off", explain=lambda: f"seen: {seen}")
    last = status["state"].get("terminated") or status["lastState"]["terminated"]
    assert last["exitCode"] == 3

    # its own words, from whichever ended container the kubelet still keeps the log of: the
    # current one during a back-off, else the previous one (each restart may remove one)
    def said_boom() -> bool:
        return any("boom" in real_cluster.kubectl("logs", "-n", ns, "crasher", *flag, check=False).stdout
                   for flag in ([], ["--previous"]))
    assert wait_for(said_boom, 60, "'boom' in the crashed container's log")


def test_a_pod_reaches_a_pod_on_another_node_through_a_service_name(real_cluster, ns, image):
    nodes = sorted(real_nodes(real_cluster))
    server_cmd = ["sh", "-c", "mkdir -p /tmp/www && echo served-by-$(hostname) > /tmp/www/id "
                  "&& cd /tmp/www && exec python3 -m http.server 8080"]
    server = pod("echo", [container(image, "echo", server_cmd,
                                    ports=[{"containerPort": 8080, "name": "http"}],
                                    readinessProbe={"httpGet": {"path": "/id", "port": 8080},
                                                    "periodSeconds": 1})],
                 nodeSelector={"kubernetes.io/hostname": nodes[0]})
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
               "spec": {"selector": {"app": "echo"},
                        "ports": [{"port": 80, "targetPort": "http", "name": "http"}]}}
    apply(real_cluster, ns, server, service)
    wait_for(lambda: ready(get(real_cluster, ns, "pod", "echo")), 180, "the echo pod Ready")
    # a client on the hospital network (this host) reaches the Service's ClusterIP, once
    # kube-proxy has programmed it (a pod started before that finds no route to it)
    cluster_ip = get(real_cluster, ns, "service", "echo")["spec"]["clusterIP"]
    body = wait_for(lambda: _get(f"http://{cluster_ip}/id"), 60, "the Service programmed")
    assert body.strip() == "served-by-echo"

    fetch = ("import urllib.request; "
             f"print(urllib.request.urlopen('http://echo.{ns}.svc.cluster.local/id', timeout=10)"
             ".read().decode())")
    client = pod("client", [container(image, "client", ["python3", "-c", fetch])],
                 restartPolicy="Never", nodeSelector={"kubernetes.io/hostname": nodes[1]})
    apply(real_cluster, ns, client)
    done = wait_phase(real_cluster, ns, "client", {"Succeeded", "Failed"})
    logs = real_cluster.kubectl("logs", "-n", ns, "client").stdout
    assert done["status"]["phase"] == "Succeeded", logs
    assert "served-by-echo" in logs
    assert done["spec"]["nodeName"] != get(real_cluster, ns, "pod", "echo")["spec"]["nodeName"]

    # and kubectl port-forward, through the API server and the kubelet
    port = _free_port()
    forward = subprocess.Popen(
        [str(_kubectl()), "--kubeconfig", real_cluster.kubeconfig, "port-forward", "-n", ns,
         "pod/echo", f"{port}:8080"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = wait_for(lambda: _get(f"http://127.0.0.1:{port}/id"), 60, "the forwarded port")
        assert body.strip() == "served-by-echo"
    finally:
        forward.terminate()
        forward.wait(10)


def test_a_claims_data_survives_its_pods_deletion(real_cluster, ns, image):
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "records"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    volume = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "records"}}]}
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    # the pod's group owns the volume (fsGroup), so the non-root user can write it
    security = {"securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001}}
    writer = pod("writer", [container(image, "writer", ["sh", "-c", "echo kept > /data/record"],
                                      **mount)], restartPolicy="Never", **volume)
    writer["spec"].update(security)
    apply(real_cluster, ns, claim, writer)
    assert wait_phase(real_cluster, ns, "writer", {"Succeeded", "Failed"})["status"]["phase"] == "Succeeded"
    assert get(real_cluster, ns, "pvc", "records")["status"]["phase"] == "Bound"
    real_cluster.kubectl("delete", "pod", "-n", ns, "writer", "--wait=true")

    reader = pod("reader", [container(image, "reader", ["cat", "/data/record"], **mount)],
                 restartPolicy="Never", **volume)
    reader["spec"].update(security)
    apply(real_cluster, ns, reader)
    assert wait_phase(real_cluster, ns, "reader", {"Succeeded", "Failed"})["status"]["phase"] == "Succeeded"
    assert real_cluster.kubectl("logs", "-n", ns, "reader").stdout.strip() == "kept"


def test_a_gpu_pod_lands_on_the_real_node_of_the_requested_zone(real_cluster, ns, image):
    gpu = container(image, "cuda", ["sh", "-c", "echo scheduled"])
    gpu["resources"] = {"limits": {topology.GPU_RESOURCE: "1", "memory": "64Mi"},
                        "requests": {"cpu": "10m", "memory": "32Mi"}}
    spec = pod("gpu", [gpu], restartPolicy="Never",
               tolerations=[{"key": topology.GPU_RESOURCE, "operator": "Exists"}],
               affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                   "nodeSelectorTerms": [{"matchExpressions": [
                       {"key": topology.ZONE_LABEL, "operator": "In", "values": ["mec-south"]}]}]}}})
    apply(real_cluster, ns, spec)
    done = wait_phase(real_cluster, ns, "gpu", {"Succeeded", "Failed"})
    node = real_nodes(real_cluster)[done["spec"]["nodeName"]]
    assert node["metadata"]["labels"][topology.ZONE_LABEL] == "mec-south"
    assert done["status"]["phase"] == "Succeeded"


def _kubectl():
    from medmec.localcluster import binaries
    return binaries.binary("kubectl")


def _free_port() -> int:
    from medmec.netutil import free_port
    return free_port()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as rsp:
            return rsp.read().decode()
    except (OSError, socket.timeout):
        return None
