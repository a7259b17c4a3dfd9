"""The sample hospital as hospital IT installs it, on the real nodes: the two `helm install`s,
models pushed into the in-cluster store, the hospital's services as pods; then what users do
and what breaks: requests through the Services, a wrong model digest, a killed dispatcher
container, a nursing pod killed mid-stream, the active operator pod killed."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from medmec import demo, netutil
from medmec.cluster_services import ServiceAddresses
from medmec.waiting import wait_for

from .conftest import ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HOSPITAL_NAMESPACES = {"medmec-system", "imaging", "logistics", "wards", "emergency"}


class Hospital:
    def __init__(self, cluster):
        self.cluster = cluster
        self.kubeconfig = cluster.kubeconfig
        self.services = ServiceAddresses(cluster.kubeconfig)

    def get(self, *args: str) -> dict:
        return json.loads(self.cluster.kubectl("get", *args, "-o", "json").stdout)

    def pods(self, namespace: str, selector: str) -> list[dict]:
        return self.get("pods", "-n", namespace, "-l", selector)["items"]

    def condition(self, kind: str, namespace: str, name: str, type_: str) -> dict:
        conds = self.get(kind, name, "-n", namespace).get("status", {}).get("conditions") or []
        return next((c for c in conds if c["type"] == type_), {})


@pytest.fixture(scope="module")
def hospital(real_cluster):
    """Installed with the images this checkout builds (a cluster of KUBECONFIG must hold
    them: `medmec cluster up` on a running cluster loads new ones into its real nodes)."""
    from medmec.localcluster import cluster, images
    if real_cluster.state is not None:
        built = cluster.load_images(real_cluster.state, log=demo.log)
    else:
        built = images.ensure_all(log=demo.log)
    h = Hospital(real_cluster)
    demo.install_platform(h.kubeconfig, built)
    demo.push_models(h.kubeconfig, h.services)
    demo.apply_hospital(h.kubeconfig)
    yield h
    remove_hospital(h)


def remove_hospital(h: Hospital) -> None:
    """Give the later modules the real nodes back: the hospital's pods hold the single GPU
    and most of the CPU of each real node (uninstalling the charts keeps them running)."""
    namespaces = {item["metadata"]["namespace"] for item in h.get("medmec", "-A")["items"]
                  if item["metadata"].get("namespace")} | HOSPITAL_NAMESPACES
    h.cluster.kubectl("delete", "basestations", "--all", "--wait=false")
    h.cluster.kubectl("delete", "namespace", *sorted(namespaces), "--ignore-not-found",
                      "--wait=true", "--timeout=300s")


def kill_container(pod: dict, container: str) -> None:
    """SIGKILL the container's processes from the host, as a crash would (PID 1 of a
    container ignores signals sent from inside it)."""
    status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
    container_id = status["containerID"].split("://", 1)[1]
    pids = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cgroup")
            if _reads(p).rstrip().endswith(container_id)]
    assert pids, f"no process of container {container} ({container_id[:12]})"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def _reads(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # the process ended meanwhile
        return ""


def restarts(pod: dict, container: str) -> int:
    return next(s["restartCount"] for s in pod["status"]["containerStatuses"] if s["name"] == container)


def test_the_two_helm_installs_converge_with_every_pod_on_the_real_nodes(hospital):
    from medmec.operator import devtools
    from medmec.workloads.gitops import helmchart
    real = {n["metadata"]["name"] for n in hospital.get("nodes")["items"]
            if not any(t["key"] == "medmec.io/simulated" for t in n["spec"].get("taints") or [])}
    assert len(real) == 3
    pods = [p for p in hospital.get("pods", "-A")["items"]
            if p["metadata"]["namespace"] in HOSPITAL_NAMESPACES
            and not p["metadata"].get("deletionTimestamp")]
    assert len(pods) >= 15
    assert {p["spec"]["nodeName"] for p in pods} == real  # every base station's node serves
    wait_for(lambda: all(ready(p) for p in hospital.get("pods", "-A")["items"]
                         if p["metadata"]["namespace"] in HOSPITAL_NAMESPACES
                         and not p["metadata"].get("deletionTimestamp")), 120, "every pod Ready")
    assert devtools.not_ready(hospital.kubeconfig) == []  # base stations included
    # the chart's own test pod: the store, the operator and the console answer in-cluster
    out = helmchart.helm(["test", "medmec", "-n", "medmec-system"], hospital.kubeconfig)
    assert "Phase:          Succeeded" in out, out


def test_inference_through_the_service_speaks_kserve_v2_and_escalates(hospital):
    import numpy as np
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from sklearn.datasets import load_breast_cancer

    http = httpclient.InferenceServerClient(
        hospital.services.address("imaging", "breast-cancer-screening-predictor", 8000))
    assert http.is_server_ready() and http.is_model_ready("breast-cancer")
    meta = http.get_model_metadata("breast-cancer")
    assert meta["inputs"][0]["name"] == "features" and meta["inputs"][0]["shape"] == [-1, 30]
    rows = load_breast_cancer().data[[0, 40]].astype(np.float32)
    tensor = httpclient.InferInput("features", [2, 30], "FP32")
    tensor.set_data_from_numpy(rows)
    result = http.infer("breast-cancer", [tensor])
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)
    decided = [d.decode() for d in result.as_numpy("decided_by").ravel()]
    assert decided == ["breast-cancer:1", "breast-cancer-large:1"]  # case 40 is unsure at the edge
    grpc = grpcclient.InferenceServerClient(
        hospital.services.address("imaging", "breast-cancer-screening-predictor", 8001))
    assert grpc.is_model_ready("breast-cancer")


def test_the_inference_pods_key_reads_models_and_keeps_hard_examples_but_changes_nothing(hospital):
    """A slice namespace holds the inference pods' own key, not the store's root key: it
    reads the models; the screening pod kept the escalated case of the test before with it;
    it can neither delete a model nor read what was kept."""
    from minio.error import S3Error
    from medmec.workloads.modelstore.store import BUCKET, HARD_EXAMPLES_BUCKET, ModelStore, StoreSettings
    endpoint = hospital.services.address("medmec-system", "medmec-minio", 9000)

    def store(namespace: str) -> ModelStore:
        def key(k: str) -> str:
            return demo.secret_value(hospital.kubeconfig, namespace, "medmec-model-store", k)
        return ModelStore(StoreSettings(endpoint=endpoint, access_key=key("access-key"),
                                        secret_key=key("secret-key")))
    root, pods = store("medmec-system"), store("imaging")
    assert pods.settings.access_key != root.settings.access_key
    assert pods.metadata("breast-cancer", "1") == root.metadata("breast-cancer", "1")
    kept = wait_for(lambda: list(root.client.list_objects(HARD_EXAMPLES_BUCKET, recursive=True)),
                    60, "the escalated case kept as a hard example")
    for denied in (lambda: pods.client.remove_object(BUCKET, "breast-cancer/1/model.onnx"),
                   lambda: pods.client.get_object(HARD_EXAMPLES_BUCKET, kept[0].object_name)):
        with pytest.raises(S3Error) as err:
            denied()
        assert err.value.code == "AccessDenied"
    assert root.metadata("breast-cancer", "1")["sha256"]


def test_a_wrong_digest_keeps_the_old_pods_serving_and_names_the_digests(hospital):
    import numpy as np
    import tritonclient.http as httpclient

    eis = hospital.get("eis", "breast-cancer-screening", "-n", "imaging")
    right = eis["spec"]["model"]["sha256"]
    serving = {p["metadata"]["name"] for p in hospital.pods("imaging", "medmec.io/inference-service=breast-cancer-screening")}
    patch = json.dumps({"spec": {"model": {"sha256": "ab" * 32}}})
    hospital.cluster.kubectl("patch", "eis", "breast-cancer-screening", "-n", "imaging",
                             "--type", "merge", "-p", patch)
    try:
        cond = wait_for(lambda: (c := hospital.condition("eis", "imaging", "breast-cancer-screening", "Ready"))
                        .get("reason") == "ModelDigestMismatch" and c, 240, "ModelDigestMismatch")
        assert cond["status"] == "False"
        assert "model breast-cancer version 1" in cond["message"]
        assert f"expected sha256 {'ab' * 32}, found {right}" in cond["message"]
        assert "the ready pods keep serving" in cond["message"]
        # the old pod still answers through the Service
        still = {p["metadata"]["name"] for p in hospital.pods(
            "imaging", "medmec.io/inference-service=breast-cancer-screening") if ready(p)}
        assert serving <= still
        http = httpclient.InferenceServerClient(
            hospital.services.address("imaging", "breast-cancer-screening-predictor", 8000))
        tensor = httpclient.InferInput("features", [1, 30], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 30), np.float32))
        assert http.infer("breast-cancer", [tensor]).as_numpy("probabilities").shape == (1, 2)
    finally:
        hospital.cluster.kubectl("patch", "eis", "breast-cancer-screening", "-n", "imaging",
                                 "--type", "merge", "-p", json.dumps({"spec": {"model": {"sha256": right}}}))
    wait_for(lambda: hospital.condition("eis", "imaging", "breast-cancer-screening", "Ready")
             .get("status") == "True", 240, "Ready again with the right digest")


def test_a_killed_dispatcher_container_restarts_with_its_queued_tasks(hospital):
    import grpc
    from medmec.workloads.dispatch.protos import dispatch_pb2, dispatch_pb2_grpc

    target = hospital.services.address("logistics", "delivery-robots-dispatch", 50051)
    with grpc.insecure_channel(target) as channel:
        stub = dispatch_pb2_grpc.DispatchStub(channel)
        stub.RegisterRobot(dispatch_pb2.RegisterRobotRequest(
            robot_id="amr-03", node="f0-park-01a", speed_mps=1.0, payload_kg=60, battery_pct=80,
            capabilities=["linen", "meals", "specimen"]))
        task = stub.SubmitTask(dispatch_pb2.SubmitTaskRequest(
            pickup="laboratory", dropoff="f2-room-a1w", weight_kg=1.0, kind="specimen"))
    [pod] = hospital.pods("logistics", "medmec.io/robot-fleet=delivery-robots")
    before = restarts(pod, "dispatch")
    kill_container(pod, "dispatch")

    def restarted():
        [now] = hospital.pods("logistics", "medmec.io/robot-fleet=delivery-robots")
        return restarts(now, "dispatch") > before and ready(now) and now
    now = wait_for(restarted, 180, "the kubelet restarts the dispatcher")
    assert now["metadata"]["uid"] == pod["metadata"]["uid"]  # the same pod: its volume kept

    def stored():
        with grpc.insecure_channel(target) as channel:
            return dispatch_pb2_grpc.DispatchStub(channel).GetTask(
                dispatch_pb2.TaskRef(task_id=task.task_id), timeout=5)
    again = wait_for(lambda: _answer(stored), 60, "the dispatcher answers again")
    assert (again.task_id, again.pickup, again.dropoff, again.kind) == \
        (task.task_id, "laboratory", "f2-room-a1w", "specimen")


def _answer(call):
    import grpc
    try:
        return call()
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            return None
        raise


def test_a_nursing_pod_killed_mid_stream_loses_no_acknowledged_reading(hospital):
    import secrets

    import grpc
    import httpx
    from medmec.workloads.nursing.protos import nursing_pb2, nursing_pb2_grpc

    tokens = demo.nursing_tokens(hospital.kubeconfig)
    base = hospital.services.url("wards", "bedside-nursing", 8080)
    doctor = {"Authorization": f"Bearer {tokens['doctor']}"}
    admitted = httpx.post(f"{base}/wards/4a/admissions", headers=doctor, timeout=10, json={
        "patient": {"resourceType": "Patient", "identifier": [
            {"system": "https://medmec.io/fhir/sid/wristband", "value": secrets.token_hex(6)}]},
        "spo2_scale": 1})
    admitted.raise_for_status()
    patient = admitted.json()["patient"]["id"]
    sent: list[str] = []
    acked = 0
    stop = threading.Event()

    def batches():
        i = 0
        while not stop.is_set():
            i += 1
            sent.append(f"kill-{i}")
            yield nursing_pb2.VitalBatch(readings=[nursing_pb2.VitalReading(
                reading_id=f"kill-{i}", patient_id=patient, effective_time_ms=int(time.time() * 1000),
                respiration_rate=18, spo2=96, on_oxygen=False, systolic_bp=120, pulse=80,
                consciousness="A", temperature_c=37.0)])
            time.sleep(0.05)

    def stream():
        nonlocal acked
        target = hospital.services.address("wards", "bedside-nursing", 50051)
        with grpc.insecure_channel(target) as channel:
            try:
                for ack in nursing_pb2_grpc.CloudNursingStub(channel).StreamVitals(
                        batches(), metadata=[("authorization", f"Bearer {tokens['device']}")]):
                    acked = ack.handled
            except grpc.RpcError:
                pass  # the pod died under the stream
    streamer = threading.Thread(target=stream)
    streamer.start()
    wait_for(lambda: acked >= 20, 60, "readings acknowledged")
    [pod] = hospital.pods("wards", "app.kubernetes.io/instance=bedside")
    kill_container(pod, pod["spec"]["containers"][0]["name"])
    streamer.join(60)
    stop.set()
    durable = sent[:acked]
    assert acked >= 20

    def stored() -> list[str] | None:
        try:
            bundle = httpx.get(f"{base}/fhir/Observation", params={"patient": patient, "_count": 10000},
                               headers=doctor, timeout=10).json()
        except httpx.HTTPError:
            return None  # restarting
        return [i["value"] for e in bundle.get("entry", []) for i in e["resource"].get("identifier", [])
                if i["value"].startswith("kill-")]
    ids = wait_for(stored, 180, "the nursing service answers again")
    assert set(durable) <= set(ids), sorted(set(durable) - set(ids))
    assert len(ids) == len(set(ids))  # nothing stored twice


def test_the_qos_prober_in_the_cluster_writes_qosmet_on_every_slice(hospital):
    def every_slice_has_it():
        slices = hospital.get("medicalslices", "-A")["items"]
        return slices and all(any(c["type"] == "QoSMet" for c in s.get("status", {}).get("conditions") or [])
                              for s in slices)
    wait_for(every_slice_has_it, 180, "QoSMet on every slice")


def test_a_breached_link_moves_critical_inference_to_the_healthy_base_stations_node(hospital, tmp_path):
    """A critical slice over gnb-north and gnb-south, its inference service on one of their
    real nodes. The in-cluster prober is pointed (qos.linkAddresses) at emulated radio links
    (Toxiproxy on the cluster's host link, as in the QoS tests) in front of the reflectors'
    Services; 300 ms on the link of the pod's base station: QoSMet False, that base station
    avoided, the pod rolls onto the other one's real node; the toxic removed, after the
    hold-down nothing is avoided and QoSMet is True again."""
    from medmec.localcluster import topology
    from medmec.workloads.gitops import helmchart
    from medmec.workloads.qos import toxiproxy
    if hospital.cluster.state is None:
        pytest.skip("the emulated links listen on the local cluster's host link")
    ns, name = f"drill-{uuid.uuid4().hex[:6]}", "surgical-seg"
    zones = {"gnb-north": "mec-north", "gnb-south": "mec-south"}
    secret = hospital.get("secret", "medmec-model-store", "-n", "imaging")
    base = yaml.safe_load((demo.REPO / "deploy" / "base" / "breast-cancer-screening.yaml").read_text())
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": secret["data"],
         "metadata": {"name": "medmec-model-store", "namespace": ns}},
        {"apiVersion": "medmec.io/v1alpha1", "kind": "MedicalSlice",
         "metadata": {"name": "surgery-drill", "namespace": ns},
         "spec": {"sliceType": "URLLC", "sliceDifferentiator": "0000d1", "priority": "critical",
                  "baseStations": sorted(zones), "isolation": "shared",
                  "qos": {"uplinkMbps": 1, "downlinkMbps": 1, "networkLatencyMs": 100,
                          "endToEndLatencyMs": 200, "jitterMs": 50},
                  "resources": {"cpu": "1", "memory": "2Gi"}}},
        {"apiVersion": "medmec.io/v1alpha1", "kind": "EdgeInferenceService",
         "metadata": {"name": name, "namespace": ns},
         "spec": {"sliceRef": {"name": "surgery-drill"}, "model": base["spec"]["model"],
                  "runtime": "triton", "gpu": {"count": 0},
                  "resources": {"cpu": "100m", "memory": "512Mi"},
                  "scaling": {"minReplicas": 1, "maxReplicas": 1}}}]
    hospital.cluster.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))
    links = toxiproxy.start(tmp_path)
    release = ["upgrade", "medmec", str(helmchart.MAIN_CHART), "-n", "medmec-system",
               "--wait", "--timeout", helmchart.WAIT_TIMEOUT]
    installed = tmp_path / "values.yaml"  # put back as they were (`--set x=null` keeps x)
    installed.write_text(helmchart.helm(["get", "values", "medmec", "-n", "medmec-system", "-o", "yaml"],
                                        hospital.kubeconfig))
    try:
        def served_from() -> str | None:
            if hospital.condition("eis", ns, name, "Ready").get("status") != "True":
                return None
            pods = [p for p in hospital.pods(ns, f"app.kubernetes.io/instance={name}")
                    if not p["metadata"].get("deletionTimestamp")]
            nodes = {p["spec"].get("nodeName") for p in pods}
            if len(nodes) != 1 or None in nodes:
                return None
            zone = hospital.get("node", nodes.pop())["metadata"]["labels"][topology.ZONE_LABEL]
            return next(bs for bs, z in zones.items() if z == zone)

        first = wait_for(served_from, 300, f"{name} Ready on one real node",
                         explain=lambda: f"pods: {[p.get('status') for p in hospital.pods(ns, '')]}")
        host, values = hospital.cluster.state.host, []
        for bs in zones:
            port = netutil.free_port()
            links.create_proxy(bs, f"{host}:{port}",
                               hospital.services.address("medmec-system", f"medmec-reflector-{bs}", 7070))
            values += ["--set", f"qos.linkAddresses.{bs}={host}:{port}"]
        helmchart.helm([*release, "--reuse-values", *values, "--set", "qos.holdDown=20s"],
                       hospital.kubeconfig)

        seen = {}

        def slice_status(want_met: str, avoided: list[str]):
            def check():
                ms = seen["slice"] = hospital.get("medicalslice", "surgery-drill", "-n", ns)
                met = next((c for c in ms.get("status", {}).get("conditions") or [] if c["type"] == "QoSMet"), {})
                qos = ms.get("status", {}).get("qos") or {}
                return ms if met.get("status") == want_met and qos.get("avoidBaseStations") == avoided else None
            return check

        def stuck() -> str:
            """The slice's status and the prober's last lines, for a wait that times out."""
            prober = hospital.pods("medmec-system", "app.kubernetes.io/component=qos-prober")
            logs = hospital.cluster.kubectl("logs", "-n", "medmec-system", prober[0]["metadata"]["name"],
                                            "--tail=30", check=False).stdout if prober else ""
            return f"the slice's status: {seen.get('slice', {}).get('status')}; the prober's log:\n{logs}"

        wait_for(slice_status("True", []), 120, "QoSMet True through the emulated links", explain=stuck)
        links.add_latency(first, 300)
        ms = wait_for(slice_status("False", [first]), 120, f"QoSMet False and {first} avoided",
                      explain=stuck)
        measured = {m["baseStation"]: m for m in ms["status"]["qos"]["measured"]}
        assert measured[first]["meetsBudget"] == "False" and measured[first]["rttP99Ms"] > 100  # the budget
        other = next(bs for bs in zones if bs != first)
        assert wait_for(lambda: served_from() == other and other, 300, f"{name} serving from {other}",
                        explain=stuck)
        links.remove_toxic(first, "latency")
        wait_for(slice_status("True", []), 180, "QoSMet True and nothing avoided after the hold-down",
                 explain=stuck)
    finally:
        links.stop()
        helmchart.helm([*release, "-f", str(installed)], hospital.kubeconfig)
        hospital.cluster.kubectl("delete", "namespace", ns, "--wait=false")


def test_killing_the_active_operator_pod_hands_over_without_duplicate_children(hospital):
    pods = {p["metadata"]["name"] for p in hospital.pods("medmec-system", "app.kubernetes.io/component=operator")}
    # kopf's peer ids are <peering>@<pod name>/<start time>/<random>
    peers = {peer.split("@", 1)[1].split("/", 1)[0]: info["priority"]
             for peer, info in (hospital.get("clusterkopfpeering", "medmec").get("status") or {}).items()}
    assert pods <= set(peers) and len(pods) == 2, (pods, peers)
    active = max(pods, key=peers.__getitem__)
    hospital.cluster.kubectl("delete", "pod", "-n", "medmec-system", active, "--wait=false")
    eis = hospital.get("eis", "diabetes-risk", "-n", "imaging")
    # a field the GitOps overlay leaves alone, so that its next sync does not conflict
    hospital.cluster.kubectl("patch", "eis", "diabetes-risk", "-n", "imaging", "--type", "merge",
                             "-p", json.dumps({"spec": {"batching": {"maxBatchSize": 4}}}))  # default 8
    try:
        generation = eis["metadata"]["generation"] + 1
        wait_for(lambda: hospital.get("eis", "diabetes-risk", "-n", "imaging")["status"]
                 .get("observedGeneration") == generation, 120, "the change handled by the standby")
        deployments = [d for d in hospital.get("deployments", "-n", "imaging")["items"]
                       if any(o["name"] == "diabetes-risk" for o in d["metadata"].get("ownerReferences", []))]
        assert len(deployments) == 1
        command = deployments[0]["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[command.index("--max-batch-size") + 1] == "4"
    finally:
        hospital.cluster.kubectl("patch", "eis", "diabetes-risk", "-n", "imaging", "--type", "merge",
                                 "-p", json.dumps({"spec": {"batching": None}}))


def test_a_crashing_workload_shows_crashloopbackoff_and_its_last_words(hospital):
    """A nursing service given a tokens file it cannot read: the container exits, the kubelet
    backs off, and the resource says so with the container's own message. In the ambulance's
    slice, which spans the three base stations (ward 4A's single node is full by now)."""
    broken = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "broken-tokens", "namespace": "emergency"},
              "stringData": {"tokens.json": json.dumps({"nurse-token-0123456789": {"role": "nurse"}})}}
    service = {"apiVersion": "medmec.io/v1alpha1", "kind": "CloudNursingService",
               "metadata": {"name": "broken", "namespace": "emergency"},
               "spec": {"sliceRef": {"name": "ambulance-monitoring"}, "wards": [{"id": "5b"}],
                        "storage": {"type": "embedded", "size": "1Gi"},
                        "tokensSecretRef": {"name": "broken-tokens"}}}
    hospital.cluster.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in (broken, service)))
    try:
        seen = {}

        def crash_looping():
            seen["Ready"] = hospital.condition("cns", "emergency", "broken", "Ready")
            seen["pods"] = [p.get("status", {}) for p in hospital.pods("emergency", "app.kubernetes.io/instance=broken")]
            return seen["Ready"] if seen["Ready"].get("reason") == "CrashLoopBackOff" else None
        cond = wait_for(crash_looping, 240, "CrashLoopBackOff on the resource",
                        explain=lambda: f"seen: {seen}")
        assert cond["status"] == "False"
        assert "tokens file" in cond["message"], cond
        events = hospital.get("events", "-n", "emergency", "--field-selector",
                              "involvedObject.kind=CloudNursingService,involvedObject.name=broken")["items"]
        assert any(e["reason"] == "CrashLoopBackOff" for e in events), events
    finally:
        hospital.cluster.kubectl("delete", "cns", "broken", "-n", "emergency", "--wait=false")
        hospital.cluster.kubectl("delete", "secret", "broken-tokens", "-n", "emergency")


