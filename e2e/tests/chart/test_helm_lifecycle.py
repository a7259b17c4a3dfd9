"""helm install, upgrade (a changed value, a CRD change) and uninstall of the charts against
a real control plane: nothing a user stored (custom resources, their status) is lost."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from medmec.workloads.gitops import helmchart

REPO = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NS = helmchart.NAMESPACE


def get(c, *args) -> dict:
    return json.loads(c.kubectl("get", *args, "-o", "json").stdout)


def exists(c, *args) -> bool:
    return c.kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False).stdout.strip() != ""


def patch_status(c, resource: str, status: dict, namespace: str | None = None) -> None:
    ns = ["-n", namespace] if namespace else []
    c.kubectl("patch", resource, *ns, "--subresource=status", "--type=merge",
              "-p", json.dumps({"status": status}))


EIS = """
apiVersion: medmec.io/v1alpha1
kind: EdgeInferenceService
metadata: {name: breast-screening, namespace: imaging}
spec:
  sliceRef: {name: radiology}
  model: {name: breast-cancer, version: "1", storageUri: s3://models/breast-cancer/1,
          sha256: c26a23a8ddd65b77a983dcbcdf35f5ad08fd2b0af73d09f3fdf408af7afda3f2}
"""


def crd_chart_with_change(tmp: Path) -> Path:
    """A copy of the CRD chart whose BaseStation CRD has one more optional field."""
    chart = tmp / "medmec-crds"
    shutil.copytree(helmchart.CRDS_CHART, chart, symlinks=False)  # the CRD files themselves
    path = chart / "files/crds/basestation.yaml"
    crd = yaml.safe_load(path.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["vendor"] = {"type": "string", "maxLength": 63,
                                    "description": "Radio vendor of the gNB."}
    path.unlink()
    path.write_text(yaml.safe_dump(crd, sort_keys=False))
    return chart


def test_install_upgrade_uninstall_keeps_what_users_stored(chart_cluster, tmp_path):
    c, kc = chart_cluster, chart_cluster.kubeconfig
    helmchart.install_crds(kc)
    helmchart.install(kc, [helmchart.hospital_values("st-luke")])

    # what the chart installed
    assert get(c, "deployment", "medmec-operator", "-n", NS)["status"].get("readyReplicas") == 2
    assert exists(c, "serviceaccount", "medmec-operator", "-n", NS)
    assert exists(c, "clusterrole", "medmec-operator-cluster")
    assert {p["metadata"]["name"] for p in get(c, "priorityclasses", "-l", "app.kubernetes.io/part-of=medmec")["items"]} \
        == {"medmec-critical", "medmec-high", "medmec-standard", "medmec-platform"}
    assert len(get(c, "basestations")["items"]) == 3
    assert len(get(c, "medicalslices", "-A")["items"]) == 4
    assert exists(c, "clusterkopfpeering", "medmec")

    # state a user (and the operator) stored: a service of their own and status on resources
    c.kubectl("apply", "-f", "-", input=EIS)
    patch_status(c, "basestation/gnb-north", {"allocatedUplinkMbps": 220, "observedGeneration": 1})
    patch_status(c, "medicalslice/radiology", {"phase": "Admitted", "snssai": "1-000002"}, "imaging")

    # upgrade with changed values: a new image tag and more uplink on gnb-north
    values = yaml.safe_load(helmchart.hospital_values("st-luke").read_text())
    values["baseStations"][0]["uplinkMbps"] = 500
    changed = tmp_path / "st-luke-changed.yaml"
    changed.write_text(yaml.safe_dump(values))
    helmchart.install(kc, [changed], {"image.tag": "0.1.1"}, upgrade=True)
    container = get(c, "deployment", "medmec-operator", "-n", NS)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/medmec/medmec:0.1.1"
    north = get(c, "basestation", "gnb-north")
    assert north["spec"]["uplinkMbps"] == 500
    assert north["status"]["allocatedUplinkMbps"] == 220
    assert get(c, "medicalslice", "radiology", "-n", "imaging")["status"]["snssai"] == "1-000002"
    assert exists(c, "edgeinferenceservice", "breast-screening", "-n", "imaging")

    # upgrade with a CRD change: before it, the API server prunes the unknown field
    c.kubectl("patch", "basestation", "gnb-east", "--type=merge", "-p", '{"spec": {"vendor": "acme"}}')
    assert "vendor" not in get(c, "basestation", "gnb-east")["spec"]
    helmchart.helm(["upgrade", helmchart.CRDS_RELEASE, str(crd_chart_with_change(tmp_path)), "--wait"], kc)
    c.kubectl("patch", "basestation", "gnb-east", "--type=merge", "-p", '{"spec": {"vendor": "acme"}}')
    assert get(c, "basestation", "gnb-east")["spec"]["vendor"] == "acme"
    assert get(c, "basestation", "gnb-north")["status"]["allocatedUplinkMbps"] == 220
    assert exists(c, "edgeinferenceservice", "breast-screening", "-n", "imaging")

    # uninstall: the operator, its RBAC and PriorityClasses go; the hospital's data stays
    helmchart.uninstall(kc)
    assert not exists(c, "deployment", "medmec-operator", "-n", NS)
    assert not exists(c, "clusterrole", "medmec-operator-cluster")
    assert not exists(c, "priorityclass", "medmec-critical")
    assert len(get(c, "basestations")["items"]) == 3
    assert get(c, "medicalslice", "radiology", "-n", "imaging")["status"]["snssai"] == "1-000002"
    assert exists(c, "namespace", "surgery")
    assert exists(c, "edgeinferenceservice", "breast-screening", "-n", "imaging")

    # uninstalling the CRD chart keeps the CRDs, so every stored resource survives too
    helmchart.helm(["uninstall", helmchart.CRDS_RELEASE, "--wait"], kc)
    assert exists(c, "crd", "basestations.medmec.io")
    assert get(c, "basestation", "gnb-north")["status"]["allocatedUplinkMbps"] == 220

    # a reinstall takes the kept objects back under the same releases
    helmchart.install_crds(kc)
    helmchart.install(kc, [changed])
    assert get(c, "basestation", "gnb-north")["metadata"]["annotations"][
        "meta.helm.sh/release-name"] == helmchart.RELEASE
    helmchart.uninstall(kc)


def test_namespaced_hospital_gets_roles_only_in_its_namespaces(chart_cluster):
    c, kc = chart_cluster, chart_cluster.kubeconfig
    helmchart.install_hospital(kc, "riverside")
    sa = f"system:serviceaccount:{NS}:medmec-operator"

    def can(*args: str) -> bool:
        return c.kubectl("auth", "can-i", *args, "--as", sa, check=False).stdout.strip() == "yes"

    assert can("patch", "medicalslices.medmec.io", "-n", "riverside-emergency")
    assert can("patch", "deployments.apps", "-n", "riverside-cardiology")
    assert can("list", "basestations.medmec.io")
    assert not can("list", "medicalslices.medmec.io", "-n", "default")
    assert not can("patch", "deployments.apps", "-n", "kube-system")
    assert not can("get", "secrets", "-n", "riverside-emergency")
    assert not can("create", "clusterrolebindings.rbac.authorization.k8s.io")
    helmchart.uninstall(kc)
    assert not can("list", "basestations.medmec.io")


def test_validate_accepts_the_overlays_and_refuses_bad_ones(chart_cluster, model_store, tmp_path):
    """The `make validate` check against a real API server and a real MinIO store."""
    from medmec.workloads.gitops import overlays, validate
    from medmec.workloads.modelstore.store import VersionExists
    kc = chart_cluster.kubeconfig
    helmchart.install_hospital(kc, "st-luke")
    for metadata in (REPO / "models").glob("*/*/metadata.json"):
        try:
            model_store.push(metadata.parent)
        except VersionExists:
            pass
    deploy = Path(shutil.copytree(REPO / "deploy", tmp_path / "deploy"))
    overlay = deploy / "overlays/st-luke"
    report = validate.validate_overlay(overlay, kc, model_store)
    assert report.ok and report.services == [
        "breast-cancer-screening", "breast-cancer-second-opinion", "diabetes-risk"], report

    # the API server's CEL rule: a canary of the live version
    patch = overlay / "models/breast-cancer-screening.yaml"
    doc = yaml.safe_load(patch.read_text())
    doc["spec"]["canary"] = {"version": doc["spec"]["model"]["version"],
                             "sha256": doc["spec"]["model"]["sha256"], "trafficPercent": 10}
    patch.write_text(yaml.safe_dump(doc))
    report = validate.validate_overlay(overlay, kc, model_store)
    assert any("spec.canary.version must differ" in p for p in report.problems), report

    # a version missing from the store, and a sha256 that differs
    overlays.rollback(deploy, "st-luke", "breast-cancer")
    overlays.promote(deploy, "st-luke", "breast-cancer", "9", "a" * 64, canary_percent=10)
    diabetes = overlay / "models/diabetes-risk.yaml"
    real_sha = yaml.safe_load(diabetes.read_text())["spec"]["model"]["sha256"]
    diabetes.write_text(diabetes.read_text().replace(real_sha, "ab" * 32))
    report = validate.validate_overlay(overlay, kc, model_store)
    assert len(report.problems) == 2, report
    assert "breast-cancer version 9 is not in the model store" in report.problems[0]
    assert f"diabetes-progression version 1 has sha256 {real_sha}" in report.problems[1]
    assert f"but the overlay says {'ab' * 32}" in report.problems[1]
    # a dry-run stores nothing
    assert chart_cluster.kubectl("get", "eis", "breast-cancer-screening", "-n", "imaging",
                                 "--ignore-not-found", "-o", "name").stdout.strip() == ""
