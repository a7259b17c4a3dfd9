"""The charts as helm renders them (real helm binary, no cluster): lint, values schema,
CRDs from the one source, least-privilege RBAC, the operator Deployment."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from medmec.operator import meta
from medmec.workloads.gitops import helmchart
from medmec.workloads.gitops.helmchart import HelmError, hospital_values, template

REPO = Path(__file__).resolve().parents[2]
HOSPITALS = ["st-luke", "riverside"]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("chart, values", [
    (helmchart.CRDS_CHART, None),
    (helmchart.MAIN_CHART, None),
    *[(helmchart.MAIN_CHART, h) for h in HOSPITALS],
])
def test_helm_lint_is_clean(chart, values):
    args = ["lint", str(chart), "--strict", "--kube-version", "1.36.0"]
    if values:
        args += ["-f", str(hospital_values(values))]
    out = helmchart.helm(args)
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


@pytest.mark.parametrize("override, path, says", [
    ({"baseStations": [{"name": "gnb-x", "gnbId": 1, "zone": "z", "uplinkMbps": -5,
                        "downlinkMbps": 10}]}, "/baseStations/0/uplinkMbps", "minimum"),
    ({"slices": [{"name": "s", "namespace": "n", "spec": {
        "profile": "remote-dance", "sliceType": "eMBB", "baseStations": ["gnb-x"],
        "resources": {"cpu": "1", "memory": "1Gi"}}}]}, "/slices/0/spec/profile", "remote-surgery"),
    ({"operator": {"replicas": "two"}}, "/operator/replicas", "integer"),
    ({"image": {"repository": "r", "pullPolicy": "Sometimes"}}, "/image/pullPolicy", "IfNotPresent"),
    ({"operatorr": {}}, "operatorr", "not allowed"),
    ({"modelStore": {"endpoint": "http://minio:9000"}}, "/modelStore/endpoint", "pattern"),
])
def test_schema_refuses_bad_values_naming_the_value(override, path, says):
    with pytest.raises(HelmError) as err:
        template(set_values=override)
    assert path in str(err.value) and says in str(err.value), str(err.value)


def test_slice_needs_exactly_one_of_profile_and_qos():
    spec = {"sliceType": "eMBB", "baseStations": ["b"], "resources": {"cpu": "1", "memory": "1Gi"}}
    with pytest.raises(HelmError, match="/slices/0/spec"):
        template(set_values={"slices": [{"name": "s", "namespace": "n", "spec": spec}]})


def test_schema_slice_spec_follows_the_medicalslice_crd():
    """The values schema checks slices as the CRD does: same fields, same enums."""
    crd = yaml.safe_load((REPO / "crds/medicalslice.yaml").read_text())
    crd_spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    schema = json.loads((helmchart.MAIN_CHART / "values.schema.json").read_text())
    values_spec = schema["definitions"]["sliceSpec"]
    assert set(values_spec["properties"]) == set(crd_spec["properties"])
    assert set(values_spec["required"]) == set(crd_spec["required"])
    for field in ("profile", "sliceType", "priority", "isolation"):
        assert values_spec["properties"][field]["enum"] == crd_spec["properties"][field]["enum"], field


def _source_crds() -> list[dict]:
    return [doc for path in sorted((REPO / "crds").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_crd_chart_renders_every_crd_from_the_crds_folder_and_keeps_them():
    docs = template(chart=helmchart.CRDS_CHART, release="medmec-crds")
    rendered = {d["metadata"]["name"]: d for d in by_kind(docs, "CustomResourceDefinition")}
    sources = _source_crds()
    assert {"basestations.medmec.io", "clusterkopfpeerings.kopf.dev"} <= \
        {s["metadata"]["name"] for s in sources}
    for source in sources:
        got = rendered.pop(source["metadata"]["name"])
        assert got["spec"] == source["spec"], source["metadata"]["name"]
        assert got["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert got["metadata"]["labels"]["app.kubernetes.io/part-of"] == "medmec"
    assert rendered == {}


def test_crd_chart_without_keep_or_kopf_peering():
    docs = template(chart=helmchart.CRDS_CHART, release="medmec-crds",
                    set_values={"keep": False, "kopfPeering": False})
    assert sorted(d["metadata"]["name"] for d in docs) == sorted(
        s["metadata"]["name"] for s in _source_crds() if s["spec"]["group"] != "kopf.dev")
    assert all("helm.sh/resource-policy" not in (d["metadata"].get("annotations") or {}) for d in docs)


def test_priority_classes_are_the_operators():
    """Same objects as the operator's, so neither rewrites what the other made."""
    from medmec.operator import render_slice
    docs = template()
    classes = {d["metadata"]["name"]: d for d in by_kind(docs, "PriorityClass")}
    assert set(classes) == {meta.priority_class_name(p) for p in meta.PRIORITIES}
    for priority in meta.PRIORITIES:
        ours, operators = classes[meta.priority_class_name(priority)], render_slice.priority_class(priority)
        for field in ("value", "globalDefault", "preemptionPolicy", "description"):
            assert ours[field] == operators[field], field


