"""Promote and roll back model versions in a hospital's kustomize overlay (pure edits).

Each EdgeInferenceService of an overlay has a patch file overlays/<hospital>/models/<name>.yaml
holding spec.model (and spec.canary while a canary runs). A new version goes canary first
(spec.canary with a traffic share), then full (spec.model, canary removed, the version it
replaced kept in an annotation); rollback undoes the last step. The edits are on the parsed
patch; `render` writes it back in a stable layout, so the diff shows only what changed.
"""
from __future__ import annotations

import copy
import re

import yaml

PREVIOUS_ANNOTATION = "medmec.io/previous-model"  # "VERSION sha256:HEX" of the replaced version
STORE_BUCKET = "models"
SHA256_RE = re.compile(r"^[a-f0-9]{64}$")


class PromotionError(ValueError):
    """The requested promotion or rollback cannot be made; the message says why."""


def storage_uri(model: str, version: str) -> str:
    return f"s3://{STORE_BUCKET}/{model}/{version}"


def _check_sha(sha256: str) -> str:
    sha = sha256.strip().lower()
    if not SHA256_RE.match(sha):
        raise PromotionError(f"sha256 must be 64 lower-case hex digits, not {sha256!r}")
    return sha


def promote_canary(patch: dict, version: str, sha256: str, percent: int) -> dict:
    """Send `percent` of the requests to `version`, the rest to the current version."""
    if not 1 <= percent <= 99:
        raise PromotionError(f"--canary must be between 1 and 99 percent, not {percent}")
    model = patch["spec"]["model"]
    if version == model["version"]:
        raise PromotionError(f"{model['name']} version {version} is already the live version of "
                             f"{patch['metadata']['name']}; nothing to canary")
    new = copy.deepcopy(patch)
    new["spec"]["canary"] = {"version": version, "sha256": _check_sha(sha256),
                             "trafficPercent": percent}
    return new


def promote_full(patch: dict, version: str, sha256: str, skip_canary: bool = False) -> dict:
    """Make `version` the live version (100 % of requests); the replaced one is remembered."""
    model = patch["spec"]["model"]
    name = patch["metadata"]["name"]
    if version == model["version"]:
        raise PromotionError(f"{model['name']} version {version} is already the live version of {name}")
    canary = patch["spec"].get("canary")
    if not skip_canary and (canary is None or canary["version"] != version):
        running = f"the canary is version {canary['version']}" if canary else "no canary runs"
        raise PromotionError(
            f"{name}: {running}; promote {model['name']} {version} as a canary first "
            f"(--canary PERCENT), watch it, then promote it fully (or pass --skip-canary)")
    sha = _check_sha(sha256)
    if canary is not None and canary["version"] == version and canary["sha256"] != sha:
        raise PromotionError(f"{name}: the canary of version {version} runs sha256 "
                             f"{canary['sha256']}, but {sha} was given for the full promotion")
    new = copy.deepcopy(patch)
    new["spec"].pop("canary", None)
    new["spec"]["model"] = {**model, "version": version,
                            "storageUri": storage_uri(model["name"], version), "sha256": sha}
    annotations = new["metadata"].setdefault("annotations", {})
    annotations[PREVIOUS_ANNOTATION] = f"{model['version']} sha256:{model['sha256']}"
    return new


def rollback(patch: dict) -> tuple[dict, str]:
    """Undo the last promotion step: stop a running canary, else restore the replaced version.

    Returns the new patch and a sentence saying what was undone."""
    new = copy.deepcopy(patch)
    spec, name = new["spec"], new["metadata"]["name"]
    model = spec["model"]
    if spec.get("canary"):
        canary = spec.pop("canary")
        return new, (f"{name}: stopped the canary of {model['name']} version {canary['version']}; "
                     f"version {model['version']} serves all requests")
    previous = (new["metadata"].get("annotations") or {}).get(PREVIOUS_ANNOTATION)
    if not previous:
        raise PromotionError(f"{name}: nothing to roll back (no canary runs and no earlier "
                             f"version is recorded); promote the version you want instead")
    try:
        version, sha = previous.split(" sha256:")
        sha = _check_sha(sha)
    except ValueError:
        raise PromotionError(f"{name}: annotation {PREVIOUS_ANNOTATION}={previous!r} is not "
                             "'VERSION sha256:HEX'") from None
    spec["model"] = {**model, "version": version, "storageUri": storage_uri(model["name"], version),
                     "sha256": sha}
    del new["metadata"]["annotations"][PREVIOUS_ANNOTATION]
    if not new["metadata"]["annotations"]:
        del new["metadata"]["annotations"]
    return new, (f"{name}: rolled {model['name']} back from version {model['version']} "
                 f"to version {version}")


def parse(text: str) -> tuple[str, dict]:
    """The leading comment block and the patch of a models/<service>.yaml file."""
    try:
        patch = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PromotionError(f"not valid YAML: {err}") from None
    if not isinstance(patch, dict) or patch.get("kind") != "EdgeInferenceService" \
            or "model" not in (patch.get("spec") or {}):
        raise PromotionError("not an EdgeInferenceService patch with spec.model")
    header = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        header.append(line)
    return "".join(header), patch


def render(header: str, patch: dict) -> str:
    """The file text: comments, then the patch in a fixed key order (stable diffs)."""
    md = patch["metadata"]
    spec = patch["spec"]
    ordered = {"apiVersion": patch["apiVersion"], "kind": patch["kind"],
               "metadata": {"name": md["name"], **{k: v for k, v in md.items() if k != "name"}},
               "spec": {"model": {k: spec["model"][k] for k in
                                  ("name", "version", "storageUri", "sha256") if k in spec["model"]}}}
    for key, value in spec.items():
        if key not in ("model", "canary"):
            ordered["spec"][key] = value
    if "canary" in spec:
        c = spec["canary"]
        ordered["spec"]["canary"] = {"version": c["version"], "sha256": c["sha256"],
                                     "trafficPercent": c["trafficPercent"]}
    # versions stay strings in YAML ('2', not 2), as the CRD wants
    return header + yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False)
