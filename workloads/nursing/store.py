"""Storage of the nursing service: one repository, on SQLite (default) or PostgreSQL.

Both dialects run the same SQL (written with `?` placeholders; PostgreSQL gets `%s`) and
differ only in column types, the connection and how a unique violation is reported.
Every acknowledged write is committed first: SQLite in WAL mode with synchronous=FULL,
PostgreSQL with its default synchronous commit. The audit log is append-only in the
database itself (triggers refuse UPDATE and DELETE).

The repository is synchronous and serialises its calls with a lock; the async service
calls it through `asyncio.to_thread`.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse

from .news2 import PARAMETERS, News2Result
from .records import Administration, Alert, Encounter, Order
from .worklist import LastScore


class Conflict(Exception):
    """A write broke a uniqueness rule (duplicate wristband, dose already given, ...)."""


class Dialect:
    name = ""
    real = ""
    serial_key = ""
    append_only = ""

    def schema(self) -> list[str]:
        t = {"REAL": self.real, "SERIAL_KEY": self.serial_key}
        return [stmt.format(**t) for stmt in _SCHEMA] + [self.append_only]


_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS patients (
        id TEXT PRIMARY KEY, resource TEXT NOT NULL, created_at {REAL} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS encounters (
        id TEXT PRIMARY KEY, patient_id TEXT NOT NULL REFERENCES patients(id),
        ward TEXT NOT NULL, wristband TEXT NOT NULL, status TEXT NOT NULL,
        spo2_scale INTEGER NOT NULL, assigned_nurse TEXT,
        started_at {REAL} NOT NULL, ended_at {REAL})""",
    # a wristband identifies one admitted patient; bands of past admissions may repeat
    """CREATE UNIQUE INDEX IF NOT EXISTS encounters_admitted_band
        ON encounters(wristband) WHERE status = 'in-progress'""",
    "CREATE INDEX IF NOT EXISTS encounters_band ON encounters(wristband)",
    "CREATE INDEX IF NOT EXISTS encounters_ward ON encounters(ward, status)",
    "CREATE INDEX IF NOT EXISTS encounters_patient ON encounters(patient_id)",
    # a patient on the way (pre-arrival admission): when they are expected; the row goes on
    # arrival (a table of its own: databases made before it need no migration)
    """CREATE TABLE IF NOT EXISTS planned_arrivals (
        encounter_id TEXT PRIMARY KEY REFERENCES encounters(id), expected_at {REAL} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS orders (
        id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL
        REFERENCES encounters(id), ward TEXT NOT NULL, drug_code TEXT NOT NULL,
        drug_name TEXT NOT NULL, dose_value {REAL} NOT NULL, dose_unit TEXT NOT NULL,
        route_code TEXT NOT NULL, route_name TEXT NOT NULL, start_at {REAL} NOT NULL,
        interval_s {REAL} NOT NULL, dose_count INTEGER, status TEXT NOT NULL,
        ordered_by TEXT NOT NULL, resource TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS orders_ward ON orders(ward, status)",
    "CREATE INDEX IF NOT EXISTS orders_patient ON orders(patient_id)",
    """CREATE TABLE IF NOT EXISTS administrations (
        id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders(id),
        patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, ward TEXT NOT NULL,
        slot {REAL} NOT NULL, given_at {REAL} NOT NULL, dose_value {REAL} NOT NULL,
        dose_unit TEXT NOT NULL, route_code TEXT NOT NULL, given_by TEXT NOT NULL,
        UNIQUE (order_id, slot))""",
    "CREATE INDEX IF NOT EXISTS administrations_patient ON administrations(patient_id)",
    "CREATE INDEX IF NOT EXISTS administrations_ward ON administrations(ward)",
    """CREATE TABLE IF NOT EXISTS observations (
        id {SERIAL_KEY}, source TEXT NOT NULL, reading_id TEXT NOT NULL,
        encounter_id TEXT NOT NULL, patient_id TEXT NOT NULL, ward TEXT NOT NULL,
        effective_at {REAL} NOT NULL, received_at {REAL} NOT NULL,
        respiration_rate INTEGER, spo2 INTEGER, spo2_scale INTEGER, on_oxygen INTEGER,
        systolic_bp INTEGER, pulse INTEGER, consciousness TEXT, temperature_c {REAL},
        score INTEGER, risk TEXT, parameters TEXT,
        UNIQUE (source, reading_id))""",
    "CREATE INDEX IF NOT EXISTS observations_encounter ON observations(encounter_id, effective_at)",
    "CREATE INDEX IF NOT EXISTS observations_patient ON observations(patient_id, effective_at)",
    """CREATE TABLE IF NOT EXISTS alerts (
        id TEXT PRIMARY KEY, ward TEXT NOT NULL, patient_id TEXT NOT NULL,
        encounter_id TEXT NOT NULL, score INTEGER NOT NULL, risk TEXT NOT NULL,
        parameters TEXT NOT NULL, effective_at {REAL} NOT NULL, raised_at {REAL} NOT NULL,
        acknowledged_by TEXT, acknowledged_at {REAL})""",
    "CREATE INDEX IF NOT EXISTS alerts_ward ON alerts(ward, acknowledged_at)",
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq {SERIAL_KEY}, at {REAL} NOT NULL, ward TEXT NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, outcome TEXT NOT NULL, right_failed TEXT, order_id TEXT,
        patient_id TEXT, detail TEXT NOT NULL)""",
]