def test_hospital_resources_are_rendered_and_kept():
    values = yaml.safe_load(hospital_values("st-luke").read_text())
    docs = template([hospital_values("st-luke")])
    stations = by_kind(docs, "BaseStation")
    assert [s["metadata"]["name"] for s in stations] == [b["name"] for b in values["baseStations"]]
    assert stations[0]["spec"] == {k: v for k, v in values["baseStations"][0].items() if k != "name"}
    slices = by_kind(docs, "MedicalSlice")
    assert [(s["metadata"]["namespace"], s["spec"]) for s in slices] == \
        [(s["namespace"], s["spec"]) for s in values["slices"]]
    namespaces = by_kind(docs, "Namespace")
    assert {n["metadata"]["name"] for n in namespaces} == {s["namespace"] for s in values["slices"]}
    for doc in (*stations, *slices, *namespaces):
        assert doc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert doc["metadata"]["labels"]["medmec.io/hospital"] == "st-luke"


def test_namespace_not_created_when_told_not_to():
    slice_ = {"name": "s", "namespace": "existing", "createNamespace": False,
              "spec": {"profile": "remote-ecg", "sliceType": "mIoT", "baseStations": ["b"],
                       "resources": {"cpu": "1", "memory": "1Gi"}}}
    docs = template(set_values={"slices": [slice_]})
    assert by_kind(docs, "Namespace") == []
    assert len(by_kind(docs, "MedicalSlice")) == 1


def _rules(docs: list[dict]) -> list[dict]:
    return [r for d in docs if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]


@pytest.mark.parametrize("hospital", HOSPITALS)
def test_rbac_never_grants_secrets_or_wildcards(hospital):
    rules = _rules(template([hospital_values(hospital)]))
    assert rules
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "*" not in rule["apiGroups"], rule
        assert "secrets" not in rule["resources"], rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_rbac_cluster_wide_without_watch_namespaces():
    docs = template([hospital_values("st-luke")])
    bindings = by_kind(docs, "ClusterRoleBinding")
    assert {b["roleRef"]["name"] for b in bindings} == {"medmec-operator-cluster",
                                                        "medmec-operator-namespaced"}
    assert by_kind(docs, "RoleBinding") == []
    assert [p["metadata"]["name"] for p in by_kind(docs, "ClusterKopfPeering")] == ["medmec"]
    env = _operator_env(docs)
    assert env["MEDMEC_OPERATOR_NAMESPACES"] == ""


