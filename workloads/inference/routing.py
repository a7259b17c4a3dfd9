"""Pure decisions of the inference server: input checks, canary split, escalation."""
from __future__ import annotations

import numpy as np


def check_values(name: str, batch: np.ndarray) -> str | None:
    """The problem with an input's values, or None. (Triton has checked shape and dtype.)"""
    if not np.isfinite(batch).all():
        bad = np.argwhere(~np.isfinite(batch.reshape(len(batch), -1)))
        row, col = (int(i) for i in bad[0])
        return (f"input '{name}' must hold finite numbers: {len(bad)} value(s) are NaN or "
                f"infinite (first at row {row}, element {col})")
    return None


def use_canary(percent: float, draw: float) -> bool:
    """Whether a request goes to the canary; `draw` is uniform in [0, 1)."""
    return draw * 100.0 < percent


def confidence(probabilities: np.ndarray) -> np.ndarray:
    """Per case: the probability of the most probable class."""
    return probabilities.max(axis=1)


def to_escalate(conf: np.ndarray, threshold: float | None) -> np.ndarray:
    """Mask of the cases whose confidence is under the threshold (none without one)."""
    if threshold is None:
        return np.zeros(len(conf), dtype=bool)
    return conf < threshold


def reason_kept(conf: float, threshold: float | None) -> str:
    if threshold is None:
        return "answered at the edge (no escalation configured)"
    return f"confidence {conf:.3f} >= threshold {threshold:g}: answered at the edge"


def reason_escalated(conf: float, threshold: float, decided_by: str) -> str:
    return f"confidence {conf:.3f} < threshold {threshold:g}: escalated to {decided_by}"


def reason_escalation_failed(conf: float, threshold: float, error: str) -> str:
    return (f"confidence {conf:.3f} < threshold {threshold:g}, but escalation failed "
            f"({error}): answered at the edge")
