"""Small network helpers shared by the workloads, the local cluster and the tests."""
from __future__ import annotations

import random
import socket
import time
from pathlib import Path

_FALLBACK_EPHEMERAL = (32768, 60999)
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _FALLBACK_EPHEMERAL


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now.

    Chosen below the kernel's ephemeral range: a port from that range (what binding to
    port 0 gives) can be taken as the source port of any outgoing connection in the
    moment between choosing it and the server binding it.
    """
    low, _ = _ephemeral_range()
    if low > 11000:
        for _ in range(50):
            port = random.randrange(10000, low)
            # nothing holds a port between two calls: never hand out the same one twice
            if port not in _handed_out and _bindable(port, host):
                _handed_out.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> bool:
    """True once something accepts TCP connections on host:port, False after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False
