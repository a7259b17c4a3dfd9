"""`make demo`: medmec on the local control plane, end to end, in one command.

1. the local cluster (reused when running): nodes grouped by 5G base station;
2. a MinIO model store with the sample models pushed (checksummed, immutable);
3. the Helm charts for the sample hospital St Luke's (CRDs, RBAC, PriorityClasses,
   base stations, slices) and the operator, running with the chart's ServiceAccount;
4. the hospital's services: inference from its GitOps overlay, the robot fleet and the
   nursing service from crds/samples; waits until every resource is Ready;
5. the workloads as local processes (pods on KWOK nodes run no containers): a Triton
   inference server with a canary and escalation to a larger model, the robot dispatcher
   on the sample hospital map, the nursing service;
6. a real request to each, and what it returned.

Everything it starts is attached to the cluster's state: `medmec cluster down` stops it all;
a second `make demo` restarts the demo's processes on the running cluster.
"""
from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from pathlib import Path

from medmec import processes
from medmec.localcluster import cluster, topology

HOSPITAL = "st-luke"
REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
SAMPLES = REPO / "crds" / "samples"
WARD = "ward-4a"


def log(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def start_model_store(folder: Path, work: Path):
    from medmec.workloads.modelstore.minio_server import MinioServer
    from medmec.workloads.modelstore.store import ModelStore

    server = MinioServer.start(work / "minio")
    cluster.attach(folder, server.proc)
    store = ModelStore(server.settings)
    for version_dir in sorted(MODELS.glob("*/[0-9]*")):
        meta = store.push(version_dir)
        log(f"pushed model {meta['name']} version {meta['version']} to {server.endpoint}")
    return server, store


def install_and_run_operator(folder: Path, kubeconfig: str, work: Path, store_server) -> None:
    from medmec.operator import devtools
    from medmec.workloads.gitops import helmchart

    store = {"modelStore.endpoint": store_server.endpoint,
             "modelStore.credentials": {"accessKey": store_server.settings.access_key,
                                        "secretKey": store_server.settings.secret_key}}
    helmchart.install_hospital(kubeconfig, HOSPITAL, set_values=store)
    log(f"helm: installed charts medmec-crds and medmec for {HOSPITAL}")
    argv, env = helmchart.local_operator(kubeconfig, HOSPITAL, work / "operator", store)
    proc = processes.start("medmec-operator", argv, work / "operator" / "operator.log", env=env)
    cluster.attach(folder, proc)
    port = env["MEDMEC_OPERATOR_LIVENESS_PORT"]
    processes.wait_ready(proc, lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "live")
    log("operator running with the chart's ServiceAccount token (its RBAC only)")
    devtools.install(kubeconfig, local_volumes=4)  # PersistentVolumes: no provisioner here


def apply_hospital(kubeconfig: str) -> None:
    from medmec.operator import devtools, kube
    from medmec.workloads.gitops import overlays

    overlays.sync(kubeconfig, HOSPITAL)
    kube.use(kubeconfig)
    kube.apply(devtools.sample_map_configmap())  # the fleet's map: the dispatcher's sample
    for sample in ("40-robots.yaml", "50-nursing.yaml"):
        devtools.kubectl(kubeconfig, "apply", "-f", str(SAMPLES / sample))
    log("applied the GitOps overlay (inference) and the robot fleet and nursing samples")
    devtools.wait_converged(kubeconfig, timeout=240)
    log("every medmec resource is Ready")


def _http_ok(url: str) -> bool:
    import urllib.request
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def start_inference(folder: Path, work: Path, store_server):
    from medmec.workloads.inference.process import InferenceServer

    models = work / "models"  # filled from the store, checksums verified, as the init step does
    large = InferenceServer.start(work, models, "breast-cancer-large", "1",
                                  env=store_server.env(), name="inference-large")
    cluster.attach(folder, large.proc)
    edge = InferenceServer.start(
        work, models, "breast-cancer", "1", env=store_server.env(), name="inference-edge",
        extra_args=["--canary-version", "2", "--canary-percent", "20",
                    "--max-batch-size", "16", "--max-queue-delay-us", "500",
                    "--escalation-threshold", "0.9", "--escalation-url", large.url,
                    "--escalation-model", "breast-cancer-large"])
    cluster.attach(folder, edge.proc)
    log(f"inference: edge {edge.url} (v1, canary v2 20%), escalation {large.url}")
    return edge


def diagnose(edge) -> list[dict]:
    """Six real cases of the held-out data through the KServe v2 HTTP API."""
    import numpy as np
    import tritonclient.http as httpclient
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rows = data.data[[0, 19, 40, 73, 100, 150]].astype(np.float32)
    client = httpclient.InferenceServerClient(edge.http_address)
    answers = []
    for row in rows:
        tensor = httpclient.InferInput("features", [1, 30], "FP32")
        tensor.set_data_from_numpy(row[None, :])
        result = client.infer("breast-cancer", [tensor])
        answers.append({
            "probabilities": [round(float(p), 3) for p in result.as_numpy("probabilities")[0]],
            "decided_by": _text(result, "decided_by"),
            "served_by_version": _text(result, "model_version"),
            "reason": _text(result, "reason")})
    return answers


def _text(result, output: str) -> str:
    return result.as_numpy(output).ravel()[0].decode()


def start_dispatch(folder: Path, work: Path):
    from medmec.workloads.dispatch.local_service import LocalDispatcher
    dispatcher = LocalDispatcher.start(work)  # the sample hospital's map
    cluster.attach(folder, dispatcher.proc)
    log(f"dispatch: gRPC {dispatcher.target}, fleet view {dispatcher.url}/v1/fleet")
    return dispatcher


def deliver(dispatcher) -> dict:
    """Two robots register; the pharmacy sends medicine to ward room a1 on floor 2."""
    import grpc
    from medmec.workloads.dispatch.protos import dispatch_pb2, dispatch_pb2_grpc

    with grpc.insecure_channel(dispatcher.target) as channel:
        stub = dispatch_pb2_grpc.DispatchStub(channel)
        for robot, bay in (("tug-1", "pharmacy-bay-1"), ("tug-2", "laboratory-bay-1")):
            stub.RegisterRobot(dispatch_pb2.RegisterRobotRequest(
                robot_id=robot, node=bay, speed_mps=1.0, payload_kg=40, battery_pct=90,
                capabilities=["medicine", "specimen", "linen", "meals"]))
        task = stub.SubmitTask(dispatch_pb2.SubmitTaskRequest(
            pickup="pharmacy", dropoff="f2-room-a1w", weight_kg=2.5, kind="medicine"))
        deadline = time.monotonic() + 30
        while not task.robot_id and time.monotonic() < deadline:
            time.sleep(0.5)
            task = stub.GetTask(dispatch_pb2.TaskRef(task_id=task.task_id))
        route = next(stub.StreamRoute(dispatch_pb2.StreamRouteRequest(robot_id=task.robot_id),
                                      timeout=10))
    return {"task": task.task_id, "robot": task.robot_id,
            "planned_dropoff": task.planned_dropoff.ToDatetime().isoformat(timespec="seconds"),
            "route": " -> ".join(w.node for w in route.waypoints[:6]) + " ..."}


def start_nursing(folder: Path, work: Path) -> tuple[str, str, dict]:
    from medmec.workloads.nursing.local_service import LocalNursingService

    tokens = {"dr-okafor": {"token": secrets.token_urlsafe(24), "role": "doctor", "ward": WARD},
              "nurse-017": {"token": secrets.token_urlsafe(24), "role": "nurse", "ward": WARD},
              "gateway-1": {"token": secrets.token_urlsafe(24), "role": "device", "ward": WARD}}
    (work / "nursing").mkdir(parents=True, exist_ok=True)
    service = LocalNursingService(work / "nursing", f"sqlite:///{work / 'nursing' / 'nursing.db'}",
                                  tokens, [WARD]).start()
    cluster.attach(folder, service.proc)
    log(f"nursing: REST {service.url}, gRPC {service.target}")
    return service.url, service.target, tokens


def news2_alert(url: str, target: str, tokens: dict) -> dict:
    """Admit a patient, stream one deteriorating set of vitals from a wearable gateway,
    and read the ward's alert (no patient identifier leaves the service in this output)."""
    import grpc
    import httpx
    from medmec.workloads.nursing.protos import nursing_pb2, nursing_pb2_grpc

    def auth(who):
        return {"Authorization": f"Bearer {tokens[who]['token']}"}

    with httpx.Client(base_url=url, timeout=10) as http:
        admitted = http.post(f"/wards/{WARD}/admissions", headers=auth("dr-okafor"), json={
            "patient": {"resourceType": "Patient", "identifier": [
                {"system": "https://medmec.io/fhir/sid/wristband", "value": secrets.token_hex(6)}],
                "gender": "male", "birthDate": "1951-07-19"},
            "spo2_scale": 1, "assigned_nurse": "nurse-017"})
        admitted.raise_for_status()
        patient_id = admitted.json()["patient"]["id"]
        with grpc.insecure_channel(target) as channel:
            stub = nursing_pb2_grpc.CloudNursingStub(channel)
            reading = nursing_pb2.VitalReading(
                reading_id="demo-1", patient_id=patient_id,
                effective_time_ms=int(time.time() * 1000), respiration_rate=26, spo2=91,
                on_oxygen=False, systolic_bp=98, pulse=124, consciousness="A",
                temperature_c=38.6)
            acks = stub.StreamVitals(iter([nursing_pb2.VitalBatch(readings=[reading])]),
                                     metadata=[("authorization", f"Bearer {tokens['gateway-1']['token']}")])
            ack = next(acks)
        alerts = http.get(f"/wards/{WARD}/alerts", headers=auth("nurse-017")).json()["alerts"]
    shown = [{k: a[k] for k in ("ward", "score", "risk", "parameters", "raised_at")}
             for a in alerts]  # the demo prints no patient identifiers either
    return {"readings_acknowledged": ack.handled, "alerts": shown}


def show_resources(kubeconfig: str) -> None:
    from medmec.operator import devtools
    print(devtools.kubectl(kubeconfig, "get", "medmec", "-A").stdout)


def main() -> int:
    folder = cluster.state_dir()
    try:
        # the workloads below still run as local processes beside simulated nodes; with the
        # default topology's real nodes their pods would wait for an image-backed install
        state = cluster.up(folder, str(topology.KWOK_ONLY), log=log)
    except cluster.ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    kubeconfig = str(state.kubeconfig)
    stopped = cluster.stop_addons(folder)
    if stopped:
        log(f"restarting the demo's processes ({', '.join(stopped)})")
    work = folder / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    section("The hospital's edge: nodes by 5G base station")
    print(cluster.describe(state))
    try:
        store_server, _ = start_model_store(folder, work)
        install_and_run_operator(folder, kubeconfig, work, store_server)
        apply_hospital(kubeconfig)
        section("kubectl get medmec -A")
        show_resources(kubeconfig)

        edge = start_inference(folder, work, store_server)
        dispatcher = start_dispatch(folder, work)
        nursing_url, nursing_target, tokens = start_nursing(folder, work)

        section("AI diagnosis: 6 held-out breast-cancer cases through Triton (KServe v2)")
        for answer in diagnose(edge):
            print(f"  {json.dumps(answer)}")
        section("Robot delivery: medicine from the pharmacy to floor 2, room a1")
        print(f"  {json.dumps(deliver(dispatcher))}")
        section("Cloud nursing: a wearable's vitals, scored with NEWS2")
        print(f"  {json.dumps(news2_alert(nursing_url, nursing_target, tokens), default=str)}")
    except Exception as err:
        print(f"\nerror: {err}\n(logs: {work}, {folder / 'logs'}; the cluster keeps running; "
              "`medmec cluster down` stops everything)", file=sys.stderr)
        return 1

    print(f"""
== Explore
  eval "$(.venv/bin/medmec cluster env)"       # KUBECONFIG, and kubectl and helm on PATH
  kubectl get medmec -A                        # slices, services, fleets, nursing
  kubectl describe ms robotic-surgery -n surgery
  kubectl get pods -A -o wide                  # placed on GPU nodes near their base station
  helm list -A
  curl {dispatcher.url}/v1/fleet    # the robot fleet
  .venv/bin/medmec cluster status              # every process, nodes by base station
  logs: {work}

== Tear down
  .venv/bin/medmec cluster down""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
