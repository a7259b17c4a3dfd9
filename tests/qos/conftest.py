"""Emulated 5G links: the real reflector process (MEC side) behind a real Toxiproxy with one
proxy per base station."""
import sys

import pytest

from medmec import netutil, processes
from medmec.workloads.qos import toxiproxy

BASE_STATIONS = ["gnb-north", "gnb-south"]


@pytest.fixture(scope="session")
def reflector(tmp_path_factory):
    port = netutil.free_port()
    proc = processes.start("qos-reflector", [sys.executable, "-m", "medmec", "serve",
                                             "qos-reflector", "--host", "127.0.0.1",
                                             "--port", str(port)],
                           tmp_path_factory.mktemp("reflector") / "reflector.log")
    processes.wait_ready(proc, lambda: netutil.wait_for_port(port, timeout=0.5), timeout=30)
    yield port
    proc.stop()


@pytest.fixture(scope="session")
def toxi(tmp_path_factory):
    server = toxiproxy.start(tmp_path_factory.mktemp("toxiproxy"))
    yield server
    server.stop()


@pytest.fixture
def links(toxi, reflector):
    """{base station: (host, port)} through clean proxies; toxics are removed afterwards."""
    existing = toxi.proxies()
    result = {}
    for bs in BASE_STATIONS:
        if bs not in existing:
            toxi.create_proxy(bs, f"127.0.0.1:{netutil.free_port()}", f"127.0.0.1:{reflector}")
        host, port = toxi.proxies()[bs]["listen"].rsplit(":", 1)
        result[bs] = (host, int(port))
    toxi.reset()
    yield result
    toxi.reset()
