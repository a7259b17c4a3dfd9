"""Emulated 5G links: the real reflector process (MEC side) behind a real Toxiproxy with one
proxy per base station."""
import pytest

from medmec.workloads.qos import emulation


@pytest.fixture(scope="session")
def emulated(tmp_path_factory):
    links = emulation.start(["gnb-north", "gnb-south"], tmp_path_factory.mktemp("links"))
    yield links
    links.stop()


@pytest.fixture
def toxi(emulated):
    emulated.toxiproxy.reset()
    yield emulated.toxiproxy
    emulated.toxiproxy.reset()


@pytest.fixture
def links(emulated, toxi):
    """{base station: (host, port)} through clean proxies; toxics are removed afterwards."""
    return emulated.links


@pytest.fixture
def reflector(emulated):
    return emulated.reflector_port
