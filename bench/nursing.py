"""Benchmark: sustained wearable ingestion with NEWS2 scoring and alerting, SQLite and
PostgreSQL, against a plain insert loop of the same rows into the same database.

For each database: start the real nursing service, admit patients, give each a nurse's
partial set (blood pressure, consciousness, temperature) so that every wearable reading
completes a NEWS2 set and is scored; then wearable gateways stream readings over gRPC for
a fixed time, some patients deteriorating and recovering in cycles so that alerts are
raised, while a nurse's handheld watches the ward's alert stream. Measured: acknowledged
readings per second, and alert latency (measurement time on the device to the alert
arriving at the nurse). The ceiling: the rows the service stored, inserted again by a
plain loop (same statement, same batch size, one commit per batch, same durability
settings) into the same database. Ratio = service rate / ceiling rate.
"""
from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc
import httpx

from medmec.workloads.nursing.local_service import LocalNursingService
from medmec.workloads.nursing.pg_server import LocalPostgres
from medmec.workloads.nursing.protos import nursing_pb2, nursing_pb2_grpc
from medmec.workloads.nursing.store import INSERT_OBSERVATION, OBSERVATION_COLUMNS

DURATION_S = float(os.environ.get("NURSING_BENCH_SECONDS", 15))
PATIENTS = 200
GATEWAYS = 2  # concurrent gRPC streams
BATCH = 200  # readings per message, and per commit of the plain loop
IN_FLIGHT = 2  # unacknowledged messages per stream
ALERT_BUDGET_MS = 500  # remote monitoring, white paper table 5-1 (end-to-end)
PRINCIPALS = {
    "gw-bench": {"token": "bench-device-token-0001", "role": "device", "ward": "ward-a"},
    "dr-bench": {"token": "bench-doctor-token-0001", "role": "doctor", "ward": "ward-a"},
    "nurse-bench": {"token": "bench-nurse-token-00001", "role": "nurse", "ward": "ward-a"},
}
CALM = dict(respiration_rate=16, spo2=97, on_oxygen=False, pulse=72)
MEDIUM = dict(respiration_rate=23, spo2=93, on_oxygen=False, pulse=115)  # NEWS2 6
HIGH = dict(respiration_rate=25, spo2=91, on_oxygen=False, pulse=115)  # NEWS2 8


def _auth(subject: str) -> dict:
    return {"Authorization": f"Bearer {PRINCIPALS[subject]['token']}"}


def _metadata(subject: str) -> list:
    return [("authorization", f"Bearer {PRINCIPALS[subject]['token']}")]


def _admit(url: str) -> list[str]:
    patients = []
    with httpx.Client(base_url=url, timeout=30, headers=_auth("dr-bench")) as http:
        for i in range(PATIENTS):
            r = http.post("/wards/ward-a/admissions", json={"patient": {
                "resourceType": "Patient", "identifier": [{
                    "system": "https://medmec.io/fhir/sid/wristband", "value": f"B-{uuid.uuid4().hex}"}]}})
            r.raise_for_status()
            pid = r.json()["patient"]["id"]
            r = http.post("/fhir/Observation", json={
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85353-1"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "component": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                     "valueQuantity": {"value": 120, "unit": "mm[Hg]", "code": "mm[Hg]",
                                       "system": "http://unitsofmeasure.org"}},
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
                     "valueQuantity": {"value": 37.0, "unit": "Cel", "code": "Cel",
                                       "system": "http://unitsofmeasure.org"}},
                    {"code": {"coding": [{"system": "https://medmec.io/fhir/CodeSystem/news2",
                                          "code": "consciousness"}]},
                     "valueCodeableConcept": {"coding": [{"code": "A"}]}}]})
            r.raise_for_status()
            patients.append(pid)
    return patients


