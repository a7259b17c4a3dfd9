"""The GitOps layout on disk: deploy/base and deploy/overlays/<hospital>, with one model
patch per EdgeInferenceService in overlays/<hospital>/models/. Edits are written atomically
and returned as unified diffs for the reviewer."""
from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

from medmec.workloads.gitops import promotion
from medmec.workloads.gitops.promotion import PromotionError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def hospitals(deploy_dir: Path = DEPLOY) -> list[str]:
    return sorted(p.parent.name for p in (deploy_dir / "overlays").glob("*/kustomization.yaml"))


def overlay_dir(deploy_dir: Path, hospital: str) -> Path:
    folder = deploy_dir / "overlays" / hospital
    if not (folder / "kustomization.yaml").is_file():
        raise PromotionError(f"no overlay for hospital {hospital!r} in {deploy_dir / 'overlays'}; "
                             f"known: {', '.join(hospitals(deploy_dir)) or 'none'}")
    return folder


def model_patches(deploy_dir: Path, hospital: str, model: str) -> list[Path]:
    """The patch files of `hospital` whose service serves `model`."""
    folder = overlay_dir(deploy_dir, hospital) / "models"
    found = []
    for path in sorted(folder.glob("*.yaml")):
        _, patch = promotion.parse(path.read_text())
        if patch["spec"]["model"]["name"] == model:
            found.append(path)
    if not found:
        raise PromotionError(f"no service of hospital {hospital} serves model {model!r} "
                             f"(looked in {folder})")
    return found


def _edit(path: Path, change: Callable[[dict], dict], root: Path) -> str:
    """Apply `change` to the patch in `path`; write it; return the unified diff."""
    old = path.read_text()
    header, patch = promotion.parse(old)
    new = promotion.render(header, change(patch))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"a/{rel}", tofile=f"b/{rel}"))


def promote(deploy_dir: Path, hospital: str, model: str, version: str, sha256: str,
            canary_percent: int | None = None, skip_canary: bool = False) -> list[str]:
    """Promote `version` of `model` for every service of `hospital` serving it; the diffs.

    Every file is checked before any is written, so a refused promotion changes nothing."""
    paths = model_patches(deploy_dir, hospital, model)
    if canary_percent is not None:
        def change(patch):
            return promotion.promote_canary(patch, version, sha256, canary_percent)
    else:
        def change(patch):
            return promotion.promote_full(patch, version, sha256, skip_canary)
    for path in paths:
        change(promotion.parse(path.read_text())[1])
    return [_edit(path, change, deploy_dir.parent) for path in paths]


def rollback(deploy_dir: Path, hospital: str, model: str) -> list[tuple[str, str]]:
    """Undo the last promotion step of `model` at `hospital`; (what was done, diff) per service."""
    paths = model_patches(deploy_dir, hospital, model)
    for path in paths:
        promotion.rollback(promotion.parse(path.read_text())[1])
    results = []
    for path in paths:
        said: list[str] = []

        def change(patch, said=said):
            new, message = promotion.rollback(patch)
            said.append(message)
            return new
        diff = _edit(path, change, deploy_dir.parent)
        results.append((said[0], diff))
    return results


def sync(kubeconfig: str, hospital: str, deploy_dir: Path = DEPLOY,
         field_manager: str = "medmec-gitops") -> str:
    """Apply the hospital's overlay as Argo CD / Flux would: server-side apply of the
    kustomize build. Returns kubectl's report (one line per object)."""
    from medmec.workloads.gitops.validate import kubectl
    proc = kubectl(["apply", "--server-side", f"--field-manager={field_manager}",
                    "-k", str(overlay_dir(deploy_dir, hospital))], kubeconfig)
    if proc.returncode != 0:
        raise PromotionError(f"applying the {hospital} overlay failed: {proc.stderr.strip()}")
    return proc.stdout
