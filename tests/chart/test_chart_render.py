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
    # the clinical ones, and the platform's own (tested with the operator's peers)
    assert set(classes) == {meta.priority_class_name(p) for p in meta.PRIORITIES} | {"medmec-platform"}
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


def _operator_bindings(docs: list[dict], kind: str) -> list[dict]:
    """The bindings of the operator's ServiceAccount (the prober, console and test have theirs)."""
    return [b for b in by_kind(docs, kind) if b["subjects"][0]["name"] == "medmec-operator"]


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
    bindings = _operator_bindings(docs, "ClusterRoleBinding")
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
    assert [b["roleRef"]["name"] for b in _operator_bindings(docs, "ClusterRoleBinding")] == \
        ["medmec-operator-cluster"]
    assert sorted(p["metadata"]["namespace"] for p in by_kind(docs, "KopfPeering")) == served
    assert by_kind(docs, "ClusterKopfPeering") == []
    assert _operator_env(docs)["MEDMEC_OPERATOR_NAMESPACES"] == ",".join(served)
    cluster_role = next(d for d in by_kind(docs, "ClusterRole")
                        if d["metadata"]["name"] == "medmec-operator-cluster")
    cluster_resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert not cluster_resources & {"medicalslices", "deployments", "configmaps", "pods"}


def _component(docs: list[dict], component: str, kind: str = "Deployment") -> list[dict]:
    return [d for d in by_kind(docs, kind)
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == component]


def _operator(docs: list[dict]) -> dict:
    [deployment] = _component(docs, "operator")
    return deployment