def _gateway(target: str, gw: int, patients: list[str], deadline: float, out: dict) -> None:
    """Stream readings until the deadline; one patient in ten cycles calm, medium, high.
    Like a device with a bounded buffer, at most IN_FLIGHT batches await their ack."""
    sent = acked = 0
    window = threading.Semaphore(IN_FLIGHT)

    def batches():
        nonlocal sent
        n = 0
        while True:
            window.acquire()
            if time.time() >= deadline:
                return
            now_ms = int(time.time() * 1000)
            readings = []
            for _ in range(BATCH):
                pid = patients[n % len(patients)]
                phase = (n // len(patients)) % 30
                values = CALM
                if n % len(patients) % 10 == 0:
                    values = MEDIUM if 10 <= phase < 15 else HIGH if 15 <= phase < 20 else CALM
                readings.append(nursing_pb2.VitalReading(
                    reading_id=f"g{gw}-{n}", patient_id=pid, effective_time_ms=now_ms, **values))
                n += 1
            sent += len(readings)
            yield nursing_pb2.VitalBatch(readings=readings)

    with grpc.insecure_channel(target) as channel:
        stub = nursing_pb2_grpc.CloudNursingStub(channel)
        for ack in stub.StreamVitals(batches(), metadata=_metadata("gw-bench")):
            acked = ack.handled
            window.release()
            if ack.rejected:
                raise RuntimeError(f"readings rejected: {ack.rejected[0].reason}")
    out[gw] = (sent, acked)


def _watch(target: str, latencies: list[float], ready: threading.Event, stop: threading.Event):
    with grpc.insecure_channel(target) as channel:
        call = nursing_pb2_grpc.CloudNursingStub(channel).WatchAlerts(
            nursing_pb2.WatchAlertsRequest(ward="ward-a"), metadata=_metadata("nurse-bench"))
        call.initial_metadata()
        ready.set()
        threading.Thread(target=lambda: (stop.wait(), call.cancel()), daemon=True).start()
        try:
            for alert in call:
                latencies.append(time.time() * 1000 - alert.effective_time_ms)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise


def _service_run(svc: LocalNursingService) -> dict:
    patients = _admit(svc.url)
    latencies: list[float] = []
    ready, stop = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_watch, args=(svc.target, latencies, ready, stop))
    watcher.start()
    ready.wait(30)
    results: dict = {}
    start = time.time()
    threads = [threading.Thread(target=_gateway, args=(svc.target, g, patients[g::GATEWAYS],
                                                       start + DURATION_S, results))
               for g in range(GATEWAYS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - start
    time.sleep(0.5)  # alerts of the last batch
    stop.set()
    watcher.join()
    acked = sum(a for _, a in results.values())
    if len(results) != GATEWAYS or acked != sum(s for s, _ in results.values()):
        raise RuntimeError(f"not every reading was acknowledged: {results}")
    latencies.sort()
    return {"readings": acked, "rate": acked / elapsed, "alerts": len(latencies),
            "p50": latencies[len(latencies) // 2] if latencies else float("nan"),
            "p99": latencies[int(len(latencies) * 0.99)] if latencies else float("nan")}


class _Plain:
    """A plain DB-API connection: the ceiling's insert loop."""

    def __init__(self, database: str):
        if database.startswith("sqlite:///"):
            self.conn = sqlite3.connect(database[len("sqlite:///"):], isolation_level=None)
            self.conn.execute("PRAGMA synchronous = FULL")  # as the service (WAL is persistent)
            self.sql = INSERT_OBSERVATION
        else:
            import psycopg
            self.conn = psycopg.connect(database, autocommit=True)
            self.sql = INSERT_OBSERVATION.replace("?", "%s")
        self.sqlite = isinstance(self.conn, sqlite3.Connection)

    def rows(self, source: str) -> list[tuple]:
        cols = ", ".join(OBSERVATION_COLUMNS)
        mark = "?" if self.sqlite else "%s"
        return [tuple(r) for r in self.conn.execute(
            f"SELECT {cols} FROM observations WHERE source = {mark} ORDER BY id", (source,)).fetchall()]

    def insert_loop(self, rows: list[tuple]) -> float:
        start = time.time()
        for i in range(0, len(rows), BATCH):
            batch = rows[i:i + BATCH]
            if self.sqlite:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(self.sql, batch)
                self.conn.execute("COMMIT")
            else:
                with self.conn.transaction(), self.conn.cursor() as cur:
                    cur.executemany(self.sql, batch)
        return len(rows) / (time.time() - start)


def run(name: str, database: str, workdir: Path) -> dict:
    svc = LocalNursingService(workdir, database, PRINCIPALS, ["ward-a"]).start()
    try:
        result = _service_run(svc)
    finally:
        svc.stop()
    plain = _Plain(database)
    rows = [("ceiling",) + r[1:] for r in plain.rows("gw-bench")]
    result["ceiling"] = plain.insert_loop(rows)
    plain.conn.close()
    return {"database": name, **result}


def main() -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="medmec-nursing-bench-") as tmp:
        sqlite_dir = Path(tmp, "sqlite")
        sqlite_dir.mkdir()
        results.append(run("SQLite", f"sqlite:///{sqlite_dir}/nursing.db", sqlite_dir))
        with LocalPostgres() as pg:
            pg_dir = Path(tmp, "postgresql")
            pg_dir.mkdir()
            results.append(run("PostgreSQL", pg.dsn, pg_dir))
    print(f"\nnursing: wearable ingestion with NEWS2 scoring and alerting, {DURATION_S:.0f} s per "
          f"database, {GATEWAYS} gRPC streams x {BATCH} readings/message, {PATIENTS} patients, "
          f"{os.cpu_count()} CPUs")
    print(f"{'database':<11} {'readings':>9} {'service/s':>10} {'plain loop/s':>13} "
          f"{'ratio':>6} {'alerts':>7} {'p50 ms':>7} {'p99 ms':>7}  alert p99 < {ALERT_BUDGET_MS} ms")
    for r in results:
        print(f"{r['database']:<11} {r['readings']:>9} {r['rate']:>10.0f} {r['ceiling']:>13.0f} "
              f"{r['rate'] / r['ceiling']:>6.2f} {r['alerts']:>7} {r['p50']:>7.1f} {r['p99']:>7.1f}  "
              f"{'yes' if r['p99'] < ALERT_BUDGET_MS else 'NO'}")
    print("ratio = service / plain loop (aim >= 0.5); the plain loop commits each message's "
          f"{BATCH} rows alone, the service may commit several streams' messages together")
    return 0


if __name__ == "__main__":
    sys.exit(main())
