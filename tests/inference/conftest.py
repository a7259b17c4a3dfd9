"""Real servers for the inference tests: MinIO (the model store) and `medmec serve inference`
processes answering tritonclient over HTTP and gRPC. Started once per module or session."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from medmec.workloads.inference.process import InferenceServer
from medmec.workloads.modelstore.testing import minio_server, model_store  # noqa: F401

MODELS = Path(__file__).resolve().parents[2] / "models"


def metadata(name: str, version: str) -> dict:
    return json.loads((MODELS / name / version / "metadata.json").read_text())


def held_out(meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """The card's held-out split, rebuilt from scikit-learn's data and the metadata alone."""
    assert meta["dataset"]["loader"] == "sklearn.datasets.load_breast_cancer"
    data = load_breast_cancer()
    labels = np.array([meta["classes"].index(data.target_names[t]) for t in data.target])
    split = meta["dataset"]["split"]
    _, x_test, _, y_test = train_test_split(
        data.data.astype(np.float32), labels, test_size=split["test_size"],
        random_state=split["random_state"], stratify=labels if split["stratify"] else None)
    return x_test, y_test


@pytest.fixture(scope="session")
def pushed_models(model_store):
    """Every committed model version, pushed to the real MinIO store."""
    for folder in sorted(MODELS.glob("*/*/metadata.json")):
        model_store.push(folder.parent)
    return model_store


@pytest.fixture(scope="session")
def plain_server(tmp_path_factory, minio_server, pushed_models):
    """breast-cancer:1 alone, pulled from the store into an empty model folder at start."""
    state = tmp_path_factory.mktemp("plain")
    server = InferenceServer(state, state / "models", "breast-cancer", "1",
                             ["--max-batch-size", "8", "--max-queue-delay-us", "2000"],
                             env={**minio_server.env(), "OTEL_TRACES_EXPORTER": "console"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def large_server(tmp_path_factory):
    """breast-cancer-large:1 from the committed folder: the escalation target."""
    state = tmp_path_factory.mktemp("large")
    local = state / "models"
    shutil.copytree(MODELS / "breast-cancer-large", local / "breast-cancer-large")
    server = InferenceServer(state, local, "breast-cancer-large", "1",
                             ["--max-batch-size", "64"]).start()
    yield server
    server.stop()
