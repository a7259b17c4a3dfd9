"""`medmec gitops promote | rollback` (and `medmec models ...`) on a copy of deploy/, with
the sha256 read from a real MinIO model store; the overlays render with kustomize."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from medmec import cli
from medmec.workloads.gitops import validate

REPO = Path(__file__).resolve().parents[2]
V1 = REPO / "models/breast-cancer/1"
V2 = REPO / "models/breast-cancer/2"
PATCH = "overlays/st-luke/models/breast-cancer-screening.yaml"


def sha(folder: Path) -> str:
    return yaml.safe_load((folder / "metadata.json").read_text())["sha256"]["model.onnx"]


@pytest.fixture
def deploy(tmp_path) -> Path:
    return Path(shutil.copytree(REPO / "deploy", tmp_path / "deploy"))


@pytest.fixture(scope="module")
def store_env(minio_server, model_store):
    from medmec.workloads.modelstore.store import VersionExists
    for folder in (V1, V2):
        try:
            model_store.push(folder)
        except VersionExists:  # pushed by another module of the session
            pass
    return minio_server.env()


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def screening(deploy: Path, hospital: str = "st-luke") -> dict:
    [svc] = [s for s in validate.services(validate.render(deploy / "overlays" / hospital))
             if s["metadata"]["name"] == "breast-cancer-screening"]
    return svc


def test_promote_canary_then_full_then_rollback(deploy, store_env, monkeypatch, capsys):
    for key, value in store_env.items():
        monkeypatch.setenv(key, value)
    d = ["--deploy-dir", str(deploy)]

    code, out, _ = run(capsys, "gitops", "promote", "breast-cancer", "2", "--hospital", "st-luke",
                       "--canary", "25", *d)
    assert code == 0
    assert f"+    sha256: {sha(V2)}" in out and "+    trafficPercent: 25" in out
    svc = screening(deploy)
    assert svc["metadata"]["namespace"] == "imaging" and svc["spec"]["sliceRef"]["name"] == "radiology"
    assert svc["spec"]["model"]["version"] == "1"
    assert svc["spec"]["canary"] == {"version": "2", "sha256": sha(V2), "trafficPercent": 25}
    # the other hospital is untouched
    assert "canary" not in screening(deploy, "riverside")["spec"]

    code, out, _ = run(capsys, "models", "promote", "breast-cancer", "2", "--hospital", "st-luke", *d)
    assert code == 0 and "live version" in out
    svc = screening(deploy)
    assert svc["spec"]["model"]["version"] == "2" and "canary" not in svc["spec"]
    assert svc["spec"]["model"]["storageUri"] == "s3://models/breast-cancer/2"

    code, out, _ = run(capsys, "gitops", "rollback", "breast-cancer", "--hospital", "st-luke", *d)
    assert code == 0 and "back from version 2 to version 1" in out
    assert screening(deploy)["spec"]["model"] == {
        "name": "breast-cancer", "version": "1", "storageUri": "s3://models/breast-cancer/1",
        "sha256": sha(V1)}
    assert (deploy / PATCH).read_text() == (REPO / "deploy" / PATCH).read_text()


def test_refused_promotions_change_nothing(deploy, store_env, monkeypatch, capsys):
    for key, value in store_env.items():
        monkeypatch.setenv(key, value)
    d = ["--deploy-dir", str(deploy)]
    before = {p: p.read_bytes() for p in deploy.rglob("*.yaml")}

    code, _, err = run(capsys, "gitops", "promote", "breast-cancer", "9", "--hospital", "st-luke",
                       "--canary", "10", *d)
    assert code == 1 and "version 9 is not in the store" in err
    code, _, err = run(capsys, "gitops", "promote", "breast-cancer", "2", "--hospital", "st-luke", *d)
    assert code == 1 and "as a canary first" in err
    code, _, err = run(capsys, "gitops", "promote", "breast-cancer", "2", "--hospital", "nowhere",
                       "--canary", "10", *d)
    assert code == 1 and "no overlay for hospital 'nowhere'" in err and "st-luke" in err
    code, _, err = run(capsys, "gitops", "promote", "no-such-model", "1", "--hospital", "st-luke",
                       "--sha256", "a" * 64, "--canary", "10", *d)
    assert code == 1 and "serves model 'no-such-model'" in err
    code, _, err = run(capsys, "gitops", "rollback", "breast-cancer", "--hospital", "st-luke", *d)
    assert code == 1 and "nothing to roll back" in err
    assert {p: p.read_bytes() for p in deploy.rglob("*.yaml")} == before


def test_promote_without_a_store_says_what_to_set(deploy, monkeypatch, capsys):
    for key in ("MEDMEC_STORE_ENDPOINT", "MEDMEC_STORE_ACCESS_KEY", "MEDMEC_STORE_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    code, _, err = run(capsys, "gitops", "promote", "breast-cancer", "2", "--hospital", "st-luke",
                       "--canary", "10", "--deploy-dir", str(deploy))
    assert code == 1 and "MEDMEC_STORE_ENDPOINT" in err


def test_store_check_finds_missing_versions_and_wrong_checksums(model_store, store_env):
    good = screening(REPO / "deploy")
    assert validate.check_models(good, model_store) == []
    wrong_sha = {**good, "spec": {**good["spec"], "canary": {
        "version": "2", "sha256": "f" * 64, "trafficPercent": 10}}}
    [problem] = validate.check_models(wrong_sha, model_store)
    assert "version 2 has sha256" in problem and "f" * 64 in problem
    missing = {**good, "spec": {**good["spec"], "model": {
        **good["spec"]["model"], "version": "7", "storageUri": "s3://models/breast-cancer/7"}}}
    [problem] = validate.check_models(missing, model_store)
    assert "version 7 is not in the model store" in problem
    wrong_uri = {**good, "spec": {**good["spec"], "model": {
        **good["spec"]["model"], "storageUri": "s3://models/breast-cancer/2"}}}
    [problem] = validate.check_models(wrong_uri, model_store)
    assert "storageUri" in problem


def test_validate_and_sync_say_what_they_need(monkeypatch, capsys, deploy):
    for key in ("KUBECONFIG", "MEDMEC_STORE_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    code, _, err = run(capsys, "gitops", "validate", "--deploy-dir", str(deploy))
    assert code == 2 and "set KUBECONFIG" in err and "--local" in err
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    code, _, err = run(capsys, "gitops", "validate", "--deploy-dir", str(deploy))
    assert code == 2 and "MEDMEC_STORE_ENDPOINT" in err
    code, _, err = run(capsys, "gitops", "validate", "--hospital", "nowhere", "--deploy-dir", str(deploy))
    assert code == 1 and "no overlay for nowhere" in err
    monkeypatch.delenv("KUBECONFIG")
    code, _, err = run(capsys, "gitops", "sync", "--hospital", "st-luke", "--deploy-dir", str(deploy))
    assert code == 2 and "set KUBECONFIG" in err


def test_overlays_render_for_every_hospital_with_its_namespace_and_slice():
    expected = {"st-luke": ("imaging", "radiology", ["breast-cancer-second-opinion"]),
                "riverside": ("riverside-emergency", "emergency-imaging", [])}
    from medmec.workloads.gitops import overlays
    assert overlays.hospitals() == sorted(expected)
    for hospital, (namespace, slice_name, own) in expected.items():
        found = validate.services(validate.render(REPO / "deploy/overlays" / hospital))
        assert [s["metadata"]["name"] for s in found] == sorted(
            ["breast-cancer-screening", "diabetes-risk", *own])
        for svc in found:
            assert svc["metadata"]["namespace"] == namespace
            assert svc["spec"]["sliceRef"]["name"] == slice_name
            assert svc["metadata"]["labels"]["medmec.io/hospital"] == hospital


def test_every_overlay_service_uses_a_slice_its_hospitals_chart_values_declare():
    from medmec.workloads.gitops import helmchart, overlays
    for hospital in overlays.hospitals():
        values = yaml.safe_load(helmchart.hospital_values(hospital).read_text())
        slices = {(s["namespace"], s["name"]) for s in values["slices"]}
        for svc in validate.services(validate.render(REPO / "deploy/overlays" / hospital)):
            assert (svc["metadata"]["namespace"], svc["spec"]["sliceRef"]["name"]) in slices, \
                (hospital, svc["metadata"]["name"])