class SQLiteDialect(Dialect):
    name = "sqlite"
    real = "REAL"
    serial_key = "INTEGER PRIMARY KEY AUTOINCREMENT"
    append_only = """
        CREATE TRIGGER IF NOT EXISTS audit_log_append_only_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TRIGGER IF NOT EXISTS audit_log_append_only_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"""


class PostgresDialect(Dialect):
    name = "postgresql"
    real = "DOUBLE PRECISION"
    serial_key = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    append_only = """
        CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
        CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();"""


# One stored vitals reading, in this column order (the benchmark's plain insert loop
# writes the very same rows with the very same statement).
OBSERVATION_COLUMNS = ("source", "reading_id", "encounter_id", "patient_id", "ward",
                       "effective_at", "received_at", "respiration_rate", "spo2",
                       "spo2_scale", "on_oxygen", "systolic_bp", "pulse", "consciousness",
                       "temperature_c", "score", "risk", "parameters")
INSERT_OBSERVATION = (
    f"INSERT INTO observations ({', '.join(OBSERVATION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in OBSERVATION_COLUMNS)}) "
    "ON CONFLICT (source, reading_id) DO NOTHING")
_STORED_OBSERVATION = ("id",) + OBSERVATION_COLUMNS
_ALERT_COLUMNS = ("id", "ward", "patient_id", "encounter_id", "score", "risk", "parameters",
                  "effective_at", "raised_at", "acknowledged_by", "acknowledged_at")
_ENCOUNTER_COLUMNS = ("id", "patient_id", "ward", "wristband", "status", "spo2_scale",
                      "assigned_nurse", "started_at", "ended_at")
_ORDER_COLUMNS = ("id", "patient_id", "encounter_id", "ward", "drug_code", "drug_name",
                  "dose_value", "dose_unit", "route_code", "route_name", "start_at",
                  "interval_s", "dose_count", "status", "ordered_by")
_ADMIN_COLUMNS = ("id", "order_id", "patient_id", "encounter_id", "ward", "slot", "given_at",
                  "dose_value", "dose_unit", "route_code", "given_by")
_AUDIT_COLUMNS = ("seq", "at", "ward", "actor", "action", "outcome", "right_failed",
                  "order_id", "patient_id", "detail")


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(columns)


def _marks(columns: Sequence[str]) -> str:
    return ", ".join("?" for _ in columns)


def _alert(row: Sequence) -> Alert:
    d = dict(zip(_ALERT_COLUMNS, row))
    d["parameters"] = json.loads(d["parameters"])
    return Alert(**d)


