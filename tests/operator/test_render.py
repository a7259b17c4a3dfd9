"""The pure renderers: what each resource becomes, following the workloads' contracts."""
import copy
import json

import yaml

from medmec.operator import render_fleet, render_inference, render_nursing, render_slice
from medmec.operator.devtools import SAMPLES_DIR
from medmec.operator.profiles import resolve_qos
from medmec.operator.settings import OperatorSettings

SETTINGS = OperatorSettings(store_endpoint="minio.store:9000", store_secret="store-creds")


def _sample(kind: str, name: str) -> dict:
    for path in sorted(SAMPLES_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
                doc["metadata"]["uid"] = f"uid-{name}"
                return doc
    raise LookupError(name)


def _by_kind(objects):
    return {o["kind"]: o for o in objects}


def _container_args(dep):
    return dep["spec"]["template"]["spec"]["containers"][0]["command"]


def test_slice_children_carry_budget_isolation_contract_and_owner():
    ms = _sample("MedicalSlice", "radiology")
    qos = resolve_qos(ms["spec"])
    objs = _by_kind(render_slice.children(ms, qos, ["mec-north", "mec-south"]))
    quota = objs["ResourceQuota"]["spec"]["hard"]
    assert quota == {"requests.cpu": "32", "requests.memory": "128Gi", "requests.nvidia.com/gpu": "4"}
    policy = objs["NetworkPolicy"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"medmec.io/slice": "radiology"}}
    assert policy["ingress"][0] == {"from": [{"podSelector": {"matchLabels": {"medmec.io/slice": "radiology"}}}]}
    assert policy["ingress"][2] == {"from": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
                                    "ports": [{"protocol": "TCP", "port": 8000},
                                              {"protocol": "TCP", "port": 8001}]}
    contract = json.loads(objs["ConfigMap"]["data"]["qos.json"])
    assert contract["snssai"] == "1-000002" and contract["uplinkMbps"] == 100
    assert contract["zones"] == ["mec-north", "mec-south"]
    for obj in objs.values():
        ref = obj["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("MedicalSlice", "uid-radiology", True)


def test_shared_isolation_admits_the_whole_namespace():
    ms = _sample("MedicalSlice", "bedside-monitoring")
    policy = render_slice.network_policy(ms)["spec"]
    assert policy["ingress"][0] == {"from": [{"podSelector": {}}]}


def test_priority_classes_order_critical_high_standard():
    values = [render_slice.priority_class(p)["value"] for p in ("critical", "high", "standard")]
    assert values == sorted(values, reverse=True)
    assert render_slice.priority_class("critical")["preemptionPolicy"] == "PreemptLowerPriority"


def test_inference_deployment_places_on_slice_zones_with_gpus_and_checked_model():
    eis = _sample("EdgeInferenceService", "chest-xray-triage")
    ms = _sample("MedicalSlice", "radiology")
    objs = _by_kind(render_inference.children(eis, ms, ["mec-south", "mec-north"], SETTINGS))
    dep = objs["Deployment"]
    assert "replicas" not in dep["spec"]  # the autoscaler owns the replica count
    pod = dep["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "medmec-high"
    node = pod["affinity"]["nodeAffinity"]
    assert node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"] == [{"key": "topology.kubernetes.io/zone", "operator": "In",
                                 "values": ["mec-north", "mec-south"]}]
    assert node["preferredDuringSchedulingIgnoredDuringExecution"][0]["preference"][
        "matchExpressions"][0]["values"] == ["NVIDIA-L40S"]
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    server = pod["containers"][0]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert _container_args(dep) == [
        "medmec", "serve", "inference", "--model-dir", "/models", "--model", "chest-xray",
        "--version", "1", "--http-port", "8000", "--grpc-port", "8001", "--metrics-port", "8002",
        "--max-batch-size", "16", "--max-queue-delay-us", "500"]
    fetch = pod["initContainers"][0]
    assert fetch["command"] == ["medmec", "models", "pull", "chest-xray", "1", "/models/chest-xray/1",
                                "--sha256", eis["spec"]["model"]["sha256"]]
    env = {e["name"]: e for e in fetch["env"]}
    assert env["MEDMEC_STORE_ENDPOINT"]["value"] == "minio.store:9000"
    assert env["MEDMEC_STORE_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "store-creds"
    assert env["MEDMEC_STORE_SECURE"]["value"] == "false"
    assert [p["port"] for p in objs["Service"]["spec"]["ports"]] == [8000, 8001, 8002]
    hpa = objs["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 4)
    assert hpa["scaleTargetRef"]["name"] == "chest-xray-triage-predictor"
    assert objs["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_canary_and_escalation_reach_the_server_and_a_second_fetch():
    eis = copy.deepcopy(_sample("EdgeInferenceService", "chest-xray-triage"))
    eis["spec"]["canary"] = {"version": "2", "sha256": "b" * 64, "trafficPercent": 10}
    eis["spec"]["escalation"] = {"confidenceThreshold": 0.7, "url": "http://cloud:8000"}
    dep = render_inference.deployment(eis, _sample("MedicalSlice", "radiology"), ["mec-south"], SETTINGS)
    args = _container_args(dep)
    assert args[args.index("--canary-version") + 1] == "2"
    assert args[args.index("--canary-percent") + 1] == "10"
    assert args[args.index("--escalation-model") + 1] == "chest-xray"
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["initContainers"]] == [
        "fetch-model", "fetch-canary-model"]
    # the server keeps the escalated cases in the store, with the slice namespace's key
    server = dep["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") for e in server["env"]}
    assert refs["MEDMEC_STORE_ACCESS_KEY"] == SETTINGS.store_secret
    del eis["spec"]["escalation"]
    plain = render_inference.deployment(eis, _sample("MedicalSlice", "radiology"), ["mec-south"], SETTINGS)
    assert "env" not in plain["spec"]["template"]["spec"]["containers"][0]
    assert render_inference.served_versions(eis["spec"]) == [
        {"version": "1", "trafficPercent": 90}, {"version": "2", "trafficPercent": 10}]


def test_cpu_only_service_has_no_gpu_request_or_toleration():
    eis = copy.deepcopy(_sample("EdgeInferenceService", "chest-xray-triage"))
    eis["spec"]["gpu"] = {"count": 0}
    pod = render_inference.deployment(eis, _sample("MedicalSlice", "radiology"), ["mec-south"],
                                      SETTINGS)["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["requests"]
    assert "tolerations" not in pod


def test_storage_uri_must_be_where_the_store_keeps_the_model():
    spec = _sample("EdgeInferenceService", "chest-xray-triage")["spec"]
    assert render_inference.storage_uri_problem(spec) is None
    moved = copy.deepcopy(spec)
    moved["model"]["storageUri"] = "s3://other-bucket/chest-xray/1"
    assert "s3://models/chest-xray/1" in render_inference.storage_uri_problem(moved)


def test_fleet_dispatcher_follows_the_dispatch_contract():
    crf = _sample("CareRobotFleet", "delivery-robots")
    objs = _by_kind(render_fleet.children(crf, _sample("MedicalSlice", "robot-logistics"),
                                          ["mec-east"], SETTINGS))
    dep = objs["Deployment"]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    assert _container_args(dep) == ["medmec", "serve", "dispatch", "--grpc-port", "50051",
                                    "--http-port", "8080", "--map", "/etc/medmec/map/map.json",
                                    "--state-dir", "/var/lib/medmec/dispatch",
                                    "--fleet-settings", "/etc/medmec/fleet/fleet.json"]
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["map"]["configMap"] == {"name": "hospital-map",
                                           "items": [{"key": "map.json", "path": "map.json"}]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "delivery-robots-dispatch-state"
    assert objs["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    fleet = json.loads(objs["ConfigMap"]["data"]["fleet.json"])
    assert [r["id"] for r in fleet["robots"]] == ["amr-01", "amr-02", "amr-03"]


def test_nursing_embedded_and_postgresql_storage():
    cns = _sample("CloudNursingService", "bedside")
    ms = _sample("MedicalSlice", "bedside-monitoring")
    objs = _by_kind(render_nursing.children(cns, ms, ["mec-east"], SETTINGS))
    args = _container_args(objs["Deployment"])
    assert args[args.index("--database") + 1] == "sqlite:////var/lib/medmec/nursing/nursing.db"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--ward"] == ["4a", "5b"]
    assert args[-2:] == ["--tokens-file", "/etc/medmec/tokens/tokens.json"]
    # early-warning thresholds from the settings ConfigMap, mounted where the flag says
    assert args[args.index("--settings") + 1] == "/etc/medmec/nursing/nursing.json"
    assert objs["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert objs["Deployment"]["spec"]["replicas"] == 1

    pg = copy.deepcopy(cns)
    pg["spec"]["storage"] = {"type": "postgresql", "postgresql": {"secretRef": {"name": "db"}}}
    objs = _by_kind(render_nursing.children(pg, ms, ["mec-east"], SETTINGS))
    assert "PersistentVolumeClaim" not in objs
    dep = objs["Deployment"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][container["command"].index("--database-env") + 1] == "MEDMEC_NURSING_DSN"
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "dsn"}
    assert dep["spec"]["replicas"] == 2 and dep["spec"]["strategy"]["type"] == "RollingUpdate"


def test_fleet_map_problems_name_what_is_wrong():
    spec = _sample("CareRobotFleet", "delivery-robots")["spec"]
    good = json.dumps({"nodes": [{"id": r["home"]} for r in spec["robots"]], "edges": [], "lifts": []})
    assert render_fleet.map_problem(spec, good) is None
    assert render_fleet.map_problem(spec, None)[0] == "MapNotFound"
    assert render_fleet.map_problem(spec, "{not json")[0] == "InvalidMap"
    reason, message = render_fleet.map_problem(spec, json.dumps({"nodes": [{"id": "f0-park-00a"}]}))
    assert reason == "RobotHomeNotOnMap" and "amr-02, amr-03" in message


def _pod_specs():
    eis, ms = _sample("EdgeInferenceService", "chest-xray-triage"), _sample("MedicalSlice", "radiology")
    crf = _sample("CareRobotFleet", next(iter(_names("CareRobotFleet"))))
    cns = _sample("CloudNursingService", next(iter(_names("CloudNursingService"))))
    zones = ["mec-north"]
    for objs in (render_inference.children(eis, ms, zones, SETTINGS),
                 render_fleet.children(crf, ms, zones, SETTINGS),
                 render_nursing.children(cns, ms, zones, SETTINGS)):
        yield _by_kind(objs)["Deployment"]["spec"]["template"]["spec"]


def _names(kind):
    from medmec.operator.devtools import SAMPLES_DIR
    return [d["metadata"]["name"] for p in sorted(SAMPLES_DIR.glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d and d["kind"] == kind]


def test_every_workload_pod_meets_the_restricted_pod_security_standard():
    for pod in _pod_specs():
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}
        # volumes (the dispatcher's and nursing's claims) writable by the image's user
        assert sc["fsGroup"] == sc["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        for c in pod.get("initContainers", []) + pod["containers"]:
            assert c["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}, c["name"]
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
            # a failing container's last log lines reach the status as its message
            assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]


def test_platform_components_reach_every_slice_and_the_namespace_enforces_restricted():
    for name in ("radiology", "bedside-monitoring"):
        ms = _sample("MedicalSlice", name)
        rules = render_slice.network_policy(ms)["spec"]["ingress"]
        assert {"from": [{"namespaceSelector": {},
                          "podSelector": {"matchLabels": {"medmec.io/platform": "true"}}}]} in rules
    ns = render_slice.namespace_security(_sample("MedicalSlice", "radiology"))
    assert ns["metadata"]["name"] == "imaging"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert render_slice.namespace_security(_sample("MedicalSlice", "radiology"), "baseline")[
        "metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_services_are_cluster_internal_unless_the_spec_exposes_them():
    eis, ms = _sample("EdgeInferenceService", "chest-xray-triage"), _sample("MedicalSlice", "radiology")
    internal = _by_kind(render_inference.children(eis, ms, ["mec-north"], SETTINGS))["Service"]
    assert internal["spec"]["type"] == "ClusterIP" and "externalTrafficPolicy" not in internal["spec"]
    exposed = copy.deepcopy(eis)
    exposed["spec"]["service"] = {"type": "LoadBalancer",
                                  "annotations": {"metallb.universe.tf/address-pool": "pacs"}}
    svc = _by_kind(render_inference.children(exposed, ms, ["mec-north"], SETTINGS))["Service"]
    # PACS workstations keep their address, so the slice's allowedIngress CIDR can admit them
    assert svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["metadata"]["annotations"] == {"metallb.universe.tf/address-pool": "pacs"}
    crf = copy.deepcopy(_sample("CareRobotFleet", "delivery-robots"))
    crf["spec"]["service"] = {"type": "NodePort"}
    svc = _by_kind(render_fleet.children(crf, ms, ["mec-east"], SETTINGS))["Service"]
    assert svc["spec"]["type"] == "NodePort"  # the robots' gRPC from the hospital Wi-Fi
