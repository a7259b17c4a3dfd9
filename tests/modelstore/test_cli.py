"""`medmec models push / pull / list`: the commands the operator's init container runs."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from medmec.workloads.modelstore.store import BUCKET, ModelStore

MODELS = Path(__file__).resolve().parents[2] / "models"


def medmec(minio_server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **minio_server.env()}
    return subprocess.run([sys.executable, "-m", "medmec", "models", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_push_pull_and_list_through_the_command(minio_server, tmp_path):
    pushed = medmec(minio_server, "push", str(MODELS / "diabetes-progression/1"))
    assert pushed.returncode == 0, pushed.stderr
    sha = json.loads((MODELS / "diabetes-progression/1/metadata.json").read_text())["sha256"]
    assert sha["model.onnx"] in pushed.stdout

    again = medmec(minio_server, "push", str(MODELS / "diabetes-progression/1"))
    assert again.returncode == 1
    assert "already in the store" in again.stderr

    dest = tmp_path / "models" / "diabetes-progression" / "1"
    pulled = medmec(minio_server, "pull", "diabetes-progression", "1", str(dest),
                    "--sha256", sha["model.onnx"])
    assert pulled.returncode == 0, pulled.stderr
    assert (dest / "model.onnx").read_bytes() == (
        MODELS / "diabetes-progression/1/model.onnx").read_bytes()

    listed = medmec(minio_server, "list", "diabetes-progression")
    assert json.loads(listed.stdout) == ["1"]


def test_pull_exits_non_zero_with_a_clear_message_on_a_sha256_mismatch(minio_server, tmp_path):
    pushed = medmec(minio_server, "push", str(MODELS / "breast-cancer-large/1"))
    assert pushed.returncode == 0, pushed.stderr
    bad = b"bit rot"
    ModelStore(minio_server.settings).client.put_object(
        BUCKET, "breast-cancer-large/1/model.onnx", io.BytesIO(bad), len(bad))
    result = medmec(minio_server, "pull", "breast-cancer-large", "1", str(tmp_path / "dest"))
    assert result.returncode == 1
    assert "error: model.onnx of breast-cancer-large:1 has sha256" in result.stderr
    assert not (tmp_path / "dest" / "model.onnx").exists()


def test_missing_store_settings_are_named(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMEC_STORE_")}
    result = subprocess.run([sys.executable, "-m", "medmec", "models", "pull", "x", "1",
                             str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "MEDMEC_STORE_ENDPOINT" in result.stderr
