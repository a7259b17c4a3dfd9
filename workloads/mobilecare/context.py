"""A monitoring session's context: what an edge site holds for one ambulance and what moves
with it at a handover (pure).

The context is kilobytes: the newest value of each NEWS2 parameter, the recent vitals
window, the score history behind the trend, the open alerts, the last position and ETA, and
`committed_through`, the last sample committed. A sample numbered `committed_through + 1` is
the next one the session takes; anything at or below it was committed (here or at an
earlier site) and counts as a duplicate. That cursor moving with the context is what makes
every sample count once across sites.

`seal` / `unseal` protect the context between sites with AES-256-GCM; the associated data
binds the ciphertext to the session, the move and both sites, so a context replayed into
another move or tampered with is refused.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from medmec.workloads.nursing.news2 import RISK_ORDER, complete, score, validate_update
from medmec.workloads.nursing.vitals import escalates, merge

PARAMETERS = ("respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness",
              "temperature_c")
WINDOW_SAMPLES = 120  # the vitals window that moves: about 17 s of 7 channels at 1 Hz
SCORE_HISTORY = 30
SCORE_EVERY_S = 10.0  # an unchanged score is recorded this often (the trend's time base)
TREND_SPAN_S = 60.0  # the trend compares the score with the one about this long ago
MAX_AGE_S = 3600.0  # a parameter older than this no longer completes a NEWS2 set
MAX_ETA_S = 12 * 3600  # no ambulance drive is longer: a larger ETA is a broken navigation unit
_ALERT_NAMESPACE = uuid.UUID("6a1f3c2e-4b5d-4e8f-9a0b-1c2d3e4f5a6b")


class ContextError(Exception):
    """A sealed context that cannot be opened: wrong key, tampered with, or not a context."""


@dataclasses.dataclass
class Applied:
    """What one batch did to the context."""
    rows: list[tuple[int, int, dict]]  # (seq, effective ms, validated values) to store
    rejected: list[tuple[int, str]]  # (seq, reason)
    duplicates: int


@dataclasses.dataclass
class SessionContext:
    session_id: str
    vehicle: str
    spo2_scale: int = 1
    nursing_target: str = ""  # host:port of the destination ward's nursing gRPC
    nursing_ward: str = ""
    committed_through: int = 0
    latest: dict[str, list] = dataclasses.field(default_factory=dict)  # param -> [value, t]
    window: list[list] = dataclasses.field(default_factory=list)  # [seq, ms, values]
    scores: list[list] = dataclasses.field(default_factory=list)  # [t, score, risk]
    last_risk: str | None = None
    open_alerts: list[dict] = dataclasses.field(default_factory=list)
    position: dict | None = None
    moves: int = 0

    # ---- samples -------------------------------------------------------------------------

    def apply(self, samples: list[tuple[int, int, dict]], now: float) -> Applied:
        """Take a batch of (seq, effective ms, raw values) in order. A sample at or below
        `committed_through` is a duplicate; the next one is validated and stored or
        rejected; one beyond it is out of order and refused without moving the cursor."""
        out = Applied([], [], 0)
        for seq, ms, raw in samples:
            if seq <= self.committed_through:
                out.duplicates += 1
                continue
            if seq != self.committed_through + 1:
                out.rejected.append((seq, f"out of order: expected sample {self.committed_through + 1}"))
                break  # the device resends from the expected one
            self.committed_through = seq
            try:
                values = validate_update(raw)
            except ValidationError as err:
                out.rejected.append((seq, "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in err.errors())))
                continue
            if not values:
                out.rejected.append((seq, "the sample carries no vital sign"))
                continue
            at = (ms / 1000) if ms else now
            out.rows.append((seq, int(at * 1000), values))
            self._observe(seq, at, values)
        return out

    def _observe(self, seq: int, at: float, values: dict) -> None:
        self.window.append([seq, int(at * 1000), values])
        del self.window[:-WINDOW_SAMPLES]
        self.latest = {k: list(v) for k, v in merge(
            {k: tuple(v) for k, v in self.latest.items()}, values, at, MAX_AGE_S).items()}
        current = {k: v[0] for k, v in self.latest.items()}
        if not complete(current):
            return
        result = score({**current, "spo2_scale": self.spo2_scale})
        last = self.scores[-1] if self.scores else None
        if last is None or last[1] != result.score or at - last[0] >= SCORE_EVERY_S:
            self.scores.append([at, result.score, result.risk])
            del self.scores[:-SCORE_HISTORY]
        if escalates(self.last_risk, result):
            self.open_alerts.append({
                "alert_id": str(uuid.uuid5(_ALERT_NAMESPACE, f"{self.session_id}/{seq}")),
                "score": result.score, "risk": result.risk, "raised_ms": int(at * 1000)})
        elif not result.alerting:
            self.open_alerts = []  # back to low risk: nothing is alerting any more
        self.last_risk = result.risk

    # ---- position -------------------------------------------------------------------------

    def report_position(self, latitude: float, longitude: float, speed_mps: float,
                        eta_s: int | None, now: float) -> str | None:
        """Take the vehicle's reported position; a value out of range leaves the last one
        (and its ETA) in place, and the reason is returned. The ETA is kept as the instant it
        points at, so it stays right however long ago it was reported."""
        problem = position_problem(latitude, longitude, speed_mps, eta_s)
        if problem:
            return problem
        self.position = {"latitude": latitude, "longitude": longitude, "speed_mps": speed_mps,
                         "expected_arrival_ms": None if eta_s is None else int((now + eta_s) * 1000)}
        return None

    @property
    def expected_arrival_ms(self) -> int | None:
        return (self.position or {}).get("expected_arrival_ms")

    # ---- what the status shows -------------------------------------------------------------

    @property
    def news2(self) -> tuple[int, str] | None:
        return (self.scores[-1][1], self.scores[-1][2]) if self.scores else None

    @property
    def trend(self) -> str:
        """rising / falling / steady: the score now against the one about TREND_SPAN_S ago
        (or the oldest kept); unknown before two scores."""
        if len(self.scores) < 2:
            return "unknown"
        now_t, now_score = self.scores[-1][0], self.scores[-1][1]
        before = next((s for s in reversed(self.scores[:-1]) if now_t - s[0] >= TREND_SPAN_S),
                      self.scores[0])
        diff = now_score - before[1]
        return "rising" if diff > 0 else "falling" if diff < 0 else "steady"

    @property
    def alerting_risk(self) -> int:
        return max((RISK_ORDER[a["risk"]] for a in self.open_alerts), default=0)

    # ---- wire form ---------------------------------------------------------------------------

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "SessionContext":
        fields = json.loads(data)
        if not isinstance(fields, dict) or set(fields) - {f.name for f in dataclasses.fields(cls)}:
            raise ContextError("not a session context")
        return cls(**fields)


def position_problem(latitude: float, longitude: float, speed_mps: float,
                     eta_s: int | None) -> str | None:
    """Why a reported position cannot be right, or None (pure)."""
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):  # NaN fails both
        return f"position ({latitude}, {longitude}) is off the globe"
    if not speed_mps >= 0 or math.isinf(speed_mps):
        return f"speed {speed_mps} m/s is not a speed"
    if eta_s is not None and not 0 <= eta_s <= MAX_ETA_S:
        return f"ETA {eta_s} s is out of range (0 to {MAX_ETA_S} s)"
    return None


def load_key(path: Path) -> bytes:
    """A 256-bit key from a file: 32 raw bytes, or their base64 (as a Secret stores text)."""
    data = Path(path).read_bytes()
    try:
        key = data if len(data) == 32 else base64.b64decode(data.strip(), validate=True)
    except ValueError:
        raise ValueError(f"{path}: the context key is neither 32 raw bytes nor base64") from None
    if len(key) != 32:
        raise ValueError(f"{path}: the context key must be 32 bytes (AES-256), got {len(key)}")
    return key


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aad(session_id: str, move_id: str, source: str, target: str) -> bytes:
    return json.dumps([session_id, move_id, source, target]).encode()


def seal(ctx: SessionContext, key: bytes, move_id: str, source: str, target: str
         ) -> tuple[bytes, bytes]:
    """(nonce, ciphertext with its tag) of the context for this move."""
    nonce = os.urandom(12)
    return nonce, AESGCM(key).encrypt(nonce, ctx.to_json(),
                                      _aad(ctx.session_id, move_id, source, target))


def unseal(key: bytes, session_id: str, move_id: str, source: str, target: str, nonce: bytes,
           ciphertext: bytes) -> SessionContext:
    try:
        plain = AESGCM(key).decrypt(nonce, ciphertext, _aad(session_id, move_id, source, target))
    except (InvalidTag, ValueError):
        raise ContextError("the context failed its integrity check (wrong key, or altered "
                           "in transit)") from None
    try:
        ctx = SessionContext.from_json(plain)
    except (ValueError, TypeError) as err:
        raise ContextError(f"not a session context: {err}") from None
    if ctx.session_id != session_id:
        raise ContextError("the context belongs to another session")
    return ctx
