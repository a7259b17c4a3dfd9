"""Polling until something holds: for tests, the demo and tools that watch a cluster."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, what: str = "condition",
             interval: float = 0.5, explain: Callable[[], object] | None = None) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    After `timeout` seconds raise TimeoutError naming `what`, the last value seen and, where
    given, what `explain()` says of why (a pod's status, a log's tail).
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    why = f"; {explain()}" if explain is not None else ""
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}{why}")