def _order(row: Sequence) -> Order:
    d = dict(zip(_ORDER_COLUMNS, row))
    return Order(id=d["id"], patient_id=d["patient_id"], encounter_id=d["encounter_id"],
                 ward=d["ward"], drug_code=d["drug_code"], drug_name=d["drug_name"],
                 dose_value=d["dose_value"], dose_unit=d["dose_unit"],
                 route_code=d["route_code"], route_name=d["route_name"], start=d["start_at"],
                 interval_s=d["interval_s"], count=d["dose_count"], status=d["status"],
                 ordered_by=d["ordered_by"])


class Repository:
    """The nursing records of one database; construct with `open_repository(url)`."""

    def __init__(self, connect: Callable[[], object], dialect: Dialect):
        self._connect = connect
        self._conn = connect()
        self.dialect = dialect
        self._lock = threading.Lock()
        with self._tx() as cur:
            for stmt in dialect.schema():
                self._script(cur, stmt)

    # -- dialect plumbing --------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect.name == "postgresql" else sql

    def _script(self, cur, stmt: str) -> None:
        if self.dialect.name == "sqlite":
            for part in _sqlite_statements(stmt):
                cur.execute(part)
        else:
            cur.execute(stmt)

    @contextlib.contextmanager
    def _tx(self) -> Iterator:
        """One transaction, committed on success; unique violations become Conflict."""
        with self._lock:
            if self.dialect.name == "sqlite":
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield _Cursor(cur, self._sql)
                    cur.execute("COMMIT")
                except sqlite3.IntegrityError as err:
                    cur.execute("ROLLBACK")
                    raise Conflict(str(err)) from err
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            else:
                import psycopg
                if self._conn.broken or self._conn.closed:
                    # the server restarted or dropped us: the failed call was answered with
                    # an error, this one gets a fresh connection
                    self._conn = self._connect()
                try:
                    with self._conn.transaction(), self._conn.cursor() as cur:
                        yield _Cursor(cur, self._sql)
                except psycopg.errors.UniqueViolation as err:
                    raise Conflict(str(err).splitlines()[0]) from err

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._tx() as cur:
            return cur.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ping(self) -> None:
        self._query("SELECT 1")

    # -- patients and admissions -------------------------------------------------------
    def admit(self, patient_id: str, patient_resource: str | None, encounter: Encounter) -> None:
        """Store a new patient (when `patient_resource` is given) and open their admission."""
        with self._tx() as cur:
            if patient_resource is not None:
                cur.execute("INSERT INTO patients (id, resource, created_at) VALUES (?, ?, ?)",
                            (patient_id, patient_resource, encounter.started_at))
            if cur.execute("SELECT 1 FROM encounters WHERE patient_id = ? AND status = 'in-progress'",
                           (patient_id,)).fetchone():
                raise Conflict("the patient is already admitted")
            cur.execute(f"INSERT INTO encounters ({_cols(_ENCOUNTER_COLUMNS)}) "
                        f"VALUES ({_marks(_ENCOUNTER_COLUMNS)})",
                        tuple(getattr(encounter, c) for c in _ENCOUNTER_COLUMNS))

    def patient_resource(self, patient_id: str) -> str | None:
        rows = self._query("SELECT resource FROM patients WHERE id = ?", (patient_id,))
        return rows[0][0] if rows else None

    def _encounters(self, where: str, params: Sequence, order: str = "started_at DESC"
                    ) -> list[Encounter]:
        rows = self._query(f"SELECT {_cols(_ENCOUNTER_COLUMNS)}, expected_at FROM encounters "
                           "LEFT JOIN planned_arrivals ON encounter_id = id "
                           f"WHERE {where} ORDER BY {order}", params)
        return [Encounter(**dict(zip(_ENCOUNTER_COLUMNS, r)), expected_arrival=r[-1]) for r in rows]

    def encounter(self, encounter_id: str) -> Encounter | None:
        found = self._encounters("id = ?", (encounter_id,))
        return found[0] if found else None

    def encounter_by_wristband(self, wristband: str) -> Encounter | None:
        """The admission a band was printed for: the current one, else the latest past one."""
        found = self._encounters("wristband = ?", (wristband,))
        admitted = [e for e in found if e.admitted]
        return (admitted or found or [None])[0]

    def latest_encounter(self, patient_id: str) -> Encounter | None:
        found = self._encounters("patient_id = ?", (patient_id,))
        admitted = [e for e in found if e.admitted]
        return (admitted or found or [None])[0]

    def encounters_of(self, patient_id: str) -> list[Encounter]:
        """Every admission of a patient, newest first."""
        return self._encounters("patient_id = ?", (patient_id,))

    def admitted(self, ward: str) -> list[Encounter]:
        return self._encounters("ward = ? AND status = 'in-progress'", (ward,))

    def incoming(self, ward: str) -> list[Encounter]:
        """The ward's admitted patients still on the way, soonest expected first."""
        return self._encounters("ward = ? AND status = 'in-progress' AND expected_at IS NOT NULL",
                                (ward,), order="expected_at, started_at")

    def plan_arrival(self, encounter_id: str, at: float | None) -> None:
        """Set when an admitted patient is expected; None: they have arrived."""
        with self._tx() as cur:
            if at is None:
                cur.execute("DELETE FROM planned_arrivals WHERE encounter_id = ?", (encounter_id,))
            else:
                cur.execute("INSERT INTO planned_arrivals (encounter_id, expected_at) VALUES (?, ?) "
                            "ON CONFLICT (encounter_id) DO UPDATE SET expected_at = excluded.expected_at",
                            (encounter_id, at))

    def discharge(self, encounter_id: str, at: float) -> None:
        with self._tx() as cur:
            # discharged on the way (diverted elsewhere): no longer expected
            cur.execute("DELETE FROM planned_arrivals WHERE encounter_id = ?", (encounter_id,))
            cur.execute("UPDATE encounters SET status = 'finished', ended_at = ? "
                        "WHERE id = ? AND status = 'in-progress'", (at, encounter_id))
            cur.execute("UPDATE orders SET status = 'stopped' WHERE encounter_id = ? "
                        "AND status = 'active'", (encounter_id,))

    # -- medication ----------------------------------------------------------------------
    def add_order(self, order: Order, resource: str) -> None:
        values = (order.id, order.patient_id, order.encounter_id, order.ward, order.drug_code,
                  order.drug_name, order.dose_value, order.dose_unit, order.route_code,
                  order.route_name, order.start, order.interval_s, order.count, order.status,
                  order.ordered_by)
        with self._tx() as cur:
            cur.execute(f"INSERT INTO orders ({_cols(_ORDER_COLUMNS)}, resource) "
                        f"VALUES ({_marks(_ORDER_COLUMNS)}, ?)", values + (resource,))

    def order(self, order_id: str) -> Order | None:
        rows = self._query(f"SELECT {_cols(_ORDER_COLUMNS)} FROM orders WHERE id = ?", (order_id,))
        return _order(rows[0]) if rows else None

    def orders(self, *, ward: str | None = None, patient_id: str | None = None) -> list[Order]:
        where, params = ("ward = ? AND status = 'active'", (ward,)) if ward else \
            ("patient_id = ?", (patient_id,))
        rows = self._query(f"SELECT {_cols(_ORDER_COLUMNS)} FROM orders WHERE {where} "
                           "ORDER BY start_at", params)
        return [_order(r) for r in rows]

    def order_resource(self, order_id: str) -> str | None:
        rows = self._query("SELECT resource FROM orders WHERE id = ?", (order_id,))
        return rows[0][0] if rows else None

    def _audit(self, cur, entry: dict) -> None:
        cols = [c for c in _AUDIT_COLUMNS if c != "seq"]
        cur.execute(f"INSERT INTO audit_log ({_cols(cols)}) VALUES ({_marks(cols)})",
                    tuple(entry.get(c) for c in cols))

    def give(self, adm: Administration, audit: dict) -> None:
        """Record a dose and its audit entry together; Conflict if the slot was given."""
        with self._tx() as cur:
            cur.execute(f"INSERT INTO administrations ({_cols(_ADMIN_COLUMNS)}) "
                        f"VALUES ({_marks(_ADMIN_COLUMNS)})",
                        tuple(getattr(adm, c) for c in _ADMIN_COLUMNS))
            self._audit(cur, audit)

    def audit(self, entry: dict) -> None:
        with self._tx() as cur:
            self._audit(cur, entry)

    def audit_log(self, ward: str | None, limit: int) -> list[dict]:
        where, params = ("WHERE ward = ?", (ward,)) if ward else ("", ())
        rows = self._query(f"SELECT {_cols(_AUDIT_COLUMNS)} FROM audit_log {where} "
                           f"ORDER BY seq DESC LIMIT {int(limit)}", params)
        return [dict(zip(_AUDIT_COLUMNS, r)) for r in rows]

    def administrations(self, *, ward: str | None = None,
                        patient_id: str | None = None) -> list[Administration]:
        where, params = ("ward = ?", (ward,)) if ward else ("patient_id = ?", (patient_id,))
        rows = self._query(f"SELECT {_cols(_ADMIN_COLUMNS)} FROM administrations "
                           f"WHERE {where} ORDER BY given_at", params)
        return [Administration(**dict(zip(_ADMIN_COLUMNS, r))) for r in rows]

    def administration(self, administration_id: str) -> Administration | None:
        rows = self._query(f"SELECT {_cols(_ADMIN_COLUMNS)} FROM administrations WHERE id = ?",
                           (administration_id,))
        return Administration(**dict(zip(_ADMIN_COLUMNS, rows[0]))) if rows else None

    def given_slots(self, order_id: str) -> set[float]:
        rows = self._query("SELECT slot FROM administrations WHERE order_id = ?", (order_id,))
        return {r[0] for r in rows}

    # -- vitals and alerts ---------------------------------------------------------------
    def write_readings(self, rows: Sequence[tuple], alerts: Sequence[Alert]) -> None:
        """Readings (OBSERVATION_COLUMNS tuples) and the alerts they raised, in one commit."""
        with self._tx() as cur:
            if rows:
                cur.executemany(INSERT_OBSERVATION, rows)
            if alerts:
                cur.executemany(
                    f"INSERT INTO alerts ({_cols(_ALERT_COLUMNS)}) VALUES ({_marks(_ALERT_COLUMNS)}) "
                    "ON CONFLICT (id) DO NOTHING",
                    [(a.id, a.ward, a.patient_id, a.encounter_id, a.score, a.risk,
                      json.dumps(a.parameters), a.effective_at, a.raised_at, None, None)
                     for a in alerts])

    def observations(self, patient_id: str, limit: int, *, offset: int = 0,
                     ward: str | None = None, since: float | None = None,
                     before: float | None = None) -> tuple[int, list[dict]]:
        """(how many match, the page of them from `offset`), newest first, each row with its
        `id`; `ward` limits them to one ward's, [since, before) to a time range."""
        where, params = ["patient_id = ?"], [patient_id]
        for condition, value in (("ward = ?", ward), ("effective_at >= ?", since),
                                 ("effective_at < ?", before)):
            if value is not None:
                where.append(condition)
                params.append(value)
        sql_where = " AND ".join(where)
        total = self._query(f"SELECT COUNT(*) FROM observations WHERE {sql_where}", params)[0][0]
        rows = self._query(f"SELECT {_cols(_STORED_OBSERVATION)} FROM observations "
                           f"WHERE {sql_where} ORDER BY effective_at DESC, id DESC "
                           f"LIMIT {int(limit)} OFFSET {int(offset)}", params)
        return total, [dict(zip(_STORED_OBSERVATION, r)) for r in rows]

    def observation(self, *, row_id: int | None = None, source: str | None = None,
                    reading_id: str | None = None) -> dict | None:
        """One stored reading with its `id`: by that id, or by its source and reading id."""
        where, params = ("id = ?", (row_id,)) if row_id is not None else \
            ("source = ? AND reading_id = ?", (source, reading_id))
        rows = self._query(f"SELECT {_cols(_STORED_OBSERVATION)} FROM observations WHERE {where}",
                           params)
        return dict(zip(_STORED_OBSERVATION, rows[0])) if rows else None

    def latest_values(self, encounter_id: str, since: float) -> dict[str, tuple[object, float]]:
        """Each parameter's newest value (and when it was measured) since `since`."""
        latest: dict[str, tuple[object, float]] = {}
        with self._tx() as cur:
            for name in PARAMETERS + ("spo2_scale",):
                row = cur.execute(
                    f"SELECT {name}, effective_at FROM observations WHERE encounter_id = ? "
                    f"AND effective_at >= ? AND {name} IS NOT NULL "
                    "ORDER BY effective_at DESC LIMIT 1", (encounter_id, since)).fetchone()
                if row:
                    value = bool(row[0]) if name == "on_oxygen" else row[0]
                    latest[name] = (value, row[1])
        return latest

    def last_scores(self, encounter_ids: Sequence[str]) -> dict[str, LastScore]:
        found: dict[str, LastScore] = {}
        with self._tx() as cur:
            for enc in encounter_ids:
                row = cur.execute(
                    "SELECT score, risk, parameters, effective_at FROM observations "
                    "WHERE encounter_id = ? AND score IS NOT NULL "
                    "ORDER BY effective_at DESC, id DESC LIMIT 1", (enc,)).fetchone()
                if row:
                    found[enc] = LastScore(News2Result(row[0], row[1], json.loads(row[2])), row[3])
        return found

    def alerts(self, ward: str, open_only: bool) -> list[Alert]:
        where = " AND acknowledged_at IS NULL" if open_only else ""
        rows = self._query(f"SELECT {_cols(_ALERT_COLUMNS)} FROM alerts WHERE ward = ?{where} "
                           "ORDER BY raised_at DESC LIMIT 1000", (ward,))
        return [_alert(r) for r in rows]

    def acknowledge(self, alert_id: str, ward: str, by: str, at: float) -> Alert | None:
        with self._tx() as cur:
            cur.execute("UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? "
                        "WHERE id = ? AND ward = ? AND acknowledged_at IS NULL",
                        (by, at, alert_id, ward))
            row = cur.execute(f"SELECT {_cols(_ALERT_COLUMNS)} FROM alerts WHERE id = ? AND ward = ?",
                              (alert_id, ward)).fetchone()
        return _alert(row) if row else None


