"""Start, watch and stop local server processes (control plane, MinIO, Triton, ...).

A started process gets its own session (so a stop also ends its children), writes its
output to a log file, and is remembered by pid plus start time, so a pid that the OS has
reused for something else is never signalled.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class ProcessError(RuntimeError):
    """A process failed to start or become ready; the message carries its log tail."""


@dataclasses.dataclass
class Proc:
    name: str
    pid: int
    started: float  # the kernel's start time of the pid (clock ticks since boot)
    log: str

    def alive(self) -> bool:
        _reap(self.pid)
        return _start_time(self.pid) == self.started

    def log_tail(self, lines: int = 20) -> str:
        return tail(Path(self.log), lines)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `timeout` seconds."""
        if not self.alive():
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                _reap(self.pid)
                if not self.alive():
                    return
                time.sleep(0.05)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# Popen objects of the processes this interpreter started, kept so that they are reaped
# (polled) rather than left as zombies; processes started by an earlier `medmec` run are
# children of init and need no reaping.
_children: dict[int, subprocess.Popen] = {}


def _reap(pid: int) -> None:
    popen = _children.get(pid)
    if popen is not None and popen.poll() is not None:
        del _children[pid]


def _start_time(pid: int) -> float | None:
    """Field 22 of /proc/PID/stat; None when the pid does not exist or is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return float(fields[19])


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(name: str, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> Proc:
    """Start `argv` detached from us, its stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            popen = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True)
        except OSError as err:
            raise ProcessError(f"{name}: cannot start {argv[0]}: {err}") from err
    started = _start_time(popen.pid)
    if started is None:
        raise ProcessError(f"{name} exited at once:\n{tail(log)}")
    _children[popen.pid] = popen
    return Proc(name=name, pid=popen.pid, started=started, log=str(log))


def wait_ready(proc: Proc, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
    """Poll `ready()` until true; raise with the log tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise ProcessError(f"{proc.name} exited before it was {what}; its log ends:\n"
                               f"{proc.log_tail()}")
        try:
            if ready():
                return
        except Exception:  # not up yet: connection refused, TLS not ready, 503, ...
            pass
        time.sleep(0.2)
    raise ProcessError(f"{proc.name} was not {what} after {timeout:.0f} s; its log ends:\n"
                       f"{proc.log_tail()}")
