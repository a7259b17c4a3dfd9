"""The platform chart on a real control plane (KWOK nodes: pods are admitted, scheduled and
marked Ready, but run no containers): CRDs applied with kubectl adopted by the CRDs chart,
the whole hospital installed (operator peers, MinIO, QoS, console), its credentials kept
across upgrades (the store's root key and the inference pods' own one), the restricted Pod Security Standard enforced, and the `helm test` pod
admitted."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from medmec.workloads.gitops import helmchart
from medmec.workloads.gitops.helmchart import HelmError

REPO = Path(__file__).resolve().parents[3]
NS = helmchart.NAMESPACE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def get(c, *args) -> dict:
    return json.loads(c.kubectl("get", *args, "-o", "json").stdout)


def store_keys(c, namespace: str, name: str) -> dict[str, str]:
    secret = get(c, "secret", name, "-n", namespace)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


ROOT_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runs-as-root"},
            "spec": {"containers": [{"name": "c", "image": "localhost/medmec:any",
                                     "securityContext": {"runAsUser": 0}}]}}


def test_crds_chart_adopts_crds_applied_with_kubectl(chart_cluster):
    c = chart_cluster
    c.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))  # as a platform engineer would
    helmchart.install_crds(c.kubeconfig)  # no "invalid ownership metadata": taken over
    crd = get(c, "crd", "basestations.medmec.io")
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == helmchart.CRDS_RELEASE
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_the_hospital_installs_whole_and_keeps_its_credentials(chart_cluster):
    c, kc = chart_cluster, chart_cluster.kubeconfig
    helmchart.install_crds(kc)
    helmchart.install(kc, [helmchart.hospital_values("st-luke")])
    values = yaml.safe_load(helmchart.hospital_values("st-luke").read_text())

    def ready(name: str) -> int:
        return get(c, "deployment", name, "-n", NS)["status"].get("readyReplicas", 0)
    assert ready("medmec-operator") == 2
    for name in ("medmec-minio", "medmec-console", "medmec-qos-prober",
                 *(f"medmec-reflector-{b['name']}" for b in values["baseStations"])):
        assert ready(name) == 1, name
    assert get(c, "pvc", "medmec-minio", "-n", NS)["status"]["phase"] == "Bound"

    root = store_keys(c, NS, "medmec-model-store")
    inference = store_keys(c, NS, "medmec-model-store-inference")
    assert len(root["secret-key"]) == 40 and inference != root
    for s in values["slices"]:  # the inference pods' key, never the root key
        assert store_keys(c, s["namespace"], "medmec-model-store") == inference
    helmchart.install(kc, [helmchart.hospital_values("st-luke")], {"image.tag": "0.1.1"}, upgrade=True)
    assert store_keys(c, NS, "medmec-model-store") == root  # read back with lookup
    assert store_keys(c, "imaging", "medmec-model-store") == inference


@pytest.mark.parametrize("namespace", [NS, "imaging"])
def test_the_api_server_refuses_a_pod_breaking_restricted(chart_cluster, namespace):
    """The release namespace (made by `medmec chart install`) and a slice namespace (the chart's)."""
    c = chart_cluster
    assert get(c, "namespace", namespace)["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
    proc = c.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(ROOT_POD), check=False)
    assert proc.returncode != 0 and 'violates PodSecurity "restricted:latest"' in proc.stderr, proc.stderr


def test_helm_test_pod_is_admitted(chart_cluster):
    """Its check only completes where containers run (real nodes); here the API server admits
    the pod under the restricted standard and KWOK runs it without a container."""
    c, kc = chart_cluster, chart_cluster.kubeconfig
    with pytest.raises(HelmError):  # never Succeeded without a container
        helmchart.helm(["test", helmchart.RELEASE, "-n", NS, "--timeout", "20s"], kc)
    pod = get(c, "pod", "medmec-test-platform-ready", "-n", NS)
    assert pod["spec"]["containers"][0]["args"][:3] == ["chart", "check", "--resources-ready"]
    assert pod["status"]["phase"] in ("Pending", "Running")
