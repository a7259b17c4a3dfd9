"""Emulated 5G links: a Toxiproxy server (built from its Go module) with one proxy per base
station in front of the MEC-side reflector, and toxics for latency, jitter, bandwidth and
cuts. The client speaks Toxiproxy's HTTP API (POST /proxies, /proxies/NAME/toxics, ...)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx

from medmec import netutil, processes


class ToxiproxyError(RuntimeError):
    pass


@dataclasses.dataclass
class Toxiproxy:
    api_url: str
    proc: processes.Proc | None = None

    def _call(self, method: str, path: str, json: dict | None = None) -> dict | list | None:
        response = httpx.request(method, self.api_url + path, json=json, timeout=10.0)
        if response.status_code >= 400:
            raise ToxiproxyError(f"toxiproxy {method} {path}: {response.status_code} "
                                 f"{response.text.strip()}")
        return response.json() if response.content else None

    def create_proxy(self, name: str, listen: str, upstream: str) -> dict:
        return self._call("POST", "/proxies", {"name": name, "listen": listen,
                                               "upstream": upstream, "enabled": True})

    def set_enabled(self, name: str, enabled: bool) -> dict:
        """A disabled proxy closes its connections and refuses new ones: the link is cut."""
        return self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(self, proxy: str, name: str, type_: str, attributes: dict,
                  stream: str = "downstream", toxicity: float = 1.0) -> dict:
        return self._call("POST", f"/proxies/{proxy}/toxics", {
            "name": name, "type": type_, "stream": stream, "toxicity": toxicity,
            "attributes": attributes})

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    # the toxics a 5G link test needs, named after what they emulate
    def add_latency(self, proxy: str, latency_ms: int, jitter_ms: int = 0,
                    name: str = "latency") -> dict:
        """Delay the MEC->hospital direction, so every round trip gains `latency_ms`."""
        return self.add_toxic(proxy, name, "latency", {"latency": latency_ms, "jitter": jitter_ms})

    def limit_bandwidth(self, proxy: str, mbps: float, name: str = "bandwidth") -> None:
        """Cap both directions at `mbps` (Toxiproxy's rate is in KB/s)."""
        rate = max(1, int(mbps * 1000 / 8))
        for stream in ("upstream", "downstream"):
            self.add_toxic(proxy, f"{name}-{stream}", "bandwidth", {"rate": rate}, stream=stream)

    def remove_bandwidth_limit(self, proxy: str, name: str = "bandwidth") -> None:
        for stream in ("upstream", "downstream"):
            self.remove_toxic(proxy, f"{name}-{stream}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def start(log_dir: Path, port: int | None = None) -> Toxiproxy:
    """Start toxiproxy-server on 127.0.0.1 (building it once if needed)."""
    from medmec.localcluster import binaries
    binaries.ensure(["toxiproxy"])
    port = port or netutil.free_port()
    proc = processes.start("toxiproxy", [str(binaries.binary("toxiproxy-server")),
                                         "-host", "127.0.0.1", "-port", str(port)],
                           log_dir / "toxiproxy.log")
    proxy = Toxiproxy(f"http://127.0.0.1:{port}", proc)
    processes.wait_ready(proc, lambda: httpx.get(proxy.api_url + "/version", timeout=1).is_success,
                         timeout=30, what="serving its API")
    return proxy
