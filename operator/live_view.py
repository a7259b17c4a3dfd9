"""Reading a workload's live view over HTTP (the dispatcher's fleet, the mobility service's
transport) into status figures and a `...Reachable` condition: one reader for every kind."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import httpx

from medmec.operator.conditions import condition


@dataclasses.dataclass(frozen=True)
class LiveView:
    condition: str            # the condition type, e.g. DispatcherReachable
    figures: tuple[str, ...]  # status fields left unset when the view cannot be read
    unreachable: str          # reasons: no answer, a bad answer, read
    bad: str
    read_ok: str

    def unknown(self, reason: str, message: str) -> dict:
        return {**dict.fromkeys(self.figures),
                "conditions": [condition(self.condition, False, reason, message)]}

    def read(self, url: str, timeout: float, parse: Callable[[object], dict]) -> dict:
        """GET `url` and `parse` its JSON into status fields (a "conditions" list among them
        is kept, the Reachable condition added); unset figures with the reason otherwise."""
        try:
            rsp = httpx.get(url, timeout=timeout)
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            return self.unknown(self.unreachable, f"GET {url}: {err or type(err).__name__}")
        if not rsp.is_success:
            return self.unknown(self.bad, f"GET {url} answered HTTP {rsp.status_code}")
        try:
            found = parse(rsp.json())
        except ValueError as err:  # JSON decoding errors are ValueErrors too
            return self.unknown(self.bad, f"GET {url}: {err}")
        return {**found, "conditions": [*found.get("conditions", []),
                                        condition(self.condition, True, self.read_ok, f"read {url}")]}
