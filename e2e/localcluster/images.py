"""Container images built on this machine with podman, from nothing a registry has to serve.

    base    Debian bookworm from Debian's packages (mmdebstrap), with Python 3.11; and a
            build base, the same with a C compiler and Python's headers
    medmec  the repository's Dockerfile: built on the build base (its BUILD_IMAGE build
            argument: setup.py compiles the dispatch router), run on the base (PYTHON_IMAGE)
    pause   the pod sandbox image: images/pause/pause.c, compiled statically
    minio   the MinIO binary of binaries.toml on the same base (images/minio/Dockerfile)

An image's tag is a digest of everything that goes into it (the build context as
.dockerignore selects it, the Dockerfile, the base), so an unchanged tree reuses the image
already built. Each build is also kept as an OCI archive in the cache, for a node's
containerd (`ctr -n k8s.io images import`). `ensure(name)` builds what is missing and
returns the reference and that archive.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

from medmec.localcluster import binaries

REPO = Path(__file__).resolve().parents[2]
NAMES = ("medmec", "pause", "minio")
# builds kept per image (archive and podman tag): several worktrees may build in turn
KEEP = 3

# The base: Debian's minimal variant plus what the images run. Docs and man pages stay out;
# the copyright files stay in.
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "libpython3.11", "passwd", "ca-certificates")
# the build stage's extra: what Cython's C needs (the image itself carries no compiler)
BUILD_PACKAGES = ("gcc", "libc6-dev", "python3-dev")
DEBIAN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageError(RuntimeError):
    """An image could not be built; the message names the step and ends with its output."""


@dataclasses.dataclass(frozen=True)
class Image:
    name: str
    ref: str        # localhost/<name>:<first 12 hex digits of the digest>
    archive: Path   # the OCI archive of this build, for `ctr -n k8s.io images import`


@dataclasses.dataclass(frozen=True)
class Plan:
    """One `podman build`: what it reads, and the digest of all of it; `prepare(folder)`
    fills a fresh folder with the build context."""
    name: str
    digest: str
    dockerfile: Path
    prepare: Callable[[Path], None]
    build_args: tuple[tuple[str, str], ...] = ()
    volumes: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"localhost/{self.name}:{self.digest[:12]}"


# ---- pure: digests and commands --------------------------------------------------------

def context_files(root: Path, ignore_text: str) -> list[str]:
    """The files a build sends as its context: those .dockerignore's patterns let in.

    The matching is docker-py's port of Docker's own (last matching pattern wins, a
    directory's pattern covers what is inside it)."""
    from docker.utils.build import exclude_paths
    patterns = [line.strip() for line in ignore_text.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    paths = exclude_paths(str(root), patterns, dockerfile="Dockerfile")
    return sorted(p for p in paths if not (root / p).is_dir() or (root / p).is_symlink())


def digest(root: Path, files: Iterable[str], extra: Iterable[tuple[str, str]] = ()) -> str:
    """sha256 over each file's path, executable bit and content (a link's target), and
    the `extra` (name, value) pairs: any change to what a build reads changes it."""
    h = hashlib.sha256()
    for rel in sorted(files):
        path = root / rel
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = b"link:" + os.readlink(path).encode()
        else:
            content = hashlib.sha256(path.read_bytes()).digest()
        h.update(f"{rel}\0{bool(st.st_mode & 0o111)}\0".encode() + content + b"\n")
    for name, value in sorted(extra):
        h.update(f"{name}\0{value}\n".encode())
    return h.hexdigest()


def ulimit_args(nofile_hard: int, nproc_hard: int) -> list[str]:
    """podman's default ulimits are above what an unprivileged-limits host allows
    ("setrlimit ... Operation not permitted"): ask for at most the hard limits."""
    def cap(hard: int, wanted: int) -> int:
        return wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    nofile, nproc = cap(nofile_hard, 1 << 20), cap(nproc_hard, 4096)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def base_recipe(packages: tuple[str, ...] = DEBIAN_PACKAGES) -> tuple[str, ...]:
    """mmdebstrap's arguments before the output path, and the sources after it."""
    return ("--variant=minbase", f"--include={','.join(packages)}",
            # /usr merged by mmdebstrap itself: no usrmerge package, which pulls in perl
            "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            *(f"--dpkgopt={o}" for o in DPKG_OPTIONS), DEBIAN_SUITE)


def archive_pattern(name: str) -> str:
    """The archives of image `name` in the cache: exactly `<name>-<12 hex>.oci.tar`, so
    that medmec's do not take in medmec-pause's."""
    return f"{name}-{'[0-9a-f]' * 12}.oci.tar"


def build_command(plan: Plan, context: Path, ulimits: list[str]) -> list[str]:
    """The `podman build`: offline (--network none, --pull=never), runc, bounded ulimits."""
    # --format docker: the OCI image format has no HEALTHCHECK
    cmd = ["podman", "--runtime", "runc", "build", "--format", "docker", "--pull=never",
           "--network", "none", *ulimits, "--file", str(plan.dockerfile), "--tag", plan.ref]
    for name, value in plan.build_args:
        cmd += ["--build-arg", f"{name}={value}"]
    for volume in plan.volumes:
        cmd += ["--volume", volume]
    return cmd + [str(context)]


# ---- the cache and podman -------------------------------------------------------------

def cache_dir() -> Path:
    return binaries.cache_root() / "images"


def _run(cmd: list[str], what: str, log_file: Path | None = None, **kwargs) -> str:
    if log_file:
        with open(log_file, "w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, **kwargs)
        output = log_file.read_text()
    else:
        proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
        output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-20:])
        where = f" (full log: {log_file})" if log_file else ""
        raise ImageError(f"{what} failed{where}:\n{tail}")
    return proc.stdout if not log_file else output


def _require(*commands: str) -> None:
    missing = [c for c in commands if not shutil.which(c, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if missing:
        raise ImageError(f"missing {', '.join(missing)}: run `make system-deps` "
                         "(apt-get install podman runc mmdebstrap gcc libc6-dev)")


def _podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "--runtime", "runc", *args], capture_output=True, text=True)


def _exists(ref: str) -> bool:
    return _podman("image", "exists", ref).returncode == 0


def host_ulimit_args() -> list[str]:
    """ulimit_args for this host's hard limits: for `podman build` and `podman run`."""
    return ulimit_args(resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                       resource.getrlimit(resource.RLIMIT_NPROC)[1])


def size(ref: str) -> int:
    """The image's size in bytes, as podman counts it (all layers, uncompressed)."""
    return int(_run(["podman", "image", "inspect", "--format", "{{.Size}}", ref], f"inspect {ref}"))


def _prune(pattern: str, keep: int, forget: Callable[[Path], None],
           log: Callable[[str], None]) -> None:
    """Keep the `keep` most recently used cache files matching `pattern`; `forget(old)`
    removes what goes with one that is dropped."""
    found = sorted(cache_dir().glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in found[keep:]:
        forget(old)
        old.unlink(missing_ok=True)
        log(f"removed the old build {old.name}")


def wheelhouse(repo: Path = REPO) -> Path:
    """The image's pinned wheels (deploy/image/constraints.txt) and its build backend,
    downloaded once per constraints file into the cache: image builds and tests/image then
    install offline from it (the package index answers without cache headers pip keeps)."""
    constraints = repo / "deploy/image/constraints.txt"
    backend = tomllib.loads((repo / "pyproject.toml").read_text())["build-system"]["requires"]
    key = hashlib.sha256(constraints.read_bytes() + "\n".join(backend).encode()).hexdigest()[:16]
    folder = binaries.cache_root() / "wheels" / key
    if folder.is_dir():
        return folder
    tmp = folder.with_name(f".{key}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for args in (["--no-deps", "-r", str(constraints)], backend):
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
              "--only-binary", ":all:", "--dest", str(tmp), *args],
             "downloading the image's wheels", timeout=1800)
    try:
        tmp.rename(folder)
    except OSError:  # another run got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _base(log: Callable[[str], None], build: bool = False) -> tuple[str, str]:
    """(reference, digest) of the Debian base (`build`: the build base): mmdebstrap's root
    filesystem tar, made once per recipe and imported into podman under a tag derived from
    the tar's content."""
    kind = "-build" if build else ""
    args = base_recipe(DEBIAN_PACKAGES + BUILD_PACKAGES if build else DEBIAN_PACKAGES)
    recipe = (*args, *DEBIAN_SOURCES)
    key = hashlib.sha256("\0".join(recipe).encode()).hexdigest()[:12]
    tar = cache_dir() / f"debian-{DEBIAN_SUITE}{kind}-{key}.tar"
    sums = tar.with_suffix(".sha256")
    if not (tar.is_file() and sums.is_file()):
        _require("mmdebstrap")
        log(f"building the Debian {DEBIAN_SUITE}{kind} base from Debian's packages "
            "(mmdebstrap) ...")
        start = time.monotonic()
        tmp = tar.with_name(f".{tar.name}.{os.getpid()}.tmp")
        try:
            _run(["mmdebstrap", "--quiet", "--format=tar", *args, str(tmp), *DEBIAN_SOURCES],
                 "mmdebstrap", log_file=cache_dir() / "logs" / f"base{kind}.log")
            sums.write_text(hashlib.sha256(tmp.read_bytes()).hexdigest() + "\n")
            tmp.rename(tar)
        finally:
            tmp.unlink(missing_ok=True)
        log(f"built the base in {time.monotonic() - start:.0f} s")
        _prune(f"debian-{DEBIAN_SUITE}{kind}-{'[0-9a-f]' * 12}.tar", 1,
               lambda old: old.with_suffix(".sha256").unlink(missing_ok=True), log)
    base_digest = sums.read_text().strip()
    ref = f"localhost/medmec-debian{kind}:{base_digest[:12]}"
    if not _exists(ref):
        _run(["podman", "import", "--change", f"ENV PATH={PATH_ENV}", "--change", 'CMD ["/bin/bash"]',
              str(tar), ref], f"podman import of {tar}")
    return ref, base_digest


def _medmec_plan(base_ref: str, base_digest: str, build_ref: str, build_digest: str,
                 repo: Path = REPO) -> Plan:
    dockerfile = repo / "Dockerfile"
    files = context_files(repo, (repo / ".dockerignore").read_text())
    extra = [("Dockerfile", dockerfile.read_text()), ("base", base_digest),
             ("build base", build_digest)]
    expected = digest(repo, files, extra)

    def copy_context(context: Path) -> None:
        """The build reads a copy, checked against the digest: an edit made meanwhile
        cannot end up in an image tagged as the tree before it."""
        for rel in files:
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, context / rel, follow_symlinks=False)
        if digest(context, files, extra) != expected:
            raise ImageError("the build context changed while it was copied: run the build again")
    return Plan("medmec", expected, dockerfile,
                # pip installs offline from the wheelhouse (build-venv.sh reads PIP_*)
                build_args=(("PYTHON_IMAGE", base_ref), ("BUILD_IMAGE", build_ref),
                            ("PIP_FIND_LINKS", "/wheels"),
                            ("PIP_NO_INDEX", "1")),
                volumes=(f"{wheelhouse(repo)}:/wheels:ro",), prepare=copy_context)


PAUSE_CFLAGS = ("-static", "-Os", "-s", "-Wall", "-Werror")


def _pause_plan(repo: Path = REPO) -> Plan:
    src = repo / "images/pause"

    def compile_pause(context: Path) -> None:
        _require("gcc")
        _run(["gcc", *PAUSE_CFLAGS, "-o", str(context / "pause"), str(src / "pause.c")],
             "compiling images/pause/pause.c")
    return Plan("medmec-pause", digest(src, ["pause.c", "Dockerfile"], [("cflags", " ".join(PAUSE_CFLAGS))]),
                src / "Dockerfile", prepare=compile_pause)


def _minio_plan(base_ref: str, base_digest: str, repo: Path = REPO,
                log: Callable[[str], None] = print) -> Plan:
    dockerfile = repo / "images/minio/Dockerfile"
    binaries.ensure(["minio"], log=log)
    minio = binaries.binary("minio")
    return Plan("medmec-minio", digest(minio.parent, ["minio"], [("Dockerfile", dockerfile.read_text()),
                                                                 ("base", base_digest)]),
                dockerfile, build_args=(("BASE_IMAGE", base_ref),),
                prepare=lambda context: shutil.copy2(minio, context / "minio"))


def _build(plan: Plan, log: Callable[[str], None]) -> Image:
    archive = cache_dir() / f"{plan.name}-{plan.digest[:12]}.oci.tar"
    if archive.is_file():
        archive.touch()  # recently used: _prune keeps it
        if not _exists(plan.ref):  # podman's storage was reset: the archive has the build
            _run(["podman", "load", "--input", str(archive)], f"podman load of {archive}")
        return Image(plan.name, plan.ref, archive)
    if not _exists(plan.ref):
        log(f"building {plan.ref} ...")
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f".{plan.name}-context-", dir=cache_dir()) as tmp:
            plan.prepare(Path(tmp))
            _run(build_command(plan, Path(tmp), host_ulimit_args()), f"podman build of {plan.name}",
                 log_file=cache_dir() / "logs" / f"{plan.name}-{plan.digest[:12]}.log")
        log(f"built {plan.ref} in {time.monotonic() - start:.0f} s ({size(plan.ref) / 1e6:.0f} MB)")
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
    try:
        _run(["podman", "save", "--format", "oci-archive", "--output", str(tmp), plan.ref],
             f"podman save of {plan.ref}")
        tmp.rename(archive)
    finally:
        tmp.unlink(missing_ok=True)

    def forget(old: Path) -> None:
        tag = old.name.removeprefix(f"{plan.name}-").removesuffix(".oci.tar")
        _podman("rmi", "--ignore", f"localhost/{plan.name}:{tag}")
        (cache_dir() / "logs" / f"{plan.name}-{tag}.log").unlink(missing_ok=True)
    _prune(archive_pattern(plan.name), KEEP, forget, log)
    return Image(plan.name, plan.ref, archive)