class _Cursor:
    """A cursor that rewrites `?` placeholders for the dialect."""

    def __init__(self, cur, sql):
        self._cur, self._sqlfix = cur, sql

    def execute(self, sql: str, params: Sequence = ()):
        self._cur.execute(self._sqlfix(sql), params)
        return self._cur

    def executemany(self, sql: str, rows: Sequence[Sequence]):
        self._cur.executemany(self._sqlfix(sql), rows)
        return self._cur


def _sqlite_statements(script: str) -> list[str]:
    # the trigger script holds several statements; sqlite3.complete_statement finds their ends
    parts, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            parts.append(current.strip())
            current = ""
    if current.strip():
        parts.append(current.strip())
    return parts


def open_repository(url: str) -> Repository:
    """`sqlite:////abs/path.db`, `sqlite:///rel/path.db` or a `postgresql://` DSN."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
        if path is None or not str(path):
            raise ValueError(f"not a SQLite URL (sqlite:////abs/path.db): {url}")
        path.parent.mkdir(parents=True, exist_ok=True)

        def connect_sqlite():
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            return conn
        return Repository(connect_sqlite, SQLiteDialect())
    if parsed.scheme in ("postgresql", "postgres"):
        import psycopg
        return Repository(lambda: psycopg.connect(url, autocommit=True, connect_timeout=10),
                          PostgresDialect())
    raise ValueError(f"unsupported database URL scheme {parsed.scheme!r}: "
                     "use sqlite:///PATH or postgresql://...")
