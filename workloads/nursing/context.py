"""What the REST and gRPC layers of one nursing service share, and its access rules."""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from .store import Repository
from .tokens import Credentials, Principal
from .vitals import AlertHub, VitalsPipeline

# who may do what (see tokens.py)
READ = frozenset({"nurse", "doctor"})
RECORD_VITALS = frozenset({"nurse", "doctor", "device"})
STREAM_VITALS = frozenset({"device"})
ADMIT = frozenset({"doctor", "admin"})  # also: when a patient on the way is expected
RECEIVE = frozenset({"nurse", "doctor", "admin"})  # a patient on the way has arrived
ORDER = frozenset({"doctor"})
ADMINISTER = frozenset({"nurse"})
ACKNOWLEDGE = frozenset({"nurse", "doctor"})
AUDIT = frozenset({"doctor", "admin"})


class Denied(Exception):
    """The caller may not do this: `status` 401 (no valid credential) or 403."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Context:
    repo: Repository
    credentials: Credentials
    wards: frozenset[str]
    dose_window_s: float
    pipeline: VitalsPipeline
    hub: AlertHub

    async def db(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Run a repository call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def authenticate(self, authorization: str | None) -> Principal:
        principal = self.credentials.authenticate(authorization)
        if principal is None:
            raise Denied(401, "a valid bearer token is required")
        return principal

    def authorize(self, principal: Principal, roles: frozenset[str], ward: str | None = None) -> None:
        if principal.role not in roles:
            raise Denied(403, f"role {principal.role} may not do this")
        if ward is not None and not principal.may_access(ward):
            raise Denied(403, "this credential is not for this ward")
