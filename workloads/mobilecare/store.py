"""One edge site's session store (SQLite, WAL): the sessions it holds or held, and the
samples it committed.

`samples` is keyed by (session, seq): a sample is stored at the one site that held the
session when it arrived, once. A session's row keeps its state (active, moving, released,
closed), its context as JSON, the move it is in or came from, the site it moved to, and how
far its samples were forwarded to the destination ward. Writes of many device streams are
group-committed by one writer task; a batch is acknowledged only after its commit.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sessions (
        session_id TEXT PRIMARY KEY, state TEXT NOT NULL, context TEXT NOT NULL,
        move_id TEXT NOT NULL DEFAULT '', moved_to_name TEXT NOT NULL DEFAULT '',
        moved_to_target TEXT NOT NULL DEFAULT '', forward_to TEXT NOT NULL DEFAULT '',
        forwarded_through INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS samples (
        session_id TEXT NOT NULL, seq INTEGER NOT NULL, effective_ms INTEGER NOT NULL,
        vitals TEXT NOT NULL, committed_at REAL NOT NULL, PRIMARY KEY (session_id, seq))""",
]


@dataclasses.dataclass
class SessionRow:
    session_id: str
    state: str
    context: str
    move_id: str
    moved_to_name: str
    moved_to_target: str
    forwarded_through: int


class Store:
    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # WAL with synchronous=NORMAL survives a killed process (what a pod restart is)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        with self._lock:
            for stmt in _SCHEMA:
                self._db.execute(stmt)
        self._queue: asyncio.Queue | None = None

    def close(self) -> None:
        self._db.close()

    # ---- sessions (synchronous; called through asyncio.to_thread) -------------------------

    def sessions(self) -> list[SessionRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT session_id, state, context, move_id, moved_to_name, moved_to_target, "
                "forwarded_through FROM sessions").fetchall()
        return [SessionRow(*r) for r in rows]

    def put_session(self, session_id: str, state: str, context: bytes, move_id: str = "",
                    moved_to: tuple[str, str] = ("", ""), forward_to: str = "") -> None:
        """Insert or replace a session's row (opening it, importing it, changing its state);
        how far it was forwarded from this site is kept."""
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (session_id, state, context, move_id, moved_to_name, "
                "moved_to_target, forward_to, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET state = excluded.state, "
                "context = excluded.context, move_id = excluded.move_id, "
                "moved_to_name = excluded.moved_to_name, moved_to_target = excluded.moved_to_target, "
                "forward_to = excluded.forward_to, updated_at = excluded.updated_at",
                (session_id, state, context.decode(), move_id, *moved_to, forward_to, time.time()))

    def forwarded(self, session_id: str, through: int) -> None:
        with self._lock:
            self._db.execute("UPDATE sessions SET forwarded_through = ? WHERE session_id = ?",
                             (through, session_id))

    def unforwarded(self, limit: int = 500) -> list[tuple[SessionRow, list[tuple]]]:
        """Sessions with a destination and samples stored here not yet forwarded, and those
        samples."""
        out = []
        with self._lock:
            rows = [SessionRow(*r) for r in self._db.execute(
                "SELECT session_id, state, context, move_id, moved_to_name, moved_to_target, "
                "forwarded_through FROM sessions AS s WHERE forward_to != '' AND EXISTS ("
                "SELECT 1 FROM samples AS m WHERE m.session_id = s.session_id "
                "AND m.seq > s.forwarded_through)")]
            for row in rows:
                out.append((row, self._db.execute(
                    "SELECT seq, effective_ms, vitals FROM samples WHERE session_id = ? "
                    "AND seq > ? ORDER BY seq LIMIT ?",
                    (row.session_id, row.forwarded_through, limit)).fetchall()))
        return out

    def samples(self, session_id: str) -> list[tuple[int, int, dict]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, effective_ms, vitals FROM samples "
                                    "WHERE session_id = ? ORDER BY seq", (session_id,)).fetchall()
        return [(s, ms, json.loads(v)) for s, ms, v in rows]

    def _write(self, jobs: list[tuple[str, list, bytes]]) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for session_id, rows, context in jobs:
                    # a plain INSERT: the context's cursor already refused duplicates, so a
                    # second row for one seq is a bug, and the primary key says so loudly
                    self._db.executemany(
                        "INSERT INTO samples (session_id, seq, effective_ms, vitals, committed_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [(session_id, seq, ms, json.dumps(v), now) for seq, ms, v in rows])
                    self._db.execute("UPDATE sessions SET context = ?, updated_at = ? "
                                     "WHERE session_id = ?", (context.decode(), now, session_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ---- group commit ----------------------------------------------------------------------

    def commit(self, session_id: str, rows: list, context: bytes) -> asyncio.Future:
        """A future set once these samples and the context are committed (with whatever
        other streams submitted meanwhile)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((session_id, rows, context, future))
        return future

    async def run_writer(self) -> None:
        self._queue = asyncio.Queue()
        while True:
            jobs = [await self._queue.get()]
            while not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(self._write, [j[:3] for j in jobs])
            except Exception as err:
                for *_, future in jobs:
                    if not future.done():
                        future.set_exception(err)
                continue
            for *_, future in jobs:
                if not future.done():
                    future.set_result(None)
