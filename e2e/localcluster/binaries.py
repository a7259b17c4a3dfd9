"""Build the Go binaries medmec runs (Kubernetes, etcd, KWOK, helm, MinIO, Toxiproxy) from
their Go modules, once, into a cache outside the checkout.

Versions are pinned in binaries.toml beside this file. A binary that is already in the cache
is never rebuilt; a build writes into a temporary folder and renames it into place, so an
interrupted build leaves nothing half-made behind.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

SPEC_FILE = Path(__file__).with_name("binaries.toml")
MIN_GO = (1, 26)


class BuildError(RuntimeError):
    """A binary could not be built; the message names the cause."""


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    module: str
    version: str
    packages: tuple[str, ...] = ()
    main: str | None = None
    binary: str | None = None
    staging: str | None = None
    ldflags: tuple[str, ...] = ()

    @property
    def binaries(self) -> tuple[str, ...]:
        if self.binary:
            return (self.binary,)
        return tuple(_last_element(f"{self.module}/{p}".rstrip("/")) for p in self.packages)

    @property
    def import_paths(self) -> tuple[str, ...]:
        return tuple(f"{self.module}/{p}".rstrip("/") for p in self.packages)

    def folder(self) -> Path:
        return cache_root() / "bin" / f"{self.name}-{self.version}"


def _last_element(import_path: str) -> str:
    last = import_path.rsplit("/", 1)[-1]
    # a major-version suffix is not the command's name (github.com/x/y/v2 -> y)
    if last.startswith("v") and last[1:].isdigit():
        last = import_path.rsplit("/", 2)[-2]
    return last


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "medmec"


def load_specs(path: Path = SPEC_FILE) -> dict[str, Spec]:
    data = tomllib.loads(path.read_text())
    specs = {}
    for name, entry in data.items():
        specs[name] = Spec(
            name=name,
            module=entry["module"],
            version=entry["version"],
            packages=tuple(entry.get("packages", ())),
            main=entry.get("main"),
            binary=entry.get("binary"),
            staging=entry.get("staging"),
            ldflags=tuple(entry.get("ldflags", ())),
        )
        if not specs[name].packages and not specs[name].main:
            raise BuildError(f"{path}: [{name}] needs `packages` or `main`")
    return specs


def binary(name: str, specs: dict[str, Spec] | None = None) -> Path:
    """Path of a built binary by its command name (kube-apiserver, etcd, helm, ...)."""
    for spec in (specs or load_specs()).values():
        if name in spec.binaries:
            return spec.folder() / name
    raise KeyError(f"no binary called {name!r} in {SPEC_FILE}")


def is_built(spec: Spec) -> bool:
    return all((spec.folder() / b).is_file() for b in spec.binaries)


def go_toolchain() -> str:
    go = shutil.which("go")
    if not go:
        raise BuildError(
            "the Go toolchain is not on PATH: install Go >= %d.%d (https://go.dev/dl/) to build "
            "the Kubernetes binaries, or set KUBECONFIG to use an existing cluster" % MIN_GO)
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
    parts = out.removeprefix("go").split(".")
    try:
        found = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        raise BuildError(f"cannot read the Go version from `go env GOVERSION`: {out!r}")
    if found < MIN_GO:
        raise BuildError(f"Go {out} is too old: these modules need Go >= %d.%d" % MIN_GO)
    return go


def go_mod(spec: Spec) -> str:
    lines = [f"module medmec.local/build/{spec.name}", "", "go 1.26.0", "",
             f"require {spec.module} {spec.version}", ""]
    if spec.staging:
        replaces = [f"\t{m} => {m} {spec.staging}" for m in _staging_modules(spec)]
        lines += ["replace (", *replaces, ")", ""]
    return "\n".join(lines)


def _staging_modules(spec: Spec) -> list[str]:
    """The k8s.io/* modules that k8s.io/kubernetes replaces with its ./staging copies."""
    gomod = _run([go_toolchain(), "mod", "download", "-json", f"{spec.module}@{spec.version}"],
                 cwd=None, what=f"download {spec.module}@{spec.version}")
    mod_file = Path(json.loads(gomod)["GoMod"]).read_text()
    mods = []
    for line in mod_file.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            mods.append(parts[0])
    # sample modules are examples, not published, and nothing we build imports them
    return [m for m in mods if "/sample-" not in m]


def _run(cmd: list[str], cwd: Path | None, what: str, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed ({' '.join(cmd[:3])} ...):\n{tail}")
    return proc.stdout


def build(spec: Spec, log: Callable[[str], None] = print) -> float:
    """Build one entry into its cache folder; returns the seconds it took."""
    go = go_toolchain()
    start = time.monotonic()
    work = cache_root() / "build" / spec.name
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(go_mod(spec))
    (work / "go.sum").unlink(missing_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    if spec.main:
        (work / "main.go").write_text(spec.main.lstrip())
        _run([go, "mod", "tidy"], work, f"resolve {spec.name}", env)
        targets = ["."]
    else:
        (work / "main.go").unlink(missing_ok=True)
        _run([go, "get", *(f"{p}@{spec.version}" for p in spec.import_paths)], work,
             f"resolve {spec.name}", env)
        targets = list(spec.import_paths)
    xflags = " ".join(f"-X {f.format(version=spec.version)}" for f in spec.ldflags)
    final = spec.folder()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=final.parent))
    try:
        out = str(tmp / spec.binary) if spec.binary else str(tmp) + "/"
        log(f"building {spec.name} {spec.version} ({', '.join(spec.binaries)}) ...")
        _run([go, "build", "-trimpath", f"-ldflags=-s -w {xflags}".strip(), "-o", out, *targets],
             work, f"go build {spec.name}", env)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return time.monotonic() - start


def ensure(names: Iterable[str] | None = None, log: Callable[[str], None] = print) -> dict[str, float]:
    """Build whatever of `names` (default: all) is not yet in the cache.

    Returns {entry: build seconds} for what was built; an empty dict means all were cached.
    A file lock keeps two concurrent runs (make demo beside make test) from building twice.
    """
    specs = load_specs()
    wanted = list(names) if names is not None else list(specs)
    unknown = [n for n in wanted if n not in specs]
    if unknown:
        raise BuildError(f"unknown binaries {unknown}; known: {sorted(specs)}")
    missing = [specs[n] for n in wanted if not is_built(specs[n])]
    if not missing:
        return {}
    cache_root().mkdir(parents=True, exist_ok=True)
    built = {}
    with open(cache_root() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for spec in missing:
            if not is_built(spec):  # another run may have built it while we waited
                built[spec.name] = build(spec, log)
                log(f"built {spec.name} in {built[spec.name]:.0f} s -> {spec.folder()}")
    return built


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or None
    try:
        built = ensure(names, log=lambda m: print(m, file=sys.stderr, flush=True))
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not built:
        print("all binaries cached under", cache_root() / "bin", file=sys.stderr)
    return 0