def ensure(name: str, log: Callable[[str], None] = print) -> Image:
    """The image `name` (medmec, pause or minio), built if its inputs changed since the last
    build; a file lock keeps two runs (make demo beside make test) from building twice."""
    if name not in NAMES:
        raise ImageError(f"unknown image {name!r}; known: {', '.join(NAMES)}")
    if not (REPO / "Dockerfile").is_file():
        raise ImageError(f"no Dockerfile in {REPO}: images are built from a checkout")
    _require("podman", "runc")
    (cache_dir() / "logs").mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if name == "pause":
            plan = _pause_plan()
        else:
            base_ref, base_digest = _base(log)
            plan = (_medmec_plan(base_ref, base_digest, *_base(log, build=True))
                    if name == "medmec" else _minio_plan(base_ref, base_digest, log=log))
        return _build(plan, log)


def ensure_all(log: Callable[[str], None] = print) -> dict[str, Image]:
    """Every image of the platform (NAMES), by name, each built only if its inputs changed."""
    return {name: ensure(name, log=log) for name in NAMES}


def register(commands, serve) -> None:
    image = commands.add_parser("image", help="build the container images here (podman, no registry)")
    sub = image.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="build (first time, or after a change) or reuse the images")
    build.add_argument("names", nargs="*", metavar="NAME",
                       help=f"images to build: {', '.join(NAMES)} (default: all)")
    build.set_defaults(func=_build_cli)


def _build_cli(args) -> int:
    try:
        for name in args.names or NAMES:
            built = ensure(name, log=lambda m: print(m, file=sys.stderr, flush=True))
            print(f"{built.ref}\t{built.archive}")
    except (ImageError, binaries.BuildError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