def test_a_node_without_the_image_shows_imagepullbackoff_until_it_is_loaded_again(hospital):
    """The second-opinion model's node loses the medmec image (a node replaced, a disk
    cleaned) and its pod is replaced: the registry cannot serve it, and the resource says
    ImagePullBackOff with the image's name; once the image is loaded again it serves."""
    from medmec.localcluster import cluster, realnodes
    from medmec.localcluster.ledger import run_checked
    state = hospital.cluster.state
    if state is None:
        pytest.skip("removes an image from a real node of the local cluster")
    name, selector = "breast-cancer-second-opinion", "app.kubernetes.io/instance=breast-cancer-second-opinion"
    (before,) = hospital.pods("imaging", selector)
    node = before["spec"]["nodeName"]
    ref = before["spec"]["containers"][0]["image"]
    real_nodes = state.topology().real_nodes()
    others = [n.name for n in real_nodes if n.name != node]
    for other in others:  # the replacement must come back to this node
        hospital.cluster.kubectl("cordon", other)
    try:
        real = next(n for n in real_nodes if n.name == node)
        run_checked([*realnodes.ctr_command(state.folder, state.plan(), real),
                     "-n", "k8s.io", "images", "rm", ref])
        hospital.cluster.kubectl("delete", "pod", "-n", "imaging", before["metadata"]["name"])
        cond = wait_for(lambda: (c := hospital.condition("eis", "imaging", name, "Ready")).get(
            "reason") in {"ImagePullBackOff", "ErrImagePull"} and c, 180, "ImagePullBackOff")
        assert cond["status"] == "False"
        assert ref.split(":")[0] in cond["message"], cond
        events = hospital.get("events", "-n", "imaging", "--field-selector",
                              f"involvedObject.kind=EdgeInferenceService,involvedObject.name={name}")["items"]
        assert any(e["reason"] == cond["reason"] for e in events), events
    finally:
        cluster.load_images(state, log=demo.log)
        for other in others:
            hospital.cluster.kubectl("uncordon", other)
    # the kubelet's back-off may wait minutes: a new pod finds the image at once
    for stuck in hospital.pods("imaging", selector):
        hospital.cluster.kubectl("delete", "pod", "-n", "imaging", stuck["metadata"]["name"], "--wait=false")
    wait_for(lambda: hospital.condition("eis", "imaging", name, "Ready").get("status") == "True",
             180, "the second opinion Ready again")


