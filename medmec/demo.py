"""`make demo`: medmec on the local cluster's real nodes, end to end, in one command.

1. the local cluster (reused when running): a real node at each 5G base station's MEC site,
   beside simulated ones, with the medmec and MinIO images loaded;
2. the two Helm charts as hospital IT installs them (CRDs, then the platform with the sample
   hospital St Luke's values): the operator (two replicas), the in-cluster MinIO model store,
   the QoS prober with its reflectors, the console, the base stations and slices;
3. the sample models pushed into the in-cluster store through its Service (checksummed);
4. the hospital's services: inference from its GitOps overlay, the robot fleet, the nursing
   service and ambulance AMB-07 from crds/samples; the operator deploys each as pods on the
   real node of the right base station; waits until every resource is Ready;
5. real requests through the Services, as clients on the hospital network send them: six
   breast-cancer cases (KServe v2, one escalated to the larger model), a pharmacy-to-ward
   robot delivery, a wearable's vitals raising a ward alert, the ambulance's drive.

No workload runs as a local process: `medmec cluster down` removes everything.
"""
from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

from medmec.cluster_services import ServiceAddresses
from medmec.localcluster import cluster

HOSPITAL = "st-luke"
REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
SAMPLES = REPO / "crds" / "samples"
WARD = "4a"
PLATFORM_NS = "medmec-system"
# the in-cluster model store's volume: the local cluster's volumes are 5 Gi each
STORE_SIZE = "2Gi"


