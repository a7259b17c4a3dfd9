"""Durable fleet state: robots, tasks, blocked corridors and lifts out of service in SQLite
under the state folder.

Every change is committed before the service answers, so a restart (or a crash) loses
nothing a client was told was accepted. Plans are not stored: they are recomputed on start.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from pydantic import BaseModel


class Store:
    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(state_dir / "dispatch.db", isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS robots (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, doc TEXT NOT NULL,
                                              seq INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS blocked (a TEXT, b TEXT, PRIMARY KEY (a, b));
            CREATE TABLE IF NOT EXISTS lifts_down (id TEXT PRIMARY KEY);
        """)

    def load(self, table: str, model: type[BaseModel]) -> list:
        order = "seq" if table == "tasks" else "id"
        rows = self._db.execute(f"SELECT doc FROM {table} ORDER BY {order}")
        return [model.model_validate_json(doc) for (doc,) in rows]

    def save_robot(self, robot: BaseModel) -> None:
        self._db.execute("INSERT OR REPLACE INTO robots VALUES (?, ?)",
                         (robot.id, robot.model_dump_json()))

    def save_tasks(self, tasks: list[BaseModel]) -> None:
        """Save tasks in one transaction (a re-plan changes many at once)."""
        with self._db:
            self._db.execute("BEGIN")
            for task in tasks:
                self._db.execute(
                    "INSERT INTO tasks VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks))"
                    " ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                    (task.id, task.model_dump_json()))

    def blocked(self) -> set[tuple[str, str]]:
        return set(self._db.execute("SELECT a, b FROM blocked"))

    def set_blocked(self, a: str, b: str, blocked: bool) -> None:
        if blocked:
            self._db.execute("INSERT OR IGNORE INTO blocked VALUES (?, ?)", (a, b))
        else:
            self._db.execute("DELETE FROM blocked WHERE a = ? AND b = ?", (a, b))

    def lifts_down(self) -> set[str]:
        return {lift for (lift,) in self._db.execute("SELECT id FROM lifts_down")}

    def set_lift_down(self, lift: str, down: bool) -> None:
        if down:
            self._db.execute("INSERT OR IGNORE INTO lifts_down VALUES (?)", (lift,))
        else:
            self._db.execute("DELETE FROM lifts_down WHERE id = ?", (lift,))

    def close(self) -> None:
        self._db.close()
