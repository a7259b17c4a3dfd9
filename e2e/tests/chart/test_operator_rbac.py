"""Least privilege, proven: the operator runs with a token of the chart's ServiceAccount
(TokenRequest API) against the control plane; the sample hospital converges, and what its
role does not grant is denied."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from medmec import cli, processes, waiting
from medmec.operator import devtools
from medmec.workloads.gitops import helmchart, overlays, validate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


def hospital_stations(hospital: str) -> list[str]:
    values = yaml.safe_load(helmchart.hospital_values(hospital).read_text())
    return [b["name"] for b in values["baseStations"]]


def hospital_slices(hospital: str) -> set[tuple[str, str]]:
    values = yaml.safe_load(helmchart.hospital_values(hospital).read_text())
    return {(s["namespace"], s["name"]) for s in values["slices"]}


def condition(obj: dict, type_: str) -> str | None:
    return next((c["status"] for c in obj.get("status", {}).get("conditions", [])
                 if c["type"] == type_), None)


def wait_for(what: str, check, proc: processes.Proc, timeout: float = 90.0):
    """medmec.waiting.wait_for, failing at once if the operator exits; a timeout shows the end
    of its log."""
    def checked():
        if not proc.alive():
            raise AssertionError(f"the operator exited while waiting for {what}:\n{proc.log_tail(40)}")
        return check()
    return waiting.wait_for(checked, timeout, what, interval=1.0,
                            explain=lambda: f"operator log ends:\n{proc.log_tail(40)}")


# st-luke: cluster-wide role; riverside: roles in its namespaces only
@pytest.fixture(scope="module", params=["st-luke", "riverside"])
def operator_as_service_account(request, chart_cluster, tmp_path_factory):
    hospital = request.param
    kc = chart_cluster.kubeconfig
    helmchart.install_hospital(kc, hospital)
    folder = tmp_path_factory.mktemp(f"operator-{hospital}")
    argv, env = helmchart.local_operator(kc, hospital, folder)
    proc = processes.start("operator", argv, folder / "operator.log", env={**chart_cluster.env, **env})
    try:
        yield hospital, proc, env["KUBECONFIG"]
    finally:
        proc.stop()


def test_hospital_converges_with_the_charts_rbac(chart_cluster, operator_as_service_account):
    c = chart_cluster
    hospital, proc, _ = operator_as_service_account
    slices = hospital_slices(hospital)

    def slices_admitted():
        items = json.loads(c.kubectl("get", "medicalslices", "-A", "-o", "json").stdout)["items"]
        done = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in items
                if condition(s, "Admitted") == "True"}
        return done >= slices
    wait_for(f"the {len(slices)} slices of {hospital} to be admitted", slices_admitted, proc)
    for ns, _ in slices:
        wait_for(f"the ResourceQuota of {ns}", lambda ns=ns: c.kubectl(
            "get", "resourcequota", "-n", ns, "-o", "name").stdout.strip(), proc)
    log = Path(proc.log).read_text()
    assert "403" not in log and "orbidden" not in log, log[-3000:]


def served_versions(c, namespace: str, name: str) -> list[dict] | None:
    eis = json.loads(c.kubectl("get", "eis", name, "-n", namespace, "-o", "json").stdout)
    return eis.get("status", {}).get("servedVersions")


def test_gitops_overlay_syncs_and_a_promotion_is_watched_on_the_service(
        chart_cluster, operator_as_service_account, tmp_path, capsys):
    """The hospital's overlay applied as Argo CD / Flux would (server-side apply of
    `kustomize build`); a canary, a full promotion and a rollback each show on the service."""
    c = chart_cluster
    hospital, proc, _ = operator_as_service_account
    deploy = Path(shutil.copytree(REPO / "deploy", tmp_path / "deploy"))
    overlay = deploy / "overlays" / hospital
    [svc] = [s for s in validate.services(validate.render(overlay))
             if s["metadata"]["name"] == "breast-cancer-screening"]
    ns = svc["metadata"]["namespace"]
    v2_sha = json.loads((REPO / "models/breast-cancer/2/metadata.json").read_text())["sha256"]["model.onnx"]

    def sync():
        overlays.sync(c.kubeconfig, hospital, deploy)

    def expect(versions: list[dict]):
        wait_for(f"servedVersions {versions}",
                 lambda: served_versions(c, ns, "breast-cancer-screening") == versions, proc)

    sync()
    expect([{"version": "1", "trafficPercent": 100}])
    wait_for("the predictor Deployment", lambda: c.kubectl(
        "get", "deployment", "breast-cancer-screening-predictor", "-n", ns,
        "--ignore-not-found", "-o", "name").stdout.strip(), proc)

    def promote(*args: str):
        assert cli.main(["gitops", *args, "--hospital", hospital, "--deploy-dir", str(deploy)]) == 0
        capsys.readouterr()
        sync()

    promote("promote", "breast-cancer", "2", "--sha256", v2_sha, "--canary", "30")
    expect([{"version": "1", "trafficPercent": 70}, {"version": "2", "trafficPercent": 30}])
    row = c.kubectl("get", "eis", "breast-cancer-screening", "-n", ns, "--no-headers").stdout.split()
    assert row[2:5] == ["breast-cancer", "1", "30"]  # Model, Version, Canary columns

    promote("promote", "breast-cancer", "2", "--sha256", v2_sha)
    expect([{"version": "2", "trafficPercent": 100}])
    assert "canary" not in json.loads(c.kubectl(
        "get", "eis", "breast-cancer-screening", "-n", ns, "-o", "json").stdout)["spec"]

    promote("rollback", "breast-cancer")
    expect([{"version": "1", "trafficPercent": 100}])


def test_sample_services_converge_with_the_charts_rbac(chart_cluster, operator_as_service_account):
    c = chart_cluster
    hospital, proc, _ = operator_as_service_account
    if hospital == "st-luke":  # crds/samples' services live in st-luke's namespaces
        for sample in ("30-inference.yaml", "40-robots.yaml", "50-nursing.yaml"):
            c.kubectl("apply", "-f", str(REPO / "crds/samples" / sample))
        c.kubectl("apply", "-f", "-", input=json.dumps(devtools.sample_map_configmap()))
        wait_for("the sample inference Deployment", lambda: c.kubectl(
            "get", "deployment", "chest-xray-triage-predictor", "-n", "imaging",
            "--ignore-not-found", "-o", "name").stdout.strip(), proc)
        wait_for("the dispatcher Deployment", lambda: c.kubectl(
            "get", "deployments", "-n", "logistics", "-o", "name").stdout.strip(), proc)
    station = hospital_stations(hospital)[0]
    wait_for(f"status of base station {station}", lambda: "status" in json.loads(c.kubectl(
        "get", "basestation", station, "-o", "json").stdout), proc)
    log = Path(proc.log).read_text()
    assert "403" not in log and "orbidden" not in log, log[-3000:]


@pytest.mark.parametrize("request_", [
    ("get", "secrets", "-n", "kube-system"),
    ("get", "secrets", "-n", "wards"),  # the nursing tokens live there; the operator never reads them
    ("get", "clusterroles"),
    ("delete", "namespace", "wards"),
])
def test_requests_outside_the_role_are_denied(chart_cluster, operator_as_service_account, request_):
    _, _, sa_kubeconfig = operator_as_service_account
    proc = chart_cluster.kubectl("--kubeconfig", str(sa_kubeconfig), *request_, check=False)
    assert proc.returncode != 0
    assert "Forbidden" in proc.stderr and "system:serviceaccount:medmec-system:medmec-operator" in proc.stderr, \
        proc.stderr
