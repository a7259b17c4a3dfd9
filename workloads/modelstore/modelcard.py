"""A model version folder: model.onnx, card.md and metadata.json (with the files' sha256).

The training script and the imaging-model generator write versions through these helpers;
the store checks them on push and pull.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used, keeping `medmec --help` quick
    import numpy as np

MODEL_FILE = "model.onnx"
CARD_FILE = "card.md"
METADATA_FILE = "metadata.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_onnx(onnx_bytes: bytes, features: np.ndarray) -> np.ndarray:
    """Class probabilities from the exported model, exactly as the server computes them."""
    import numpy as np
    import onnxruntime as ort
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"features": features.astype(np.float32)})[0]


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Held-out quality of a two-class model; class 1 is the positive (disease) finding."""
    from sklearn.metrics import roc_auc_score
    predicted = probabilities.argmax(axis=1)
    tp = int(((predicted == 1) & (labels == 1)).sum())
    tn = int(((predicted == 0) & (labels == 0)).sum())
    fp = int(((predicted == 1) & (labels == 0)).sum())
    fn = int(((predicted == 0) & (labels == 1)).sum())
    return {
        "n": int(len(labels)),
        "accuracy": round((tp + tn) / len(labels), 4),
        "sensitivity": round(tp / (tp + fn), 4),
        "specificity": round(tn / (tn + fp), 4),
        "auroc": round(float(roc_auc_score(labels, probabilities[:, 1])), 4),
        "confusion": {"tp": tp, "fn": fn, "fp": fp, "tn": tn},
    }


def _io_table(tensors: list[dict]) -> str:
    rows = ["| name | datatype | shape | meaning |", "| --- | --- | --- | --- |"]
    rows += [f"| `{t['name']}` | {t['datatype']} | {t['shape']} | {t['description']} |"
             for t in tensors]
    return "\n".join(rows)


def render_card(metadata: dict, description: str, source: str, intended_use: str,
                limits: str) -> str:
    """The model card in Markdown; its numbers come from metadata["metrics"] only."""
    m = metadata.get("metrics")
    split = metadata.get("dataset", {}).get("split")
    opset = ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in metadata["opset"].items())
    lines = [f"# Model card: {metadata['name']} version {metadata['version']}", "",
             description, "", "## Interface", "",
             f"ONNX, opsets: {opset}. Served by Triton (ONNX Runtime inside) under the KServe "
             "v2 protocol.", "", "Inputs:", "", _io_table(metadata["inputs"]), "",
             "Outputs:", "", _io_table(metadata["outputs"]), ""]
    if metadata.get("classes"):
        lines += ["Classes (output index order): " +
                  ", ".join(f"{i} = `{c}`" for i, c in enumerate(metadata["classes"])), ""]
    lines += ["## Data", "", source, ""]
    if split:
        lines += [f"Split: stratified, {split['train']} training / {split['test']} held-out "
                  f"cases (test_size {split['test_size']}, random_state "
                  f"{split['random_state']}).", ""]
    lines += ["## Held-out quality", ""]
    if m:
        c = m["confusion"]
        lines += [f"Measured by models/train.py with ONNX Runtime on the exported file, "
                  f"{m['n']} held-out cases, positive class `{metadata['classes'][1]}`, "
                  "decision = most probable class.", "",
                  "| accuracy | sensitivity | specificity | AUROC |", "| --- | --- | --- | --- |",
                  f"| {m['accuracy']:.4f} | {m['sensitivity']:.4f} | {m['specificity']:.4f} "
                  f"| {m['auroc']:.4f} |", "",
                  f"Confusion: TP {c['tp']}, FN {c['fn']}, FP {c['fp']}, TN {c['tn']}.", ""]
    else:
        lines += ["None: this model is untrained and has no diagnostic quality.", ""]
    lines += ["## Intended use", "", intended_use, "", "## Limits", "", limits, ""]
    return "\n".join(lines)


def write_version(folder: Path, onnx_bytes: bytes, metadata: dict, card: str) -> None:
    """Write the three files; metadata gets the sha256 of the model and the card."""
    folder.mkdir(parents=True, exist_ok=True)
    card_bytes = card.encode()
    metadata = {**metadata, "sha256": {MODEL_FILE: sha256_bytes(onnx_bytes),
                                       CARD_FILE: sha256_bytes(card_bytes)}}
    for name, data in ((MODEL_FILE, onnx_bytes), (CARD_FILE, card_bytes),
                       (METADATA_FILE, (json.dumps(metadata, indent=2) + "\n").encode())):
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)


def read_metadata(folder: Path) -> dict:
    return json.loads((folder / METADATA_FILE).read_text())
