"""The CI check of the GitOps layout (`make validate`, `medmec gitops validate`).

For every hospital overlay: render it with kustomize (kubectl's built-in), have the API
server accept it with a server-side dry-run (schema, CEL rules, defaults; nothing is
stored), and check that every model version it names (live and canary) is in the model
store with the same sha256.
"""
from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import yaml

from medmec.workloads.gitops import promotion

FIELD_MANAGER = "medmec-gitops"


@dataclasses.dataclass
class OverlayReport:
    hospital: str
    services: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def kubectl_binary() -> Path:
    from medmec.localcluster import binaries
    binaries.ensure(["kubernetes"])
    return binaries.binary("kubectl")


def kubectl(args: list[str], kubeconfig: str | None = None, input: str | None = None
            ) -> subprocess.CompletedProcess:
    cmd = [str(kubectl_binary()), *args]
    if kubeconfig:
        cmd += ["--kubeconfig", str(kubeconfig)]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120)


def render(overlay: Path) -> str:
    proc = kubectl(["kustomize", str(overlay)])
    if proc.returncode != 0:
        raise ValueError(f"kustomize {overlay} failed: {proc.stderr.strip()}")
    return proc.stdout


def services(manifests: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(manifests) if d and d.get("kind") == "EdgeInferenceService"]


def model_refs(service: dict) -> list[tuple[str, str, str]]:
    """(model, version, sha256) of the live version and of the canary, if one runs."""
    model = service["spec"]["model"]
    refs = [(model["name"], str(model["version"]), model["sha256"])]
    canary = service["spec"].get("canary")
    if canary:
        refs.append((model["name"], str(canary["version"]), canary["sha256"]))
    return refs


def check_models(service: dict, store) -> list[str]:
    """Problems with the model versions `service` names; `store` has .metadata(name, version)."""
    from medmec.workloads.modelstore.store import NotFound, StoreError
    name = f"{service['metadata'].get('namespace', '')}/{service['metadata']['name']}"
    problems = []
    model = service["spec"]["model"]
    expected_uri = promotion.storage_uri(model["name"], str(model["version"]))
    if model.get("storageUri", "").rstrip("/") != expected_uri:
        problems.append(f"{name}: spec.model.storageUri is {model.get('storageUri')}, "
                        f"but version {model['version']} lives at {expected_uri}")
    for model_name, version, sha256 in model_refs(service):
        try:
            metadata = store.metadata(model_name, version)
        except NotFound:
            problems.append(f"{name}: model {model_name} version {version} is not in the model store")
            continue
        except StoreError as err:
            problems.append(f"{name}: model {model_name} version {version}: {err}")
            continue
        stored = (metadata.get("sha256") or {}).get("model.onnx")
        if stored != sha256:
            problems.append(f"{name}: model {model_name} version {version} has sha256 {stored} "
                            f"in the store, but the overlay says {sha256}")
    return problems


def dry_run(manifests: str, kubeconfig: str) -> list[str]:
    """Problems the API server finds in a server-side dry-run apply (nothing is stored)."""
    proc = kubectl(["apply", "--server-side", "--dry-run=server", f"--field-manager={FIELD_MANAGER}",
                    "-f", "-"], kubeconfig, input=manifests)
    if proc.returncode == 0:
        return []
    return [line for line in proc.stderr.strip().splitlines() if line.strip()]


def validate_overlay(overlay: Path, kubeconfig: str, store) -> OverlayReport:
    report = OverlayReport(hospital=overlay.name)
    try:
        manifests = render(overlay)
    except ValueError as err:
        report.problems.append(str(err))
        return report
    found = services(manifests)
    report.services = [s["metadata"]["name"] for s in found]
    report.problems += dry_run(manifests, kubeconfig)
    for service in found:
        report.problems += check_models(service, store)
    return report


def namespaces(deploy_dir: Path, hospitals: list[str]) -> set[str]:
    """The namespaces the overlays' services go to."""
    return {s["metadata"]["namespace"] for h in hospitals
            for s in services(render(deploy_dir / "overlays" / h)) if s["metadata"].get("namespace")}
