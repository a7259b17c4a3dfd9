"""What an EmergencyTransport becomes (pure): an edge Deployment and Service per route base
station pinned to its zone, the mobility service and its configuration; and the status read
back from the mobility service."""
import copy
import json

import pytest
import yaml

from medmec.operator import render_transport, transport_status
from medmec.operator.devtools import CRD_DIR, SAMPLES_DIR
from medmec.operator.settings import OperatorSettings
from medmec.workloads.mobilecare.mobility import Config

SETTINGS = OperatorSettings(image="medmec:test")
ZONES = {"gnb-east": "mec-east", "gnb-south": "mec-south", "gnb-north": "mec-north"}


def _sample(kind: str, name: str) -> dict:
    docs = yaml.safe_load_all((SAMPLES_DIR / "60-ambulance.yaml").read_text())
    doc = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
    doc["metadata"]["uid"] = f"uid-{name}"
    return doc


@pytest.fixture
def et():
    return _sample("EmergencyTransport", "amb-07")


@pytest.fixture
def ms():
    ms = _sample("MedicalSlice", "ambulance-monitoring")
    ms["status"] = {"baseStationZones": dict(ZONES)}
    return ms


def _children(et, ms):
    return render_transport.children(et, ms, sorted(ZONES.values()), SETTINGS)


def test_one_edge_site_per_route_base_station_pinned_to_its_zone(et, ms):
    objs = _children(et, ms)
    deployments = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Deployment"}
    assert set(deployments) == {"amb-07-edge-gnb-east", "amb-07-edge-gnb-south",
                                "amb-07-edge-gnb-north", "amb-07-mobility"}
    for bs, zone in ZONES.items():
        pod = deployments[f"amb-07-edge-{bs}"]["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"topology.kubernetes.io/zone": zone}
        args = pod["containers"][0]["command"]
        assert args[:3] == ["medmec", "serve", "mobilecare-edge"]
        assert args[args.index("--site") + 1] == bs
        assert args[args.index("--max-sessions") + 1] == "200"
        assert "--nursing-token-file" in args
        # the restricted Pod Security Standard, as for every pod the operator renders
        sec = pod["containers"][0]["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] and not sec["allowPrivilegeEscalation"]
        assert sec["capabilities"] == {"drop": ["ALL"]}
        secret = next(v for v in pod["volumes"] if v["name"] == "secrets")["secret"]
        assert secret["secretName"] == "ambulance-keys"
        assert {i["key"] for i in secret["items"]} == {"context.key", "nursing-device-token"}
    services = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    east = services["amb-07-edge-gnb-east"]["spec"]
    # each site's Service selects that site's pods only
    assert east["selector"]["medmec.io/base-station"] == "gnb-east"
    assert east["ports"] == [{"name": "grpc", "port": 50061, "targetPort": "grpc",
                              "protocol": "TCP", "appProtocol": "grpc"}]
    for o in objs:
        assert o["metadata"]["ownerReferences"][0]["kind"] == "EmergencyTransport"
        assert o["metadata"]["labels"]["app.kubernetes.io/component"] == "mobilecare"
    assert render_transport.want_ready(et) == 4


def test_each_edge_site_keeps_its_session_store_on_its_own_claim_writable_by_the_image_user(et, ms):
    objs = _children(et, ms)
    claims = {o["metadata"]["name"]: o for o in objs if o["kind"] == "PersistentVolumeClaim"}
    assert set(claims) == {f"amb-07-edge-{bs}-store" for bs in ZONES}
    for bs in ZONES:
        claim = claims[f"amb-07-edge-{bs}-store"]
        # the CRD's defaults: 1Gi on the cluster's default StorageClass
        assert claim["spec"] == {"accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1Gi"}}}
        assert claim["metadata"]["ownerReferences"][0]["kind"] == "EmergencyTransport"
        assert claim["metadata"]["labels"]["medmec.io/base-station"] == bs
        edge = next(o for o in objs if o["kind"] == "Deployment"
                    and o["metadata"]["name"] == f"amb-07-edge-{bs}")
        pod = edge["spec"]["template"]["spec"]
        data = next(v for v in pod["volumes"] if v["name"] == "data")
        assert data == {"name": "data", "persistentVolumeClaim": {"claimName": f"amb-07-edge-{bs}-store"}}
        args = pod["containers"][0]["command"]
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "data")
        assert args[args.index("--database") + 1].startswith(mount["mountPath"] + "/")
        # a ReadWriteOnce volume: the old pod goes before the new one starts
        assert edge["spec"]["strategy"] == {"type": "Recreate"}
        # restricted, and the volume is group-writable by the image's user
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["fsGroup"] == 10001
        assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
        assert not any("emptyDir" in v for v in pod["volumes"] if v["name"] != "tmp")


def test_session_store_size_and_class_from_the_spec(et, ms):
    et["spec"]["sessionStorage"] = {"size": "5Gi", "storageClassName": "edge-local"}
    claims = [o for o in _children(et, ms) if o["kind"] == "PersistentVolumeClaim"]
    assert len(claims) == 3
    assert {c["spec"]["storageClassName"] for c in claims} == {"edge-local"}
    assert {c["spec"]["resources"]["requests"]["storage"] for c in claims} == {"5Gi"}


