"""The images `medmec image build` makes with podman (e2e/localcluster/images.py): what
decides a rebuild (pure), and the built images run: medmec as non-root on a read-only root
filesystem, the pause image stopping on SIGTERM, MinIO serving as non-root."""
from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from medmec.localcluster import images
from medmec.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


# ---- what decides a rebuild ------------------------------------------------------------

def small_tree(root: Path) -> None:
    """A checkout in miniature, with the repository's own .dockerignore."""
    shutil.copy(REPO / ".dockerignore", root / ".dockerignore")
    for rel, text in {"Dockerfile": "FROM scratch\n", "pyproject.toml": "[project]\n",
                      "README.md": "medmec\n", "medmec/cli.py": "print('hi')\n",
                      "medmec/__pycache__/cli.cpython-311.pyc": "\0", "tests/test_x.py": "x = 1\n",
                      "workloads/dispatch/protos/dispatch_pb2.py": "# generated\n",
                      "deploy/README.md": "gitops\n", "deploy/image/build-venv.sh": "#!/bin/sh\n",
                      ".venv/bin/python": "elf"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def tree_digest(root: Path) -> str:
    return images.digest(root, images.context_files(root, (root / ".dockerignore").read_text()))


def test_context_is_what_dockerignore_lets_in(tmp_path):
    small_tree(tmp_path)
    files = images.context_files(tmp_path, (tmp_path / ".dockerignore").read_text())
    # Docker always sends the Dockerfile and .dockerignore; COPY never sees them
    assert files == [".dockerignore", "Dockerfile", "README.md", "deploy/image/build-venv.sh",
                     "medmec/cli.py", "pyproject.toml"]


def test_digest_changes_with_a_copied_file_and_not_with_an_ignored_one(tmp_path):
    small_tree(tmp_path)
    before = tree_digest(tmp_path)
    for ignored in ("tests/test_x.py", "medmec/__pycache__/cli.cpython-311.pyc",
                    "workloads/dispatch/protos/dispatch_pb2.py", "deploy/README.md", ".venv/bin/python"):
        (tmp_path / ignored).write_text("changed\n")
    (tmp_path / "tests/new_test.py").write_text("y = 2\n")
    assert tree_digest(tmp_path) == before

    (tmp_path / "medmec/cli.py").write_text("print('changed')\n")
    after_edit = tree_digest(tmp_path)
    assert after_edit != before
    (tmp_path / "medmec/new.py").write_text("")
    after_new = tree_digest(tmp_path)
    assert after_new != after_edit
    (tmp_path / "deploy/image/build-venv.sh").chmod(0o755)  # modes are copied too
    assert tree_digest(tmp_path) != after_new


def test_digest_covers_the_dockerfile_and_the_base(tmp_path):
    small_tree(tmp_path)
    files = images.context_files(tmp_path, (tmp_path / ".dockerignore").read_text())
    one = images.digest(tmp_path, files, [("Dockerfile", "FROM a"), ("base", "1" * 64)])
    assert one != images.digest(tmp_path, files, [("Dockerfile", "FROM b"), ("base", "1" * 64)])
    assert one != images.digest(tmp_path, files, [("Dockerfile", "FROM a"), ("base", "2" * 64)])


def test_repository_context_holds_only_what_the_dockerfile_copies():
    # test_image checks that these `!` lines are the Dockerfile's COPY sources
    copies = tuple(line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
                   if line.startswith("!"))
    files = images.context_files(REPO, (REPO / ".dockerignore").read_text())
    assert "medmec/cli.py" in files and "operator/handlers.py" in files
    for rel in set(files) - {"Dockerfile", ".dockerignore"}:
        assert rel in copies or rel.startswith(tuple(c + "/" for c in copies)), rel
        assert "__pycache__" not in rel and not rel.endswith("_pb2.py"), rel


def test_ulimits_stay_at_or_below_the_hard_limits():
    assert images.ulimit_args(20000, 96363) == ["--ulimit", "nofile=20000:20000",
                                                "--ulimit", "nproc=4096:4096"]
    assert images.ulimit_args(1024, 100) == ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=100:100"]
    unlimited = images.resource.RLIM_INFINITY
    assert images.ulimit_args(unlimited, unlimited) == ["--ulimit", "nofile=1048576:1048576",
                                                        "--ulimit", "nproc=4096:4096"]


def test_builds_are_offline_with_runc():
    plan = images.Plan("medmec", "ab" * 32, Path("/r/Dockerfile"), prepare=lambda _: None,
                       build_args=(("PYTHON_IMAGE", "localhost/medmec-debian:0123"),),
                       volumes=("/w:/wheels:ro",))
    cmd = images.build_command(plan, Path("/ctx"), ["--ulimit", "nofile=1:1"])
    assert cmd[:4] == ["podman", "--runtime", "runc", "build"]
    assert {"--pull=never", "--ulimit", "nofile=1:1", "/ctx"} <= set(cmd)
    assert cmd[cmd.index("--network") + 1] == "none"
    assert cmd[cmd.index("--tag") + 1] == "localhost/medmec:" + "ab" * 6
    assert "PYTHON_IMAGE=localhost/medmec-debian:0123" in cmd and "/w:/wheels:ro" in cmd


# ---- the built images ------------------------------------------------------------------

def podman_run(*args: str, rm: bool = True) -> subprocess.CompletedProcess:
    """`podman run` as the cluster's nodes would: no network, read-only root filesystem."""
    return subprocess.run(["podman", "--runtime", "runc", "run", *(["--rm"] if rm else []),
                           "--network", "none", "--read-only", *images.host_ulimit_args(), *args],
                          capture_output=True, text=True, timeout=120)


def podman(*args: str) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def archive_names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
    return [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index["manifests"]]


@pytest.fixture(scope="module")
def medmec_image() -> images.Image:
    return images.ensure("medmec", log=lambda m: None)


@pytest.mark.slow
def test_medmec_image_runs_as_non_root_on_a_read_only_root(medmec_image):
    proc = podman_run(medmec_image.ref, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "operator" in proc.stdout and "serve" in proc.stdout
    script = ("import os, sysconfig\n"
              "print(os.getuid(), os.getgid(), sysconfig.get_config_var('LIBDIR'))\n"
              "try:\n    open('/opt/medmec/x', 'w')\nexcept OSError as err:\n    print(err.errno)\n")
    proc = podman_run("--entrypoint", "python", medmec_image.ref, "-c", script)
    assert proc.returncode == 0, proc.stderr
    uid, gid, libdir, errno = proc.stdout.split()
    assert (uid, gid) == ("10001", "10001")
    assert errno == "30"  # EROFS: the root filesystem is read-only

    # Triton's Python backend stub (the one for this interpreter's version) loads the
    # interpreter's own libpython: Debian's here, the official image's with its Dockerfile ENV
    script = ("import os, pathlib, subprocess, sys, sysconfig, pytriton\n"
              "stubs = pathlib.Path(pytriton.__file__).parent / 'tritonserver/python_backend_stubs'\n"
              "stub = stubs / f'{sys.version_info.major}.{sys.version_info.minor}/triton_python_backend_stub'\n"
              "out = subprocess.run(['ldd', str(stub)], capture_output=True, text=True, check=True).stdout\n"
              "linked = next(l.split('=>')[1].split('(')[0].strip() for l in out.splitlines() if 'libpython3' in l)\n"
              "own = os.path.join(sysconfig.get_config_var('LIBDIR'), sysconfig.get_config_var('INSTSONAME'))\n"
              "print(os.path.realpath(linked), os.path.realpath(own))\n")
    proc = podman_run("--entrypoint", "python", medmec_image.ref, "-c", script)
    assert proc.returncode == 0, proc.stderr
    linked, own = proc.stdout.split()
    assert linked == own and "libpython3.11.so" in own


@pytest.mark.slow
def test_medmec_image_is_reused_and_archived(medmec_image):
    said = []
    again = images.ensure("medmec", log=said.append)
    assert again == medmec_image and not said  # nothing rebuilt, nothing to say
    assert archive_names(medmec_image.archive) == [medmec_image.ref]


@pytest.mark.slow
def test_pause_image_holds_until_sigterm():
    pause = images.ensure("pause", log=lambda m: None)
    assert archive_names(pause.archive) == [pause.ref]
    name = f"medmec-pause-test-{secrets.token_hex(4)}"
    proc = podman_run("--detach", "--name", name, pause.ref, rm=False)
    assert proc.returncode == 0, proc.stderr
    try:
        running = lambda: podman("inspect", "--format", "{{.State.Running}}", name).strip()  # noqa: E731
        wait_for(lambda: running() == "true", 30, "the pause container to run")
        assert podman("top", name, "huser").split()[1:] == ["65535"]
        # it exits on SIGTERM (128 + 15), not when podman gives up and kills it (137)
        podman("stop", "--time", "30", name)
        assert podman("inspect", "--format", "{{.State.ExitCode}}", name).strip() == "143"
    finally:
        subprocess.run(["podman", "rm", "--force", "--ignore", name], capture_output=True)


@pytest.mark.slow
def test_minio_image_serves_as_non_root():
    minio = images.ensure("minio", log=lambda m: None)
    assert archive_names(minio.archive) == [minio.ref]
    name = f"medmec-minio-test-{secrets.token_hex(4)}"
    proc = podman_run("--detach", "--name", name, "--tmpfs", "/data:rw,mode=1777",
                      "--tmpfs", "/tmp:rw,mode=1777",
                      "--env", "MINIO_ROOT_USER=medmec", "--env", f"MINIO_ROOT_PASSWORD={secrets.token_hex(12)}",
                      minio.ref, "server", "/data", "--address", "127.0.0.1:9000")
    assert proc.returncode == 0, proc.stderr
    try:
        def live() -> bool:
            return subprocess.run(
                ["podman", "exec", name, "python3", "-c",
                 "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/minio/health/live', timeout=2)"],
                capture_output=True).returncode == 0
        wait_for(live, 120, "MinIO in the container to answer /minio/health/live", interval=1)
        assert podman("top", name, "huser").split()[1:] == ["10001"]
    finally:
        subprocess.run(["podman", "rm", "--force", "--ignore", name], capture_output=True)
