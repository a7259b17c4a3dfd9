"""Free ports: distinct within a process, bindable, and outside the ephemeral range."""
from __future__ import annotations

import socket

from medmec import netutil


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    low, _ = netutil._ephemeral_range()
    ports = [netutil.free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)  # nothing holds them, so repeats would collide
    assert all(p < low for p in ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))
