"""The committed models: `make models` regenerates them byte for byte, and the cards carry
the numbers the script measured. The imaging model says it is untrained."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_breast_cancer, load_diabetes

from medmec.workloads.inference import imaging_cnn
from medmec.workloads.modelstore import modelcard
from medmec.workloads.modelstore.store import verify_bundle

from .conftest import MODELS

VERSIONS = sorted(p.parent.relative_to(MODELS) for p in MODELS.glob("*/*/metadata.json"))


def test_training_reproduces_the_committed_models_and_cards(tmp_path):
    """Cards and metadata come out identical; the models give the same answers and the
    same probabilities to 1e-3 (BLAS rounds differently on other processors, and an
    iteratively trained network carries that through its epochs: 4e-4 apart for
    breast-cancer-large measured on an AMD EPYC against the committed build)."""
    result = subprocess.run([sys.executable, str(MODELS / "train.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert len(VERSIONS) >= 4
    everything = load_breast_cancer().data.astype(np.float32)
    for version in VERSIONS:
        fresh, committed = tmp_path / version, MODELS / version
        assert (fresh / "card.md").read_text() == (committed / "card.md").read_text(), version
        fresh_meta, committed_meta = (modelcard.read_metadata(f) for f in (fresh, committed))
        assert ({k: v for k, v in fresh_meta.items() if k != "sha256"}
                == {k: v for k, v in committed_meta.items() if k != "sha256"}), version
        if committed_meta["dataset"]["loader"].endswith("load_breast_cancer"):
            x = everything
        else:
            x = load_diabetes().data.astype(np.float32)
        answers = [modelcard.run_onnx((f / "model.onnx").read_bytes(), x)
                   for f in (fresh, committed)]
        assert np.array_equal(answers[0].argmax(axis=1), answers[1].argmax(axis=1)), version
        assert np.allclose(answers[0], answers[1], atol=1e-3), version


def test_every_card_shows_its_measured_metrics_and_every_bundle_verifies():
    for version in VERSIONS:
        folder = MODELS / version
        meta = modelcard.read_metadata(folder)
        verify_bundle(folder, meta)
        card = (folder / "card.md").read_text()
        m = meta["metrics"]
        assert (f"| {m['accuracy']:.4f} | {m['sensitivity']:.4f} | {m['specificity']:.4f} "
                f"| {m['auroc']:.4f} |") in card
        assert "licence" in card.lower() or "license" in card.lower()
        session = ort.InferenceSession(str(folder / "model.onnx"))
        assert [i.name for i in session.get_inputs()] == ["features"]
        assert {o.name for o in session.get_outputs()} == {"label", "probabilities"}


def test_imaging_model_is_imaging_sized_and_labelled_untrained(tmp_path):
    folder = imaging_cnn.ensure(tmp_path)
    meta = modelcard.read_metadata(folder)
    verify_bundle(folder, meta)
    assert meta["untrained"] is True and "metrics" not in meta
    card = (folder / "card.md").read_text()
    assert "UNTRAINED" in card and "NOT A DIAGNOSTIC MODEL" in card
    session = ort.InferenceSession(str(folder / "model.onnx"))
    images = np.random.default_rng(1).random((2, 3, 224, 224), dtype=np.float32)
    probabilities = session.run(["probabilities"], {"image": images})[0]
    assert probabilities.shape == (2, 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # regenerated the same, and a damaged copy is replaced
    before = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(b"damaged")
    assert (imaging_cnn.ensure(tmp_path) / "model.onnx").read_bytes() == before
    (folder / "metadata.json").write_text("{}")
    assert (imaging_cnn.ensure(tmp_path) / "model.onnx").read_bytes() == before
