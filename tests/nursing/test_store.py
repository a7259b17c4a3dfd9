"""The repository on both databases: the rules the database itself enforces."""
import json
import sqlite3
import time
import uuid

import psycopg
import pytest

from medmec.workloads.nursing.records import Administration, Encounter, Order
from medmec.workloads.nursing.store import Conflict, open_repository


@pytest.fixture(params=["sqlite", "postgresql"])
def repo(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/nursing.db"
    else:
        url = request.getfixturevalue("postgres").dsn
    r = open_repository(url)
    yield r
    r.close()


def _ward() -> str:
    return f"ward-{uuid.uuid4().hex[:8]}"  # the PostgreSQL server is shared by the session


def _admit(repo, wristband: str, ward: str | None = None) -> Encounter:
    ward = ward or _ward()
    pid = str(uuid.uuid4())
    enc = Encounter(id=str(uuid.uuid4()), patient_id=pid, ward=ward, wristband=wristband,
                    status="in-progress", spo2_scale=1, assigned_nurse=None, started_at=time.time())
    repo.admit(pid, json.dumps({"resourceType": "Patient", "id": pid}), enc)
    return enc


def _order(repo, enc: Encounter) -> Order:
    order = Order(id=str(uuid.uuid4()), patient_id=enc.patient_id, encounter_id=enc.id,
                  ward=enc.ward, drug_code="05012345678900", drug_name="Paracetamol",
                  dose_value=1000, dose_unit="mg", route_code="26643006", route_name="Oral",
                  start=time.time(), interval_s=6 * 3600, count=4, status="active",
                  ordered_by="dr-a")
    repo.add_order(order, json.dumps({"resourceType": "MedicationRequest"}))
    return order


def test_the_audit_log_is_append_only_in_the_database(repo):
    ward = _ward()
    repo.audit({"at": time.time(), "ward": ward, "actor": "nurse-a", "action": "administer",
                "outcome": "refused", "right_failed": "dose", "detail": "{}"})
    for statement in ("UPDATE audit_log SET outcome = 'given'", "DELETE FROM audit_log"):
        with pytest.raises((Conflict, sqlite3.DatabaseError, psycopg.Error), match="append-only"):
            repo._query(statement)
    [entry] = repo.audit_log(ward, 10)
    assert (entry["outcome"], entry["right_failed"]) == ("refused", "dose")


def test_one_admitted_patient_per_wristband_and_reuse_after_discharge(repo):
    band = f"WB-{uuid.uuid4().hex[:8]}"
    first = _admit(repo, band)
    with pytest.raises(Conflict):
        _admit(repo, band)
    assert repo.encounter_by_wristband(band) == first
    repo.discharge(first.id, time.time())
    assert not repo.encounter_by_wristband(band).admitted
    second = _admit(repo, band)
    assert repo.encounter_by_wristband(band) == second


def test_a_dose_slot_is_given_once_and_a_refused_write_leaves_nothing(repo):
    enc = _admit(repo, f"WB-{uuid.uuid4().hex[:8]}")
    order = _order(repo, enc)

    def dose():
        return Administration(id=str(uuid.uuid4()), order_id=order.id, patient_id=enc.patient_id,
                              encounter_id=enc.id, ward=enc.ward, slot=order.start,
                              given_at=time.time(), dose_value=1000, dose_unit="mg",
                              route_code="26643006", given_by="nurse-a")
    audit = {"at": time.time(), "ward": enc.ward, "actor": "nurse-a", "action": "administer",
             "outcome": "given", "order_id": order.id, "detail": "{}"}
    repo.give(dose(), audit)
    with pytest.raises(Conflict):
        repo.give(dose(), audit)
    assert len(repo.administrations(patient_id=enc.patient_id)) == 1
    assert len(repo.audit_log(enc.ward, 10)) == 1  # the failed give wrote no audit entry
    assert repo.given_slots(order.id) == {order.start}


def test_discharge_stops_active_orders(repo):
    enc = _admit(repo, f"WB-{uuid.uuid4().hex[:8]}")
    order = _order(repo, enc)
    repo.discharge(enc.id, time.time())
    assert repo.order(order.id).status == "stopped"
    assert repo.orders(ward=enc.ward) == []


def test_postgresql_connection_is_renewed_after_the_server_drops_it(postgres):
    repo = open_repository(postgres.dsn)
    try:
        [(backend,)] = repo._query("SELECT pg_backend_pid()")
        with psycopg.connect(postgres.dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        with pytest.raises(psycopg.OperationalError):
            repo.ping()  # this call fails with a clear error ...
        repo.ping()  # ... and the next one reconnects
        assert repo._query("SELECT pg_backend_pid()")[0][0] != backend
    finally:
        repo.close()


def test_observations_page_newest_first_within_a_time_range_and_a_ward(repo):
    enc = _admit(repo, f"WB-{uuid.uuid4().hex[:8]}")
    t0 = time.time() - 3600
    rows = [("nurse-a", f"r-{k}", enc.id, enc.patient_id, enc.ward if k != 4 else "ward-elsewhere",
             t0 + 60 * k, t0 + 60 * k, None, None, 1, None, None, 70 + k, None, None, None, None, None)
            for k in range(6)]
    repo.write_readings(rows, [])
    repo.write_readings(rows[:1], [])  # a resend is stored once

    def readings(**kw):
        total, page = repo.observations(enc.patient_id, kw.pop("limit", 10), **kw)
        return total, [r["reading_id"] for r in page]

    assert readings() == (6, ["r-5", "r-4", "r-3", "r-2", "r-1", "r-0"])
    assert readings(ward=enc.ward, limit=2, offset=1) == (5, ["r-3", "r-2"])
    assert readings(since=t0 + 60, before=t0 + 180) == (2, ["r-2", "r-1"])
    by_source = repo.observation(source="nurse-a", reading_id="r-3")
    assert by_source["pulse"] == 73 and repo.observation(row_id=by_source["id"]) == by_source
    assert repo.observation(source="nurse-a", reading_id="nope") is None


def test_a_planned_arrival_is_kept_updated_and_goes_on_arrival_or_discharge(repo):
    ward = _ward()
    later, sooner, here = _admit(repo, "WB-later", ward), _admit(repo, "WB-sooner", ward), \
        _admit(repo, "WB-here", ward)
    t = time.time()
    repo.plan_arrival(later.id, t + 900)
    repo.plan_arrival(sooner.id, t + 600)
    repo.plan_arrival(sooner.id, t + 300)  # a new ETA replaces the old one
    assert [(e.id, e.expected_arrival) for e in repo.incoming(ward)] == [
        (sooner.id, t + 300), (later.id, t + 900)]
    assert repo.encounter(here.id).expected_arrival is None
    repo.plan_arrival(sooner.id, None)  # arrived: an ordinary admitted patient
    assert repo.encounter(sooner.id).expected_arrival is None
    assert repo.encounter(sooner.id).admitted
    repo.discharge(later.id, time.time())  # discharged on the way: no longer expected
    assert repo.incoming(ward) == []