def test_session_storage_defaults_in_the_crd_are_the_renderers():
    crd = yaml.safe_load((CRD_DIR / "emergencytransport.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    storage = spec["properties"]["sessionStorage"]
    assert storage["default"] == {"size": render_transport.DEFAULT_STORE_SIZE}
    assert storage["properties"]["size"]["default"] == render_transport.DEFAULT_STORE_SIZE
    assert "sessionStorage" not in spec["required"]


def test_no_store_claim_for_a_base_station_off_the_slice(et, ms):
    del ms["status"]["baseStationZones"]["gnb-north"]
    names = {o["metadata"]["name"] for o in _children(et, ms) if o["kind"] == "PersistentVolumeClaim"}
    assert names == {"amb-07-edge-gnb-east-store", "amb-07-edge-gnb-south-store"}


def test_mobility_config_names_the_sites_services_and_the_destination_ward(et, ms):
    cm = next(o for o in _children(et, ms) if o["kind"] == "ConfigMap")
    config = json.loads(cm["data"]["mobility.json"])
    Config.model_validate(config)  # what `medmec serve mobility --config` accepts
    assert config["sites"][0] == {"baseStation": "gnb-east",
                                  "target": "amb-07-edge-gnb-east.emergency.svc:50061"}
    [t] = config["transports"]
    assert t["vehicle"] == "amb-07" and t["sessionId"] == "sess-7f3a9c21"
    assert t["route"] == ["gnb-east", "gnb-south", "gnb-north"] and t["prewarm"] is True
    assert t["destination"] == {"ward": "4a", "nursingUrl": "http://bedside-nursing.wards.svc:8080",
                                "nursingGrpc": "bedside-nursing.wards.svc:50051"}
    mobility = next(o for o in _children(et, ms) if o["metadata"]["name"] == "amb-07-mobility"
                    and o["kind"] == "Deployment")
    args = mobility["spec"]["template"]["spec"]["containers"][0]["command"]
    assert args[args.index("--admit-token-file") + 1].endswith("nursing-admit-token")


def test_stay_policy_keeps_the_session_at_its_first_site_and_no_destination_no_tokens(et, ms):
    et["spec"]["relocation"]["policy"] = "Stay"
    del et["spec"]["destination"]
    config = render_transport.mobility_config(et)
    assert config["transports"][0]["route"] == ["gnb-east"]
    assert "destination" not in config["transports"][0]
    edge = next(o for o in _children(et, ms) if o["kind"] == "Deployment")
    assert "--nursing-token-file" not in edge["spec"]["template"]["spec"]["containers"][0]["command"]


def test_a_route_off_the_slice_is_a_problem_and_renders_no_site_there(et, ms):
    ms["spec"]["baseStations"] = ["gnb-east", "gnb-south"]
    del ms["status"]["baseStationZones"]["gnb-north"]
    assert render_transport.route_problem(et, ms)[0] == "RouteOffSlice"
    assert "gnb-north" in render_transport.route_problem(et, ms)[1]
    names = {o["metadata"]["name"] for o in _children(et, ms)}
    assert "amb-07-edge-gnb-north" not in names and "amb-07-edge-gnb-east" in names
    full = copy.deepcopy(ms)
    full["spec"]["baseStations"].append("gnb-north")
    assert render_transport.route_problem(et, full) is None


def test_child_names_for_deletion_cover_every_site(et):
    names = {render_transport.nth_site_name(i)(et) for i in range(render_transport.MAX_SITES)}
    assert names == {f"amb-07-edge-{bs}" for bs in ZONES}


VIEW = {"vehicle": "amb-07", "servingBaseStation": "gnb-south", "edgeSite": "gnb-east",
        "news2": {"score": 6, "risk": "medium", "trend": "rising"}, "etaSeconds": 420,
        "expectedArrival": "2026-12-01T10:42:00+00:00",
        "openAlerts": [{"score": 5, "risk": "medium"}], "moves": 1,
        "conditions": [{"type": "Following", "status": "False", "reason": "TargetUnavailable",
                        "message": "site gnb-south did not take the session"},
                       {"type": "PreArrivalSent", "status": "True", "reason": "Admitted", "message": ""},
                       {"type": "SessionReachable", "status": "True", "reason": "SessionRead", "message": ""}]}


def test_status_fields_from_the_mobility_view():
    found = transport_status.fields(VIEW)
    assert found["servingBaseStation"] == "gnb-south" and found["edgeSite"] == "gnb-east"
    assert found["news2"] == {"score": 6, "risk": "medium", "trend": "rising"}
    assert found["etaSeconds"] == 420 and found["openAlerts"] == 1
    assert found["expectedArrival"] == "2026-12-01T10:42:00Z"  # the CRD's date-time, in UTC
    assert transport_status.fields({**VIEW, "expectedArrival": None})["expectedArrival"] is None
    # the Following condition says why the session did not follow
    assert [(c["type"], c["status"], c["reason"]) for c in found["conditions"]] == [
        ("Following", "False", "TargetUnavailable"), ("PreArrivalSent", "True", "Admitted")]
    with pytest.raises(ValueError, match="not a transport view"):
        transport_status.fields({"edgeSite": 3})


def test_unreachable_mobility_service_leaves_figures_unset(et):
    settings = OperatorSettings(transport_url_template="http://127.0.0.1:1/v1/transports/{vehicle}")
    out = transport_status.live_status(et, settings, deployed=True)
    assert out["edgeSite"] is None and out["news2"] is None and out["expectedArrival"] is None
    assert out["conditions"][0]["reason"] == "MobilityUnreachable"
    assert transport_status.transport_url(SETTINGS.transport_url_template, et) == \
        "http://amb-07-mobility.emergency.svc:8090/v1/transports/amb-07"
