"""The record of every change a cluster makes to the host, and its undoing.

Each change is written (and synced) to the ledger *before* it is made, so a run killed at
any point leaves a ledger that covers everything it did. Undoing walks the ledger
backwards; every undo step tolerates a change that was never completed or is already gone,
so `down` (or `up` after a killed run) can undo the same ledger any number of times.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")


class Ledger:
    def __init__(self, path: Path):
        self.path = path

    def record(self, kind: str, **data) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as out:
            out.write(json.dumps({"kind": kind, **data}) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def entries(self) -> list[dict]:
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return []
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except ValueError:  # a line torn by a kill while it was written
                continue
        return entries

    # --- changes, each recorded before it is made ----------------------------------------

    def keep_sysctls(self, keys: list[str], shared: Path, owner: str) -> None:
        """Remember the host's values of `keys` before a component changes them itself.

        Host-wide values are the host's, not one cluster's: the first cluster to change them
        keeps the originals in `shared`, and the last one to go down puts them back."""
        self.record("host-sysctls", file=str(shared), owner=owner)
        shared.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(shared, "x") as out:
                json.dump({k: v for k in keys if (v := read_sysctl(k)) is not None}, out)
        except FileExistsError:  # another cluster runs and kept them first
            pass

    def make_dir(self, path: Path) -> None:
        """Create `path` (and parents); the folders that did not exist are removed on undo."""
        missing = []
        for folder in [path, *path.parents]:
            if folder.exists():
                break
            missing.append(folder)
        if missing:
            self.record("dir", path=str(missing[-1]))
        path.mkdir(parents=True, exist_ok=True)

    def make_cgroup(self, path: str) -> None:
        """Create cgroup `path` in every v1 hierarchy (the kubelet wants its root to exist);
        a new cpuset gets its parent's CPUs and memory nodes, which v1 leaves empty."""
        self.record("cgroup", path=path)
        for hierarchy in CGROUP_FS.iterdir():
            if hierarchy.name == "unified" or not hierarchy.is_dir():
                continue
            folder = hierarchy
            for part in path.strip("/").split("/"):
                parent, folder = folder, folder / part
                if not folder.exists():
                    folder.mkdir()
                    if hierarchy.name == "cpuset":
                        for knob in ("cpuset.cpus", "cpuset.mems"):
                            (folder / knob).write_text((parent / knob).read_text())

    def run(self, kind: str, argv: list[str], **data) -> None:
        """Record `kind`, then run `argv` (an `ip`/`nft` command that makes the change)."""
        self.record(kind, **data)
        run_checked(argv)


def run_checked(argv: list[str], input: str | None = None) -> str:
    """Run a command; its output, or RuntimeError with its error output."""
    proc = subprocess.run(argv, capture_output=True, text=True, input=input)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def read_sysctl(key: str) -> str | None:
    try:
        return Path("/proc/sys", key.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def write_sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key.replace(".", "/")).write_text(value)


# --- undoing ------------------------------------------------------------------------------

def undo(path: Path, log: Callable[[str], None] = lambda m: None) -> list[str]:
    """Undo every change in the ledger at `path`, newest first; returns what was undone."""
    return undo_entries(Ledger(path).entries(), log)


def undo_entries(entries: list[dict], log: Callable[[str], None] = lambda m: None) -> list[str]:
    done = []
    for entry in reversed(entries):
        try:
            what = UNDO[entry["kind"]](entry)
        except Exception as err:  # keep undoing the rest; say what could not be
            log(f"could not undo {entry}: {err}")
            continue
        if what:
            done.append(what)
    return done


def _undo_host_sysctls(entry: dict) -> str | None:
    from medmec.localcluster import slots
    shared = Path(entry["file"])
    if not shared.exists() or slots.held_by_others(Path(entry["owner"])):
        return None  # another cluster still runs with them: the last one restores
    originals = json.loads(shared.read_text())
    for key, value in originals.items():
        if read_sysctl(key) not in (None, value):
            write_sysctl(key, value)
    shared.unlink()
    return f"host sysctls {', '.join(f'{k}={v}' for k, v in originals.items())}"


def _quiet(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True).returncode == 0


def _undo_netns(entry: dict) -> str | None:
    return f"network namespace {entry['name']}" if _quiet(["ip", "netns", "del", entry["name"]]) else None


def _undo_link(entry: dict) -> str | None:
    return f"link {entry['name']}" if _quiet(["ip", "link", "del", entry["name"]]) else None


def _undo_route(entry: dict) -> str | None:
    return f"route {entry['dst']}" if _quiet(["ip", "route", "del", entry["dst"]]) else None


def _undo_nft_table(entry: dict) -> str | None:
    if _quiet(["nft", "delete", "table", entry["family"], entry["name"]]):
        return f"nftables table {entry['family']} {entry['name']}"
    return None


def mounts_under(path: str) -> list[str]:
    """Mount points at or under `path`, deepest first (the order to unmount them in)."""
    found = []
    prefix = path.rstrip("/") + "/"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == path or point.startswith(prefix):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def _undo_mounts(entry: dict) -> str | None:
    count = 0
    # mounts stack: the kubelet bind-mounts its root onto itself to make it shared
    for _ in range(10):
        points = mounts_under(entry["path"])
        if not points:
            break
        for point in points:
            count += _quiet(["umount", "-l", point])
    return f"{count} mounts under {entry['path']}" if count else None


def cgroup_folders(root: str) -> list[Path]:
    """The folders of cgroup `root` in every hierarchy, deepest first."""
    found = []
    for hierarchy in CGROUP_FS.iterdir():
        top = hierarchy / root.lstrip("/")
        if top.is_dir():
            found += [Path(dirpath) for dirpath, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _undo_cgroup(entry: dict) -> str | None:
    folders = cgroup_folders(entry["path"])
    if not folders:
        return None
    # the processes left in it (containers, shims of a killed run) go first
    for _ in range(50):
        pids = set()
        for folder in folders:
            try:
                pids |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                continue
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass
    return f"cgroup {entry['path']}"


def _undo_dir(entry: dict) -> str | None:
    path = Path(entry["path"])
    if not path.exists():
        return None
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], capture_output=True)
    return f"folder {path}"


def pids_with(*markers: str) -> list[int]:
    """The processes (other than this one) with every one of `markers` on their command line."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if all(m.encode() in cmdline for m in markers):
            found.append(int(proc.name))
    return found


def _undo_processes(entry: dict) -> str | None:
    """Kill whatever still runs with `marker` on its command line (a killed run's kubelets,
    containerds and shims: the marker is a path of the cluster's own)."""
    killed = 0
    for pid in pids_with(entry["marker"]):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            continue
    return f"{killed} processes of {entry['marker']}" if killed else None


UNDO = {
    "host-sysctls": _undo_host_sysctls,
    "netns": _undo_netns,
    "link": _undo_link,
    "route": _undo_route,
    "nft-table": _undo_nft_table,
    "mounts": _undo_mounts,
    "cgroup": _undo_cgroup,
    "dir": _undo_dir,
    "processes": _undo_processes,
}
