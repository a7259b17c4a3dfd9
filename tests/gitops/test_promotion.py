"""Promotion and rollback edits of a model patch (pure functions)."""
from __future__ import annotations

import pytest

from medmec.workloads.gitops import promotion
from medmec.workloads.gitops.promotion import PREVIOUS_ANNOTATION, PromotionError

SHA1, SHA2, SHA3 = "1" * 64, "2" * 64, "3" * 64
HEADER = "# model version of breast-cancer-screening\n"


def patch(version="1", sha=SHA1, **spec) -> dict:
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "EdgeInferenceService",
            "metadata": {"name": "breast-cancer-screening"},
            "spec": {"model": {"name": "breast-cancer", "version": version,
                               "storageUri": f"s3://models/breast-cancer/{version}", "sha256": sha},
                     **spec}}


def test_canary_adds_a_traffic_share_and_keeps_the_live_version():
    new = promotion.promote_canary(patch(), "2", SHA2.upper(), 20)
    assert new["spec"]["model"] == patch()["spec"]["model"]
    assert new["spec"]["canary"] == {"version": "2", "sha256": SHA2, "trafficPercent": 20}


@pytest.mark.parametrize("percent", [0, 100, -5])
def test_canary_share_must_be_a_real_split(percent):
    with pytest.raises(PromotionError, match="between 1 and 99"):
        promotion.promote_canary(patch(), "2", SHA2, percent)


def test_canary_of_the_live_version_is_refused():
    with pytest.raises(PromotionError, match="already the live version"):
        promotion.promote_canary(patch(), "1", SHA1, 10)


def test_bad_sha256_is_refused():
    with pytest.raises(PromotionError, match="64 lower-case hex"):
        promotion.promote_canary(patch(), "2", "abc", 10)


def test_full_promotion_needs_the_version_as_canary_first():
    with pytest.raises(PromotionError, match="no canary runs.*--canary"):
        promotion.promote_full(patch(), "2", SHA2)
    with_other_canary = patch(canary={"version": "3", "sha256": SHA3, "trafficPercent": 5})
    with pytest.raises(PromotionError, match="canary is version 3"):
        promotion.promote_full(with_other_canary, "2", SHA2)


def test_full_promotion_replaces_the_model_drops_the_canary_and_remembers_the_old_one():
    canaried = promotion.promote_canary(patch(), "2", SHA2, 20)
    full = promotion.promote_full(canaried, "2", SHA2)
    assert full["spec"]["model"] == {"name": "breast-cancer", "version": "2",
                                     "storageUri": "s3://models/breast-cancer/2", "sha256": SHA2}
    assert "canary" not in full["spec"]
    assert full["metadata"]["annotations"][PREVIOUS_ANNOTATION] == f"1 sha256:{SHA1}"


def test_full_promotion_refuses_a_sha256_other_than_the_canarys():
    canaried = promotion.promote_canary(patch(), "2", SHA2, 20)
    with pytest.raises(PromotionError, match="canary of version 2 runs sha256"):
        promotion.promote_full(canaried, "2", SHA3)


def test_skip_canary_promotes_directly():
    full = promotion.promote_full(patch(), "3", SHA3, skip_canary=True)
    assert full["spec"]["model"]["version"] == "3"


def test_rollback_stops_a_canary_first_then_restores_the_replaced_version():
    canaried = promotion.promote_canary(patch(), "2", SHA2, 20)
    back, said = promotion.rollback(canaried)
    assert back == patch()
    assert "stopped the canary" in said and "version 1 serves all requests" in said

    full = promotion.promote_full(canaried, "2", SHA2)
    back, said = promotion.rollback(full)
    assert back == patch()
    assert "from version 2 to version 1" in said


def test_rollback_with_nothing_to_undo_is_refused():
    with pytest.raises(PromotionError, match="nothing to roll back"):
        promotion.rollback(patch())


def test_inputs_are_never_mutated():
    original = patch()
    promotion.promote_canary(original, "2", SHA2, 20)
    promotion.promote_full(original, "3", SHA3, skip_canary=True)
    assert original == patch()


def test_render_round_trips_and_keeps_versions_strings():
    text = promotion.render(HEADER, promotion.promote_canary(patch(), "2", SHA2, 20))
    assert text.startswith(HEADER)
    assert "version: '2'" in text and "version: '1'" in text
    header, parsed = promotion.parse(text)
    assert header == HEADER
    assert promotion.render(header, parsed) == text
    assert parsed["spec"]["canary"]["version"] == "2"


@pytest.mark.parametrize("text", ["kind: Deployment\n", "- a\n", "spec: [\n",
                                  "kind: EdgeInferenceService\nspec: {}\n"])
def test_parse_refuses_what_is_not_a_model_patch(text):
    with pytest.raises(PromotionError):
        promotion.parse(text)