def test_the_console_in_chromium_shows_the_hospital_running_on_the_real_pods(hospital):
    """The chart's console, through its Service, with the token the chart generated: every
    inference service's ready replicas as the cluster has them, the fleet, the slices."""
    from medmec.workloads.console import testing
    token = demo.secret_value(hospital.kubeconfig, "medmec-system", "medmec-console-tokens",
                              "tokens").split()[0]
    services = {(e["metadata"]["namespace"], e["metadata"]["name"]): e
                for e in hospital.get("eis", "-A")["items"]
                if e["metadata"]["namespace"] in HOSPITAL_NAMESPACES}
    with testing.browser() as context:
        page = context.new_page()
        page.goto(hospital.services.url("medmec-system", "medmec-console", 8080))
        page.fill("#token", token)
        page.click("#login-form button")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        for (ns, name), eis in services.items():
            row = page.locator(f'#inference tr[data-key="{ns}/{name}"]')
            ready_replicas = eis["status"]["readyReplicas"]
            assert ready_replicas >= 1
            # the page refreshes on its own: a pod just replaced shows on the next one
            wait_for(lambda: f"{ready_replicas} / " in row.text_content()
                     and "Ready" in row.text_content(), 60, f"{ns}/{name} as the cluster has it",
                     explain=lambda: f"the page shows: {row.text_content()}")
        assert page.locator('#fleets [data-key="logistics/delivery-robots"]').count() == 1
        for key in ("surgery/robotic-surgery", "imaging/radiology", "logistics/robot-logistics",
                    "wards/bedside-monitoring"):
            assert page.locator(f'#slices [data-key="{key}"]').count() == 1
        page.screenshot(path=str(testing.artifacts_dir("console") / "real-pods.png"), full_page=True)


