"""Emulated 5G links on loopback for tests, the benchmark and the demo: the reflector
(`medmec serve qos-reflector`) as the MEC side, behind one Toxiproxy proxy per base station."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from medmec import netutil, processes

from . import toxiproxy


@dataclasses.dataclass
class EmulatedLinks:
    toxiproxy: toxiproxy.Toxiproxy
    reflector: processes.Proc
    reflector_port: int
    links: dict[str, tuple[str, int]]  # base station -> the proxy's listen address

    def link_args(self) -> list[str]:
        """`--link BS=HOST:PORT` arguments for `medmec qos run|accept`."""
        return [arg for bs, (host, port) in self.links.items()
                for arg in ("--link", f"{bs}={host}:{port}")]

    def stop(self) -> None:
        self.toxiproxy.stop()
        self.reflector.stop()


def start(base_stations: list[str], log_dir: Path) -> EmulatedLinks:
    port = netutil.free_port()
    reflector = processes.start(
        "qos-reflector", [sys.executable, "-m", "medmec", "serve", "qos-reflector",
                          "--host", "127.0.0.1", "--port", str(port)], log_dir / "reflector.log")
    try:
        processes.wait_ready(reflector, lambda: netutil.wait_for_port(port, timeout=0.5),
                             timeout=30, what="listening")
        proxy = toxiproxy.start(log_dir)
    except Exception:
        reflector.stop()
        raise
    links = {}
    for bs in base_stations:
        listen = netutil.free_port()
        proxy.create_proxy(bs, f"127.0.0.1:{listen}", f"127.0.0.1:{port}")
        links[bs] = ("127.0.0.1", listen)
    return EmulatedLinks(proxy, reflector, port, links)
