"""When the mobility service tells the destination ward a new expected arrival (pure)."""
from medmec.workloads.mobilecare.mobility import ETA_TOLERANCE_S, eta_update_due, instant


def test_the_first_eta_is_told_and_none_is_nothing_to_tell():
    assert eta_update_due(None, 1_000.0)
    assert not eta_update_due(None, None)
    assert not eta_update_due(1_000.0, None)  # the ward keeps what it was told


def test_an_ambulance_on_schedule_causes_no_update_and_a_delay_does():
    told = 1_000.0
    assert not eta_update_due(told, told + 1)  # the ETA's rounding
    assert not eta_update_due(told, told - ETA_TOLERANCE_S + 1)
    assert eta_update_due(told, told + ETA_TOLERANCE_S)  # held up
    assert eta_update_due(told, told - 120)  # sooner than thought


def test_instants_are_utc_rfc3339():
    assert instant(0) == "1970-01-01T00:00:00+00:00"
    assert instant(None) is None