def log(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def install_platform(kubeconfig: str, images: dict) -> None:
    """The two documented `helm install`s, with the images (images.Image by name) the
    cluster's nodes hold."""
    from medmec.workloads.gitops import helmchart

    def image(name: str) -> dict:
        repository, tag = images[name].ref.rsplit(":", 1)
        return {"repository": repository, "tag": tag}
    helmchart.install_hospital(kubeconfig, HOSPITAL, set_values={
        "image": image("medmec"), "modelStore.minio.image": image("minio"),
        "modelStore.minio.persistence.size": STORE_SIZE})
    log(f"helm: installed charts medmec-crds and medmec for {HOSPITAL} (every platform pod Ready)")


def secret_value(kubeconfig: str, namespace: str, name: str, key: str) -> str:
    from medmec.operator import devtools
    data = json.loads(devtools.kubectl(kubeconfig, "get", "secret", name, "-n", namespace,
                                       "-o", "json").stdout)["data"]
    return base64.b64decode(data[key]).decode()


def push_models(kubeconfig: str, services: ServiceAddresses) -> None:
    """The AI team's CI step: every sample model version into the in-cluster store (a
    version already there, from an earlier run, must hold the same bytes)."""
    from medmec.workloads.modelstore.store import ModelStore, StoreSettings, VersionExists

    def key(name: str) -> str:
        return secret_value(kubeconfig, PLATFORM_NS, "medmec-model-store", name)
    endpoint = services.address(PLATFORM_NS, "medmec-minio", 9000)
    store = ModelStore(StoreSettings(endpoint=endpoint, access_key=key("access-key"),
                                     secret_key=key("secret-key")))
    for version_dir in sorted(MODELS.glob("*/[0-9]*")):
        try:
            meta = store.push(version_dir)
        except VersionExists:
            meta = json.loads((version_dir / "metadata.json").read_text())
            if store.metadata(meta["name"], meta["version"])["sha256"] != meta["sha256"]:
                raise
            log(f"model {meta['name']} version {meta['version']} is in the store already")
            continue
        log(f"pushed model {meta['name']} version {meta['version']} to the store at {endpoint}")


def apply_hospital(kubeconfig: str) -> None:
    from medmec.operator import devtools, kube
    from medmec.workloads.gitops import overlays

    overlays.sync(kubeconfig, HOSPITAL)
    kube.use(kubeconfig)
    kube.apply(devtools.sample_map_configmap())  # the fleet's map: the dispatcher's sample
    for sample in ("40-robots.yaml", "50-nursing.yaml", "60-ambulance.yaml"):
        devtools.kubectl(kubeconfig, "apply", "-f", str(SAMPLES / sample))
    log("applied the GitOps overlay (inference) and the robot fleet, nursing and ambulance samples")
    devtools.wait_converged(kubeconfig, timeout=420)
    log("every medmec resource is Ready")


def diagnose(services: ServiceAddresses) -> list[dict]:
    """Six real cases of the held-out data through the screening Service (KServe v2 HTTP)."""
    import numpy as np
    import tritonclient.http as httpclient
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rows = data.data[[0, 19, 40, 73, 100, 150]].astype(np.float32)
    client = httpclient.InferenceServerClient(
        services.address("imaging", "breast-cancer-screening-predictor", 8000))
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


def deliver(services: ServiceAddresses) -> dict:
    """The fleet's robots amr-01 and amr-02 come online at their docks; the pharmacy sends
    medicine to ward room a1 on floor 2."""
    import grpc
    from medmec.workloads.dispatch.protos import dispatch_pb2, dispatch_pb2_grpc

    target = services.address("logistics", "delivery-robots-dispatch", 50051)
    with grpc.insecure_channel(target) as channel:
        stub = dispatch_pb2_grpc.DispatchStub(channel)
        for robot, home, capabilities in (("amr-01", "f0-park-00a", ["medicine", "specimen"]),
                                          ("amr-02", "f0-park-00b", ["medicine", "meals"])):
            stub.RegisterRobot(dispatch_pb2.RegisterRobotRequest(
                robot_id=robot, node=home, speed_mps=1.0, payload_kg=30, battery_pct=90,
                capabilities=capabilities))
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


def nursing_tokens(kubeconfig: str) -> dict[str, str]:
    """The ward's sample credentials (crds/samples/50-nursing.yaml), by role."""
    tokens = json.loads(secret_value(kubeconfig, "wards", "nursing-tokens", "tokens.json"))["tokens"]
    return {p["role"]: token for token, p in tokens.items() if p["ward"] == WARD}


def news2_alert(services: ServiceAddresses, tokens: dict[str, str]) -> dict:
    """Admit a patient, stream one deteriorating set of vitals from a wearable gateway,
    and read the ward's alert (no patient identifier leaves the service in this output)."""
    import secrets

    import grpc
    import httpx
    from medmec.workloads.nursing.protos import nursing_pb2, nursing_pb2_grpc

    def auth(role):
        return {"Authorization": f"Bearer {tokens[role]}"}

    with httpx.Client(base_url=services.url("wards", "bedside-nursing", 8080), timeout=10) as http:
        admitted = http.post(f"/wards/{WARD}/admissions", headers=auth("doctor"), json={
            "patient": {"resourceType": "Patient", "identifier": [
                {"system": "https://medmec.io/fhir/sid/wristband", "value": secrets.token_hex(6)}],
                "gender": "male", "birthDate": "1951-07-19"},
            "spo2_scale": 1, "assigned_nurse": "nurse-4a"})
        admitted.raise_for_status()
        patient_id = admitted.json()["patient"]["id"]
        with grpc.insecure_channel(services.address("wards", "bedside-nursing", 50051)) as channel:
            stub = nursing_pb2_grpc.CloudNursingStub(channel)
            reading = nursing_pb2.VitalReading(
                reading_id=f"demo-{secrets.token_hex(4)}", patient_id=patient_id,
                effective_time_ms=int(time.time() * 1000), respiration_rate=26, spo2=91,
                on_oxygen=False, systolic_bp=98, pulse=124, consciousness="A",
                temperature_c=38.6)
            acks = stub.StreamVitals(iter([nursing_pb2.VitalBatch(readings=[reading])]),
                                     metadata=[("authorization", f"Bearer {tokens['device']}")])
            ack = next(acks)
        alerts = http.get(f"/wards/{WARD}/alerts", headers=auth("nurse")).json()["alerts"]
    shown = [{k: a[k] for k in ("ward", "score", "risk", "parameters", "raised_at")}
             for a in alerts if a["patient_id"] == patient_id]  # no patient identifiers printed
    return {"readings_acknowledged": ack.handled, "alerts": shown}


def ambulance(kubeconfig: str, services: ServiceAddresses, tokens: dict[str, str]) -> dict:
    """AMB-07's session follows it across the base stations; the ward gets every sample."""
    from medmec.operator import devtools
    from medmec.workloads.mobilecare.demo import emergency_rescue

    et = json.loads(devtools.kubectl(kubeconfig, "get", "emergencytransport", "amb-07", "-n",
                                     "emergency", "-o", "json").stdout)
    return emergency_rescue(services.url("emergency", "amb-07-mobility", 8090), "amb-07",
                            et["spec"]["relocation"]["route"], services.dial,
                            services.url("wards", "bedside-nursing", 8080), WARD, tokens["doctor"])


def kubectl_out(kubeconfig: str, *args: str) -> str:
    from medmec.operator import devtools
    return devtools.kubectl(kubeconfig, *args).stdout


def live_columns_filled(kubeconfig: str, edge_site: str) -> bool:
    """The operator has read the workloads' live figures since the requests: the fleet's
    robots online, the ambulance's session at its last site."""
    def status(kind: str, namespace: str, name: str) -> dict:
        return json.loads(kubectl_out(kubeconfig, "get", kind, name, "-n", namespace,
                                      "-o", "json")).get("status", {})
    return (status("carerobotfleet", "logistics", "delivery-robots").get("robotsOnline", 0) > 0
            and status("emergencytransport", "emergency", "amb-07").get("edgeSite") == edge_site)


def main() -> int:
    from medmec.waiting import wait_for

    folder = cluster.state_dir()
    try:
        state = cluster.up(folder, log=log)  # the default topology: real nodes at each site
    except cluster.ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    kubeconfig = str(state.kubeconfig)
    services = ServiceAddresses(kubeconfig)

    section("The hospital's edge: nodes by 5G base station")
    print(cluster.describe(state))
    try:
        install_platform(kubeconfig, cluster.load_images(state, log))
        push_models(kubeconfig, services)
        apply_hospital(kubeconfig)
        section("kubectl get pods -A -o wide: the pods on the real node of each base station")
        print(kubectl_out(kubeconfig, "get", "pods", "-A", "-o", "wide"))
        tokens = nursing_tokens(kubeconfig)

        section("AI diagnosis: 6 held-out breast-cancer cases through the screening Service (KServe v2)")
        for answer in diagnose(services):
            print(f"  {json.dumps(answer)}")
        section("Robot delivery: medicine from the pharmacy to floor 2, room a1")
        print(f"  {json.dumps(deliver(services))}")
        section("Cloud nursing: a wearable's vitals, scored with NEWS2")
        print(f"  {json.dumps(news2_alert(services, tokens), default=str)}")
        section("Emergency rescue: ambulance AMB-07 drives across the three base stations")
        drive = ambulance(kubeconfig, services, tokens)
        print(f"  {json.dumps(drive)}")

        wait_for(lambda: live_columns_filled(kubeconfig, drive["edge_site"]), 60,
                 "the live figures of the fleet and the ambulance")
        section("kubectl get medmec -A: every column from the running workloads")
        print(kubectl_out(kubeconfig, "get", "medmec", "-A"))
    except Exception as err:
        print(f"\nerror: {err}\n(logs: kubectl logs -n NAMESPACE POD, {folder / 'logs'}; the "
              "cluster keeps running; `medmec cluster down` stops everything)", file=sys.stderr)
        return 1

    console = services.url(PLATFORM_NS, "medmec-console", 8080)
    print(f"""
== Explore
  eval "$(.venv/bin/medmec cluster env)"       # KUBECONFIG, and kubectl and helm on PATH
  kubectl get medmec -A                        # slices, services, fleets, nursing, ambulances
  kubectl describe ms robotic-surgery -n surgery
  kubectl get pods -A -o wide                  # on the real node of each base station
  kubectl logs -n logistics deploy/delivery-robots-dispatch
  helm list -A; helm test medmec -n medmec-system
  curl {services.url("logistics", "delivery-robots-dispatch", 8080)}/v1/fleet    # the robot fleet
  {console}                  # the console (token: see `helm status medmec -n medmec-system`)
  .venv/bin/medmec cluster status              # nodes by base station

== Tear down
  .venv/bin/medmec cluster down""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
