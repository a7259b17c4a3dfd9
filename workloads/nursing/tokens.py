"""Bearer-token credentials of the nursing service.

The tokens file (mounted from a Secret, `--tokens-file`) is JSON:

    {"tokens": {
        "<bearer token>": {"role": "nurse",  "ward": "ward-a", "subject": "nurse-017"},
        "<bearer token>": {"role": "doctor", "ward": "ward-a", "subject": "dr-lee"},
        "<bearer token>": {"role": "device", "ward": "ward-a", "subject": "gateway-3"},
        "<bearer token>": {"role": "admin",  "ward": "*",      "subject": "it-ops"}}}

Roles: nurse (read the ward, record vitals, give medication, acknowledge alerts), doctor
(read the ward, record vitals, admit and discharge, order medication), device (wearables:
stream vitals only), admin (admit and discharge, read the audit log). A token acts in its
ward only; `"*"` (every ward) is allowed for admin only. Tokens must be at least 16
characters. Only a SHA-256 digest of each token is kept in memory.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Role = Literal["nurse", "doctor", "device", "admin"]


class Principal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    ward: str = Field(min_length=1)
    subject: str = Field(min_length=1, description="who acts, as written to the audit log")

    @model_validator(mode="after")
    def _wildcard_for_admin_only(self) -> "Principal":
        if self.ward == "*" and self.role != "admin":
            raise ValueError("only an admin token may have ward '*'")
        return self

    def may_access(self, ward: str) -> bool:
        return self.ward in ("*", ward)


class TokensFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: dict[str, Principal]


class TokensError(ValueError):
    pass


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Credentials:
    def __init__(self, principals: dict[str, Principal]):
        short = [p.subject for t, p in principals.items() if len(t) < 16]
        if short:
            raise TokensError(f"tokens shorter than 16 characters for: {', '.join(short)}")
        self._by_digest = {_digest(t): p for t, p in principals.items()}

    @classmethod
    def load(cls, path: Path) -> "Credentials":
        try:
            data = TokensFile.model_validate(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, ValidationError) as err:
            raise TokensError(f"tokens file {path}: {err}") from err
        return cls(data.tokens)

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an `Authorization: Bearer <token>` header value, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._by_digest.get(_digest(token.strip()))
