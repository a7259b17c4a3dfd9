"""Which cluster on this host holds which slot (a /16 of the network range and the host
names derived from it), so two clusters never take the same addresses or names.

A slot is a small file under /run/medmec/slots naming the state folder of the cluster that
holds it. /run is emptied at boot, so a slot never outlives the machine's uptime; a slot
whose cluster is gone (killed run, folder removed) is cleaned and taken again.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

REGISTRY = Path(os.environ.get("MEDMEC_SLOT_REGISTRY", "/run/medmec/slots"))


class NoSlot(RuntimeError):
    pass


def _lock():
    REGISTRY.mkdir(parents=True, exist_ok=True)
    lock = open(REGISTRY / ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def owner(slot: int) -> Path | None:
    try:
        return Path(json.loads((REGISTRY / str(slot)).read_text())["folder"])
    except (OSError, ValueError, KeyError):
        return None


def sweep(slot: int) -> list[dict]:
    """The host changes recorded with `slot`, to undo when its cluster's ledger is gone."""
    try:
        return json.loads((REGISTRY / str(slot)).read_text()).get("sweep", [])
    except (OSError, ValueError):
        return []


def take(folder: Path, count: int, in_use: Callable[[Path], bool],
         clean: Callable[[Path, int], None], sweep_of: Callable[[int], list[dict]]) -> int:
    """The slot `folder` holds, or the first free one.

    `in_use(folder)` says whether another folder's cluster is alive; a slot held by a
    cluster that is not is freed first with `clean(its_folder, slot)`. `sweep_of(slot)` are
    the host changes named after the slot (ledger entries), kept with it so that even a
    cluster whose folder was removed can be cleaned.
    """
    with _lock():
        held = [s for s in range(count) if owner(s) == folder]
        if held:
            return held[0]
        # every slot of a cluster that died (a killed run) is cleaned now, not only the one
        # this cluster takes: its leftovers go whether or not another cluster needs the slot
        for slot in range(count):
            other = owner(slot)
            if other is not None and not in_use(other):
                clean(other, slot)
                (REGISTRY / str(slot)).unlink(missing_ok=True)
        for slot in range(count):
            if owner(slot) is None:
                (REGISTRY / str(slot)).write_text(json.dumps(
                    {"folder": str(folder), "sweep": sweep_of(slot)}))
                return slot
    raise NoSlot(f"all {count} slots of the network range are held by running clusters "
                 f"(see {REGISTRY}); stop one with `medmec cluster down`")


def held_by_others(folder: Path) -> bool:
    """Whether a cluster other than the one in `folder` holds a slot."""
    if not REGISTRY.exists():
        return False
    return any(owner(int(p.name)) not in (None, folder)
               for p in REGISTRY.iterdir() if p.name.isdigit())


def release(folder: Path) -> None:
    with _lock():
        for path in REGISTRY.iterdir():
            if path.name.isdigit() and owner(int(path.name)) == folder:
                path.unlink(missing_ok=True)
