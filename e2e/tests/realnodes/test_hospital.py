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
from pathlib import Path

import pytest

from medmec import demo
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
def hospital(real_cluster) -> Hospital:
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
    return h


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
        try:
            cond = wait_for(crash_looping, 240, "CrashLoopBackOff on the resource")
        except TimeoutError as err:
            raise AssertionError(f"{err}; seen: {seen}") from None
        assert cond["status"] == "False"
        assert "tokens file" in cond["message"], cond
        events = hospital.get("events", "-n", "emergency", "--field-selector",
                              "involvedObject.kind=CloudNursingService,involvedObject.name=broken")["items"]
        assert any(e["reason"] == "CrashLoopBackOff" for e in events), events
    finally:
        hospital.cluster.kubectl("delete", "cns", "broken", "-n", "emergency", "--wait=false")
        hospital.cluster.kubectl("delete", "secret", "broken-tokens", "-n", "emergency")


def test_the_console_in_chromium_shows_the_hospital_running_on_the_real_pods(hospital):
    """The chart's console, through its Service, with the token the chart generated: every
    inference service's ready replicas as the cluster has them, the fleet, the slices."""
    from medmec.workloads.console import testing
    token = demo.secret_value(hospital.kubeconfig, "medmec-system", "medmec-console-tokens",
                              "tokens").split()[0]
    services = {(e["metadata"]["namespace"], e["metadata"]["name"]): e
                for e in hospital.get("eis", "-A")["items"]}
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
            assert f"{ready_replicas} / " in row.text_content(), row.text_content()
            assert "Ready" in row.text_content()
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
