"""Install, upgrade and uninstall medmec's Helm charts with the real helm binary.

Two charts, because Helm never upgrades CRDs from a chart's crds/ folder and cannot install
a CRD and resources of its kind from one release: `medmec-crds` (the CRDs, as templates, so
`helm upgrade` upgrades them; kept on uninstall) once per cluster, then `medmec` (operator,
RBAC, PriorityClasses, kopf peering, the hospital's base stations and slices).

Also: a kubeconfig holding a token of the chart's ServiceAccount (TokenRequest API), to run
the operator locally with exactly the chart's RBAC.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
MAIN_CHART = CHARTS / "medmec"
CRDS_CHART = CHARTS / "medmec-crds"
HOSPITALS = MAIN_CHART / "hospitals"
RELEASE = "medmec"
CRDS_RELEASE = "medmec-crds"
NAMESPACE = "medmec-system"
# how long `helm --wait` may wait for the release's objects to be ready (generous: two busy
# cores); the helm process itself gets a minute more
WAIT_TIMEOUT = "300s"


class HelmError(RuntimeError):
    """helm failed; the message carries its error output."""


def helm_binary() -> Path:
    from medmec.localcluster import binaries
    binaries.ensure(["helm"])
    return binaries.binary("helm")


def hospital_values(hospital: str) -> Path:
    path = HOSPITALS / f"{hospital}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in HOSPITALS.glob("*.yaml"))
        raise HelmError(f"no values file for hospital {hospital!r}; known: {', '.join(known)}")
    return path


def helm(args: Sequence[str], kubeconfig: str | None = None, timeout: float = 360) -> str:
    """Run helm; its stdout, or HelmError with its stderr. Symlink notices are dropped."""
    cmd = [str(helm_binary()), *args]
    if kubeconfig:
        cmd += ["--kubeconfig", str(kubeconfig)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        err = "\n".join(line for line in proc.stderr.splitlines()
                        if "found symbolic link in path" not in line)
        raise HelmError(f"helm {' '.join(args[:2])} failed: {err.strip()}")
    return proc.stdout


def _value_args(values_files: Sequence[Path | str] = (), set_values: dict | None = None) -> list[str]:
    args = []
    for f in values_files:
        args += ["-f", str(f)]
    for key, value in (set_values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def install_crds(kubeconfig: str, chart: Path = CRDS_CHART, release: str = CRDS_RELEASE) -> str:
    """Install or upgrade the CRD chart (idempotent). CRDs applied before without Helm
    (`kubectl apply -f crds/`) are adopted (--take-ownership, Helm 3.17+) instead of
    failing with "invalid ownership metadata"."""
    return helm(["upgrade", "--install", release, str(chart), "--take-ownership", "--wait"],
                kubeconfig)


def release_namespace(kubeconfig: str, namespace: str = NAMESPACE, level: str = "restricted") -> None:
    """Create (or label) the release namespace with the Pod Security labels: helm's
    --create-namespace makes it without, and the chart cannot own the namespace it is in."""
    from medmec.operator.meta import pod_security_labels
    from medmec.workloads.gitops.validate import kubectl
    namespace_doc = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": namespace, "labels": pod_security_labels(level)}}
    proc = kubectl(["apply", "--server-side", "--field-manager", "medmec-chart", "-f", "-"],
                   kubeconfig, input=json.dumps(namespace_doc))
    if proc.returncode != 0:
        raise HelmError(f"cannot create namespace {namespace}: {proc.stderr.strip()}")


def install(kubeconfig: str, values_files: Sequence[Path | str] = (), set_values: dict | None = None,
            release: str = RELEASE, namespace: str = NAMESPACE, chart: Path = MAIN_CHART,
            wait: bool = True, upgrade: bool = False) -> str:
    """`helm install` (or `helm upgrade` with upgrade=True) of the medmec chart."""
    release_namespace(kubeconfig, namespace)
    verb = ["upgrade", release] if upgrade else ["install", release]
    args = [*verb, str(chart), "-n", namespace, "--create-namespace",
            *_value_args(values_files, set_values)]
    if wait:
        args += ["--wait", "--timeout", WAIT_TIMEOUT]
    return helm(args, kubeconfig)


def uninstall(kubeconfig: str, release: str = RELEASE, namespace: str = NAMESPACE) -> str:
    return helm(["uninstall", release, "-n", namespace, "--wait"], kubeconfig)


def install_hospital(kubeconfig: str, hospital: str, set_values: dict | None = None) -> str:
    """CRDs, then medmec with the hospital's values (upgrading a release already there)."""
    values = hospital_values(hospital)
    install_crds(kubeconfig)
    release_namespace(kubeconfig)
    args = ["upgrade", "--install", RELEASE, str(MAIN_CHART), "-n", NAMESPACE,
            "--create-namespace", "--wait", "--timeout", WAIT_TIMEOUT,
            *_value_args([values], set_values)]
    return helm(args, kubeconfig)


def template(values_files: Sequence[Path | str] = (), set_values: dict | None = None,
             chart: Path = MAIN_CHART, release: str = RELEASE, namespace: str = NAMESPACE,
             kube_version: str = "1.36.0") -> list[dict]:
    """The manifests `helm template` renders (no cluster needed)."""
    out = helm(["template", release, str(chart), "-n", namespace, "--kube-version", kube_version,
                *_value_args(values_files, set_values)])
    return [doc for doc in yaml.safe_load_all(out) if doc]


def service_account_kubeconfig(kubeconfig: str, out: Path, namespace: str = NAMESPACE,
                               service_account: str = f"{RELEASE}-operator",
                               seconds: int = 3600) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount with a TokenRequest token.

    Server and CA come from `kubeconfig`; nothing else of its identity is kept."""
    from kubernetes import client, config
    api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds))
    token = api.create_namespaced_service_account_token(service_account, namespace, request)
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    user = f"system:serviceaccount:{namespace}:{service_account}"
    config_doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "medmec-operator",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token.status.token}}],
        "contexts": [{"name": "medmec-operator",
                      "context": {"cluster": cluster["name"], "user": user}}],
    }
    out.write_text(yaml.safe_dump(config_doc, sort_keys=False))
    out.chmod(0o600)
    return out


def operator_env(values_files: Sequence[Path | str] = (), set_values: dict | None = None
                 ) -> dict[str, str]:
    """The MEDMEC_OPERATOR_* variables the chart gives the operator container (those with a
    value; the pod's own name comes from the downward API)."""
    [deployment] = [d for d in template(values_files, set_values) if d["kind"] == "Deployment"
                    and d["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def local_operator(kubeconfig: str, hospital: str, folder: Path,
                   set_values: dict | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment to run `medmec operator run` here as the chart deploys it:
    its settings, and the credentials of its ServiceAccount (so exactly its RBAC).

    The liveness endpoint is moved to a free loopback port. Call after install_hospital."""
    import sys

    from medmec.netutil import free_port
    folder.mkdir(parents=True, exist_ok=True)
    sa_kubeconfig = service_account_kubeconfig(kubeconfig, folder / "operator.kubeconfig")
    env = {**operator_env([hospital_values(hospital)], set_values),
           "MEDMEC_OPERATOR_LIVENESS_HOST": "127.0.0.1",
           "MEDMEC_OPERATOR_LIVENESS_PORT": str(free_port()),
           "KUBECONFIG": str(sa_kubeconfig)}
    return [sys.executable, "-m", "medmec", "operator", "run"], env
