"""The console's incoming-ambulances panel, from EmergencyTransport status (pure)."""
from medmec.workloads.console import view


NOW = 1_796_160_000.0  # 2026-12-01T21:20:00Z


def et(name, eta, following="True", arrived="False", **status):
    return {"metadata": {"namespace": "emergency", "name": name},
            "spec": {"vehicle": {"id": name, "callSign": f"Medic {name[-1]}"},
                     "session": {"pseudonym": f"sess-secret-{name}"},
                     "destination": {"nursingServiceRef": {"name": "bedside"}, "ward": "4a"}},
            "status": {"etaSeconds": eta, "servingBaseStation": "gnb-south", "edgeSite": "gnb-east",
                       "news2": {"score": 7, "risk": "high", "trend": "rising"}, "openAlerts": 2,
                       "conditions": [{"type": "Following", "status": following,
                                       "reason": "Moved" if following == "True" else "TargetUnavailable",
                                       "message": "why"},
                                      {"type": "Arrived", "status": arrived, "reason": "x"}],
                       **status}}


def test_incoming_ambulances_soonest_first_without_the_arrived_and_without_the_pseudonym():
    rows = view.incoming_ambulances([et("amb-1", 600), et("amb-2", 120, following="False"),
                                     et("amb-3", 30, arrived="True"), et("amb-4", None)], NOW)
    assert [r["vehicle"] for r in rows] == ["amb-2", "amb-1", "amb-4"]
    first = rows[0]
    assert (first["ward"], first["etaSeconds"], first["news2"], first["risk"], first["trend"]) == \
        ("4a", 120, 7, "high", "rising")
    assert first["servingBaseStation"] == "gnb-south" and first["edgeSite"] == "gnb-east"
    assert first["following"] == {"status": "False", "reason": "TargetUnavailable", "message": "why"}
    assert "sess-secret" not in repr(rows)


def test_an_ambulance_without_status_yet_is_listed_with_unknowns():
    bare = {"metadata": {"namespace": "emergency", "name": "amb-9"},
            "spec": {"vehicle": {"id": "amb-9"}, "session": {"pseudonym": "sess-12345678"}}}
    [row] = view.incoming_ambulances([bare], NOW)
    assert row["news2"] is None and row["etaSeconds"] is None and row["ward"] is None
    assert row["following"] == {"status": None, "reason": None, "message": None}


def test_the_eta_counts_down_from_the_expected_arrival_between_status_refreshes():
    # the status was refreshed when 600 s were left; the page is drawn 90 s later
    stale = et("amb-5", 600, expectedArrival="2026-12-01T21:28:30Z")
    [row] = view.incoming_ambulances([stale], NOW)
    assert row["etaSeconds"] == 510 and row["expectedArrival"] == "2026-12-01T21:28:30Z"
    [due] = view.incoming_ambulances([stale], NOW + 1000)
    assert due["etaSeconds"] == 0  # due: not a negative countdown
    # one expected sooner is listed first though its stale etaSeconds says otherwise
    sooner = et("amb-6", 900, expectedArrival="2026-12-01T21:21:00Z")
    assert [r["vehicle"] for r in view.incoming_ambulances([stale, sooner], NOW)] == ["amb-6", "amb-5"]
