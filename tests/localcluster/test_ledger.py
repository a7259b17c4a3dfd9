"""The ledger of host changes: recorded before they are made, undone newest first, and
undoing twice (a `down` after a killed run's cleanup) is harmless."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medmec.localcluster import ledger
from medmec.waiting import wait_for


def test_undo_removes_created_folders_mounts_and_marked_processes_newest_first(tmp_path):
    book = ledger.Ledger(tmp_path / "ledger.jsonl")
    work = tmp_path / "made" / "by" / "cluster"
    book.make_dir(work)
    assert [e["path"] for e in book.entries()] == [str(tmp_path / "made")]  # the top one
    book.record("mounts", path=str(tmp_path / "made"))
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(work)], check=True)
        assert ledger.mounts_under(str(tmp_path / "made")) == [str(work)]
    marker = str(tmp_path / "marker-")
    book.record("processes", marker=marker)
    survivor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    # until it has exec'd, the child's command line is still this process's
    wait_for(lambda: marker.encode() in Path(f"/proc/{survivor.pid}/cmdline").read_bytes(), 10,
             "the survivor started")

    done = ledger.undo(book.path)

    assert survivor.wait(10) == -9
    assert not (tmp_path / "made").exists()
    assert ledger.mounts_under(str(tmp_path / "made")) == []
    assert done[0].startswith("1 processes") and done[-1].startswith("folder")
    assert ledger.undo(book.path) == []  # nothing left to undo


def test_a_line_torn_by_a_kill_is_skipped_and_the_rest_undone(tmp_path):
    book = ledger.Ledger(tmp_path / "ledger.jsonl")
    book.make_dir(tmp_path / "a")
    with open(book.path, "a") as out:
        out.write('{"kind": "dir", "pa')  # killed mid-write
    assert len(book.entries()) == 1
    ledger.undo(book.path)
    assert not (tmp_path / "a").exists()


def test_host_sysctls_are_restored_by_the_last_cluster_only(tmp_path, monkeypatch):
    from medmec.localcluster import slots
    values = {"kernel.panic": "1"}
    monkeypatch.setattr(ledger, "read_sysctl", lambda k: values.get(k))
    monkeypatch.setattr(ledger, "write_sysctl", lambda k, v: values.__setitem__(k, v))
    monkeypatch.setattr(slots, "REGISTRY", tmp_path / "slots")
    shared = tmp_path / "host-sysctls.json"
    first, second = ledger.Ledger(tmp_path / "1.jsonl"), ledger.Ledger(tmp_path / "2.jsonl")
    noop = lambda folder, slot: None  # noqa: E731
    slots.take(tmp_path / "c1", 4, lambda f: True, noop, lambda n: [])
    first.keep_sysctls(["kernel.panic"], shared, str(tmp_path / "c1"))
    values["kernel.panic"] = "10"  # the first cluster's kubelet
    slots.take(tmp_path / "c2", 4, lambda f: True, noop, lambda n: [])
    second.keep_sysctls(["kernel.panic"], shared, str(tmp_path / "c2"))

    ledger.undo(first.path)  # the first goes down while the second runs
    slots.release(tmp_path / "c1")
    assert values["kernel.panic"] == "10"
    ledger.undo(second.path)
    slots.release(tmp_path / "c2")
    assert values["kernel.panic"] == "1" and not shared.exists()


@pytest.mark.parametrize("kind", sorted(ledger.UNDO))
def test_every_kind_of_change_can_be_undone_when_it_never_happened(tmp_path, kind, monkeypatch):
    from medmec.localcluster import slots
    monkeypatch.setattr(slots, "REGISTRY", tmp_path / "slots")
    entry = {"kind": kind, "name": "medmec-never", "dst": "10.255.255.0/24", "family": "inet",
             "path": str(tmp_path / "never"), "marker": str(tmp_path / "never-"),
             "file": str(tmp_path / "never.json"), "owner": str(tmp_path)}
    assert ledger.UNDO[kind](entry) is None


def test_a_dead_clusters_slot_is_cleaned_at_the_next_take_even_without_its_folder(
        tmp_path, monkeypatch):
    from medmec.localcluster import slots
    monkeypatch.setattr(slots, "REGISTRY", tmp_path / "slots")
    alive = {tmp_path / "a": True, tmp_path / "gone": False}
    cleaned = []
    for folder in alive:
        slots.take(folder, 4, lambda f: True, lambda f, s: None,
                   lambda n: [{"kind": "dir", "path": str(tmp_path / f"leftover-{n}")}])
    (tmp_path / "leftover-1").mkdir()
    slot = slots.take(tmp_path / "new", 4, lambda f: alive.get(f, False),
                      lambda f, s: cleaned.append((f, s)) or ledger.undo_entries(slots.sweep(s)),
                      lambda n: [])
    assert cleaned == [(tmp_path / "gone", 1)]
    assert slot == 1  # the freed one
    assert not (tmp_path / "leftover-1").exists()
    assert slots.owner(0) == tmp_path / "a"