def test_rbac_namespaced_with_watch_namespaces():
    """Namespaced rules are bound only in the served namespaces (slices' ones included)."""
    docs = template([hospital_values("riverside")], set_values={"operator.watchNamespaces": ["extra"]})
    served = ["extra", "riverside-cardiology", "riverside-emergency"]
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == served
    assert {b["roleRef"]["name"] for b in bindings} == {"medmec-operator-namespaced"}
    assert [b["roleRef"]["name"] for b in by_kind(docs, "ClusterRoleBinding")] == \
        ["medmec-operator-cluster"]
    assert sorted(p["metadata"]["namespace"] for p in by_kind(docs, "KopfPeering")) == served
    assert by_kind(docs, "ClusterKopfPeering") == []
    assert _operator_env(docs)["MEDMEC_OPERATOR_NAMESPACES"] == ",".join(served)
    cluster_role = next(d for d in by_kind(docs, "ClusterRole")
                        if d["metadata"]["name"] == "medmec-operator-cluster")
    cluster_resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert not cluster_resources & {"medicalslices", "deployments", "configmaps", "pods"}


def _operator(docs: list[dict]) -> dict:
    [deployment] = by_kind(docs, "Deployment")
    return deployment


def _operator_env(docs: list[dict]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _operator(docs)["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_operator_deployment_runs_the_medmec_command_hardened():
    docs = template(set_values={"image.tag": "0.2.0", "modelStore.endpoint": "store.example:9000"})
    pod = _operator(docs)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/medmec/medmec:0.2.0"
    assert container["args"] == ["operator", "run"]
    assert pod["serviceAccountName"] == "medmec-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    env = _operator_env(docs)
    # the operator renders workloads with the same image it runs
    assert env["MEDMEC_OPERATOR_IMAGE"] == container["image"]
    assert env["MEDMEC_OPERATOR_STORE_ENDPOINT"] == "store.example:9000"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_operator_settings_accept_the_rendered_environment():
    from medmec.operator.settings import OperatorSettings
    env = _operator_env(template([hospital_values("riverside")]))
    settings = OperatorSettings.from_env(env)
    assert settings.namespaces == ["riverside-cardiology", "riverside-emergency"]
    assert settings.peering == "medmec"
    assert settings.image == "ghcr.io/medmec/medmec:0.1.0"


def test_model_store_secrets_only_with_credentials():
    assert by_kind(template([hospital_values("st-luke")]), "Secret") == []
    docs = template([hospital_values("st-luke")],
                    set_values={"modelStore.credentials": {"accessKey": "a", "secretKey": "b"}})
    secrets = by_kind(docs, "Secret")
    assert sorted(s["metadata"]["namespace"] for s in secrets) == ["imaging", "logistics", "surgery", "wards"]
    assert secrets[0]["stringData"] == {"access-key": "a", "secret-key": "b"}


def test_chart_cli_needs_a_cluster_and_a_known_hospital(monkeypatch, capsys, tmp_path):
    from medmec import cli
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert cli.main(["chart", "install", "--hospital", "st-luke"]) == 2
    assert "set KUBECONFIG" in capsys.readouterr().err
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "unused"))
    assert cli.main(["chart", "install", "--hospital", "nowhere"]) == 1
    err = capsys.readouterr().err
    assert "no values file for hospital 'nowhere'" in err and "riverside, st-luke" in err


def test_packaged_crd_chart_carries_the_crd_files_not_links(tmp_path):
    """files/crds is a link to crds/; `helm package` must put the files themselves in the archive."""
    import tarfile
    helmchart.helm(["package", str(helmchart.CRDS_CHART), "-d", str(tmp_path)])
    [archive] = tmp_path.glob("medmec-crds-*.tgz")
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    crd_files = sorted(n for n in members if n.startswith("medmec-crds/files/crds/"))
    assert crd_files == sorted(f"medmec-crds/files/crds/{p.name}" for p in (REPO / "crds").glob("*.yaml"))
    assert all(members[n].isfile() for n in crd_files)
    docs = template(chart=archive, release="medmec-crds")
    assert {d["metadata"]["name"] for d in docs} == {s["metadata"]["name"] for s in _source_crds()}