def _operator_env(docs: list[dict]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _operator(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
            if "value" in e}


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


def _store_secrets(docs: list[dict]) -> dict[tuple[str, str], dict[str, str]]:
    """(namespace, name) -> decoded keys of the model-store Secrets."""
    import base64
    return {(s["metadata"]["namespace"], s["metadata"]["name"]):
            {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
            for s in by_kind(docs, "Secret")
            if s["metadata"]["labels"].get("app.kubernetes.io/component") == "model-store"}


SLICE_NAMESPACES = ["imaging", "logistics", "surgery", "wards"]


def test_model_store_keys_generated_root_for_the_store_and_another_for_inference_pods():
    docs = template([hospital_values("st-luke")])
    secrets = _store_secrets(docs)
    root = secrets.pop(("medmec-system", "medmec-model-store"))
    inference = secrets.pop(("medmec-system", "medmec-model-store-inference"))
    assert len(root["secret-key"]) == 40 and root["access-key"].startswith("medmec-")
    assert inference["access-key"].startswith("medmec-inference-") and inference != root
    # each slice namespace holds the inference pods' key, never the store's root key
    assert secrets == {(ns, "medmec-model-store"): inference for ns in SLICE_NAMESPACES}
    # generated anew only when no Secret exists (helm `lookup` reads the kept one on upgrades:
    # tests e2e/tests/chart); a second render without a cluster generates other keys
    again = _store_secrets(template([hospital_values("st-luke")]))
    assert again[("medmec-system", "medmec-model-store")] != root
    kept = [s for s in by_kind(docs, "Secret") if s["metadata"]["namespace"] == "medmec-system"
            and s["metadata"]["name"].startswith("medmec-model-store")]
    assert len(kept) == 2 and all(s["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
                                  for s in kept)
    # MinIO's root user is the root Secret
    minio = _component(docs, "model-store")[0]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in minio["env"] if "valueFrom" in e}
    assert refs["MINIO_ROOT_USER"] == {"name": "medmec-model-store", "key": "access-key"}
    # after each install and upgrade a Job makes the inference key a MinIO user of its policy
    [job] = _component(docs, "model-store-access", "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["models", "grant-inference-key"]
    refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", e.get("value")) for e in container["env"]}
    assert refs["MEDMEC_STORE_ACCESS_KEY"] == {"name": "medmec-model-store", "key": "access-key"}
    assert refs["MEDMEC_INFERENCE_SECRET_KEY"] == {"name": "medmec-model-store-inference", "key": "secret-key"}
    assert refs["MEDMEC_STORE_ENDPOINT"] == "medmec-minio.medmec-system.svc:9000"
    # a platform pod (the store's NetworkPolicy admits it) under the restricted standard
    assert job["spec"]["template"]["metadata"]["labels"]["medmec.io/platform"] == "true"
    assert pod["securityContext"]["runAsNonRoot"] and not container["securityContext"]["allowPrivilegeEscalation"]


def test_model_store_credentials_given_or_left_to_the_user():
    given = {"accessKey": "ai-team", "secretKey": "s3cr3t-s3cr3t"}
    secrets = _store_secrets(template([hospital_values("st-luke")],
                                      set_values={"modelStore.credentials": given}))
    assert secrets.pop(("medmec-system", "medmec-model-store")) == {"access-key": "ai-team",
                                                                    "secret-key": "s3cr3t-s3cr3t"}
    inference = secrets.pop(("medmec-system", "medmec-model-store-inference"))
    assert inference["access-key"] != "ai-team"
    assert all(keys == inference for keys in secrets.values())
    # an existing S3 store: the given key is what the inference pods get (a read-only one
    # suffices), and no user is made on a store the chart does not run
    external = template([hospital_values("st-luke")], set_values={
        "modelStore.credentials": given, "modelStore.minio.enabled": False,
        "modelStore.endpoint": "s3.hospital.example:443"})
    copies = _store_secrets(external)
    assert ("medmec-system", "medmec-model-store-inference") not in copies
    assert copies and all(keys == {"access-key": "ai-team", "secret-key": "s3cr3t-s3cr3t"}
                          for keys in copies.values())
    assert _component(external, "model-store-access", "Job") == []
    left = template([hospital_values("st-luke")], set_values={"modelStore.manageSecrets": False})
    assert _store_secrets(left) == {} and _component(left, "model-store-access", "Job") == []


def test_in_cluster_minio_by_default_and_an_existing_store_instead():
    docs = template([hospital_values("st-luke")], set_values={
        "modelStore.minio.image": {"repository": "localhost/medmec-minio", "tag": "3f2a9c1"}})
    [deployment] = _component(docs, "model-store")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "localhost/medmec-minio:3f2a9c1"
    assert container["args"][:2] == ["server", "/data"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/minio/health/ready"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "medmec-minio"}} in pod["volumes"]
    [claim] = _component(docs, "model-store", "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    [service] = _component(docs, "model-store", "Service")
    assert service["spec"]["ports"][0]["port"] == 9000
    assert _operator_env(docs)["MEDMEC_OPERATOR_STORE_ENDPOINT"] == "medmec-minio.medmec-system.svc:9000"

    external = template([hospital_values("st-luke")], set_values={
        "modelStore.minio.enabled": False, "modelStore.endpoint": "s3.hospital.example:443",
        "modelStore.secure": True})
    assert _component(external, "model-store") == []
    assert _operator_env(external)["MEDMEC_OPERATOR_STORE_ENDPOINT"] == "s3.hospital.example:443"
    with pytest.raises(HelmError, match="modelStore.endpoint is required"):
        template(set_values={"modelStore.minio.enabled": False})
    no_volume = template(set_values={"modelStore.minio.persistence.enabled": False})
    assert _component(no_volume, "model-store", "PersistentVolumeClaim") == []


def _pods(docs: list[dict]) -> list[tuple[str, dict]]:
    pods = [(f"{d['kind']} {d['metadata']['name']}", d["spec"]["template"]["spec"])
            for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]
    return pods + [(f"Pod {d['metadata']['name']}", d["spec"]) for d in by_kind(docs, "Pod")]


@pytest.mark.parametrize("hospital", HOSPITALS)
def test_every_pod_meets_the_restricted_pod_security_standard(hospital):
    pods = _pods(template([hospital_values(hospital)]))
    assert len(pods) >= 5  # operator, MinIO, prober, console, reflectors, the helm test
    for what, pod in pods:
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}, what
        assert sc["fsGroup"] == 10001, what  # volumes writable by the image's user
        for c in pod.get("initContainers", []) + pod["containers"]:
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, what
            assert csc["capabilities"] == {"drop": ["ALL"]}, what
            assert csc["readOnlyRootFilesystem"] is True, what
        assert not any("hostPath" in v for v in pod.get("volumes", [])), what
        assert pod.get("priorityClassName") not in ("system-cluster-critical", "system-node-critical"), what


def test_slice_namespaces_enforce_the_restricted_standard():
    from medmec.operator.meta import pod_security_labels
    for namespace in by_kind(template([hospital_values("st-luke")]), "Namespace"):
        labels = namespace["metadata"]["labels"]
        assert {k: labels[k] for k in pod_security_labels()} == pod_security_labels()
    baseline = by_kind(template([hospital_values("st-luke")], set_values={"podSecurity.level": "baseline"}),
                       "Namespace")[0]["metadata"]["labels"]
    assert baseline["pod-security.kubernetes.io/enforce"] == "baseline"


def test_operator_replicas_are_peers_with_priorities_from_their_pod_names():
    docs = template([hospital_values("st-luke")])
    operator = _operator(docs)
    assert operator["spec"]["replicas"] == 2
    # one ReplicaSet at a time, so the live replicas' names (and priorities) differ
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    pod = operator["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["MEDMEC_OPERATOR_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "MEDMEC_OPERATOR_PRIORITY" not in env  # a fixed priority would be shared by both
    assert pod["priorityClassName"] == "medmec-platform"
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    [budget] = _component(docs, "operator", "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    classes = {c["metadata"]["name"]: c for c in by_kind(docs, "PriorityClass")}
    platform = classes["medmec-platform"]
    assert platform["value"] > max(meta.PRIORITIES.values()) and platform["preemptionPolicy"] == "Never"
    with pytest.raises(HelmError, match="/operator/priorityClassName"):
        template(set_values={"operator.priorityClassName": "system-cluster-critical"})


def test_qos_prober_reflectors_and_console_are_deployed_with_their_rbac():
    docs = template([hospital_values("st-luke")])
    values = yaml.safe_load(hospital_values("st-luke").read_text())
    reflectors = _component(docs, "qos-reflector")
    assert len(reflectors) == len(values["baseStations"])
    for station, reflector in zip(values["baseStations"], reflectors):
        pod = reflector["spec"]["template"]["spec"]
        term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [station["zone"]]
        assert pod["containers"][0]["args"] == ["serve", "qos-reflector", "--port", "7070"]
    [prober] = _component(docs, "qos-prober")
    args = prober["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["qos", "run"]
    links = [args[i + 1] for i, a in enumerate(args) if a == "--link"]
    assert links == [f"{b['name']}=medmec-reflector-{b['name']}.medmec-system.svc:7070"
                     for b in values["baseStations"]]
    assert {s["metadata"]["name"] for s in _component(docs, "qos-reflector", "Service")} == \
        {f"medmec-reflector-{b['name']}" for b in values["baseStations"]}
    # a base station probed across its radio side instead: only its link changes
    [prober] = _component(template([hospital_values("st-luke")], set_values={
        "qos.linkAddresses.gnb-south": "10.20.4.2:7070"}), "qos-prober")
    args = prober["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--link"] == [
        "gnb-south=10.20.4.2:7070" if link.startswith("gnb-south=") else link for link in links]
    with pytest.raises(HelmError, match="/qos/linkAddresses/gnb-south"):
        template([hospital_values("st-luke")], set_values={"qos.linkAddresses.gnb-south": "a/b"})
    [prober_role] = _component(docs, "qos-prober", "ClusterRole")
    assert {"apiGroups": ["medmec.io"], "resources": ["medicalslices/status"], "verbs": ["patch"]} \
        in prober_role["rules"]
    [console] = _component(docs, "console")
    container = console["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["serve", "console"]
    [console_role] = _component(docs, "console", "ClusterRole")
    verbs = {v for r in console_role["rules"] for v in r["verbs"]}
    assert verbs <= {"get", "list"}  # read-only
    for component in ("qos-prober", "console"):
        [binding] = _component(docs, component, "ClusterRoleBinding")
        [deployment] = _component(docs, component)
        assert binding["subjects"][0]["name"] == deployment["spec"]["template"]["spec"]["serviceAccountName"]
        # the platform selector: their pods reach every slice
        assert deployment["spec"]["template"]["metadata"]["labels"]["medmec.io/platform"] == "true"
    off = template([hospital_values("st-luke")], set_values={"qos.enabled": False, "console.enabled": False})
    assert not _component(off, "qos-prober") + _component(off, "qos-reflector") + _component(off, "console")


def test_console_token_generated_once_or_given():
    import base64
    docs = template()
    [secret] = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == "medmec-console-tokens"]
    [token] = base64.b64decode(secret["data"]["tokens"]).decode().split()
    assert len(token) == 32
    given = template(set_values={"console.tokens": ["a" * 16, "b" * 20]})
    [secret] = [s for s in by_kind(given, "Secret") if s["metadata"]["name"] == "medmec-console-tokens"]
    assert base64.b64decode(secret["data"]["tokens"]).decode().split() == ["a" * 16, "b" * 20]
    with pytest.raises(HelmError, match="/console/tokens/0"):
        template(set_values={"console.tokens": ["short"]})


def test_network_policies_admit_the_platform_selector_and_the_allowed_clients():
    docs = template([hospital_values("st-luke")], set_values={
        "console.allowedIngress": [{"cidr": "10.30.0.0/16"}],
        "modelStore.minio.allowedIngress": [{"namespaceSelector": {"matchLabels": {"team": "ai"}}}]})
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(docs, "NetworkPolicy")}
    platform = {"namespaceSelector": {}, "podSelector": {"matchLabels": {meta.PLATFORM_LABEL: "true"}}}
    for name in ("medmec-minio", "medmec-console", "medmec-qos-reflector"):
        assert any(rule["from"] == [platform] for rule in policies[name]["ingress"]), name
    assert {"from": [{"ipBlock": {"cidr": "10.30.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 8080}]} \
        in policies["medmec-console"]["ingress"]
    assert {"from": [{"namespaceSelector": {"matchLabels": {"team": "ai"}}}],
            "ports": [{"protocol": "TCP", "port": 9000}]} in policies["medmec-minio"]["ingress"]
    # inference pods of every namespace fetch their models
    assert policies["medmec-minio"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == \
        {"app.kubernetes.io/component": "inference", "app.kubernetes.io/managed-by": "medmec-operator"}
    # the operator's own pods carry the selector too (it reads each fleet's dispatcher)
    assert _operator(docs)["spec"]["template"]["metadata"]["labels"][meta.PLATFORM_LABEL] == "true"
    exposed = template(set_values={"console.service": {"type": "NodePort", "port": 8443}})
    [service] = _component(exposed, "console", "Service")
    assert service["spec"]["type"] == "NodePort" and service["spec"]["externalTrafficPolicy"] == "Local"
    assert service["spec"]["ports"][0]["port"] == 8443


def test_helm_test_pod_checks_store_console_reflectors_and_readiness():
    docs = template([hospital_values("st-luke")])
    [pod] = _component(docs, "test", "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    args = pod["spec"]["containers"][0]["args"]
    assert args[:3] == ["chart", "check", "--resources-ready"]
    targets = [args[i + 1] for i, a in enumerate(args) if a in ("--http", "--tcp")]
    assert "http://medmec-minio.medmec-system.svc:9000/minio/health/ready" in targets
    assert "http://medmec-console.medmec-system.svc:8080/healthz" in targets
    assert "medmec-reflector-gnb-east.medmec-system.svc:7070" in targets
    [role] = _component(docs, "test", "ClusterRole")
    assert {v for r in role["rules"] for v in r["verbs"]} == {"list"}


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