def test_helm_upgrade_with_a_changed_value_rolls_the_operator_out(hospital):
    from medmec.workloads.gitops import helmchart
    before = hospital.get("deployment", "medmec-operator", "-n", "medmec-system")
    helmchart.helm(["upgrade", "medmec", str(helmchart.MAIN_CHART), "-n", "medmec-system",
                    "--reuse-values", "--set", "operator.recheckSeconds=7", "--wait",
                    "--timeout", helmchart.WAIT_TIMEOUT], hospital.kubeconfig)
    after = hospital.get("deployment", "medmec-operator", "-n", "medmec-system")
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    env = {e["name"]: e.get("value") for e in after["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MEDMEC_OPERATOR_RECHECK_SECONDS"] == "7"
    assert after["status"].get("updatedReplicas") == after["status"].get("readyReplicas") == 2


def test_helm_uninstall_keeps_the_hospitals_resources_and_stored_records(hospital):
    """Last in the module: the platform goes, what users stored stays (as the chart's notes say)."""
    from medmec.workloads.gitops import helmchart
    claims = {c["metadata"]["name"] for c in hospital.get("pvc", "-A")["items"]}
    helmchart.uninstall(hospital.kubeconfig)
    wait_for(lambda: not hospital.pods("medmec-system", "app.kubernetes.io/component=operator"),
             120, "the operator pods gone")
    assert len(hospital.get("basestations")["items"]) == 3
    assert {s["metadata"]["name"] for s in hospital.get("medicalslices", "-A")["items"]} >= {
        "robotic-surgery", "radiology", "robot-logistics", "bedside-monitoring"}
    assert hospital.get("secret", "medmec-model-store", "-n", "medmec-system")["data"]
    assert {c["metadata"]["name"] for c in hospital.get("pvc", "-A")["items"]} == claims
    assert hospital.get("cns", "bedside", "-n", "wards")["metadata"]["name"] == "bedside"
