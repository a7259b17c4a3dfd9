"""medmec.waiting.wait_for: the value once it holds; on a timeout, what the caller says of why."""
import pytest

from medmec.waiting import wait_for


def test_returns_the_first_truthy_value():
    calls = iter([None, 0, "ready"])
    assert wait_for(lambda: next(calls), 5, interval=0.01) == "ready"


def test_a_timeout_names_what_the_last_value_and_the_explanation():
    with pytest.raises(TimeoutError) as err:
        wait_for(lambda: [], 0.05, "the pod Ready", interval=0.01,
                 explain=lambda: "status: {'phase': 'Pending'}")
    assert str(err.value) == ("timed out after 0 s waiting for the pod Ready; last: []; "
                              "status: {'phase': 'Pending'}")
    with pytest.raises(TimeoutError, match=r"last: None$"):
        wait_for(lambda: None, 0.05, interval=0.01)
