"""The FHIR REST conventions as pure functions: content negotiation, date search ranges,
searchset paging links."""
import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest

from medmec.workloads.nursing.fhir_rest import (FHIR_JSON, JSON, BadSearch, NotAcceptable, Page,
                                                TimeRange, response_type, searchset, time_range)


def at(*parts) -> float:
    return dt.datetime(*parts, tzinfo=dt.timezone.utc).timestamp()


@pytest.mark.parametrize("values,expected", [
    (["2026-12-01"], TimeRange(at(2026, 12, 1), at(2026, 12, 2))),
    (["2026-12"], TimeRange(at(2026, 12, 1), at(2027, 1, 1))),
    (["eq2026"], TimeRange(at(2026, 1, 1), at(2027, 1, 1))),
    (["ge2026-12-01", "lt2026-12-03"], TimeRange(at(2026, 12, 1), at(2026, 12, 3))),
    (["gt2026-12-01", "le2026-12-03"], TimeRange(at(2026, 12, 2), at(2026, 12, 4))),
    (["ge2026-12-01T08:00:00+01:00"], TimeRange(at(2026, 12, 1, 7))),
    (["lt2026-12-01T08:00:00Z"], TimeRange(before=at(2026, 12, 1, 8))),
])
def test_date_parameters_stand_for_time_ranges(values, expected):
    assert time_range("date", values) == expected


@pytest.mark.parametrize("value,message", [
    ("sa2026-12-01", "prefix"), ("2026-12-01T08:00:00", "time zone"), ("yesterday", "expected"),
    ("2026-13-01", "month"),
])
def test_date_parameters_the_server_cannot_honour_are_refused(value, message):
    with pytest.raises(BadSearch, match=message):
        time_range("date", [value])


def test_a_time_range_meets_points_and_periods():
    day = time_range("date", ["2026-12-01"])
    assert day.contains(at(2026, 12, 1, 23, 59)) and not day.contains(at(2026, 12, 2))
    assert day.overlaps(at(2026, 11, 20), None)  # an admission still open
    assert not day.overlaps(at(2026, 11, 20), at(2026, 11, 30))


@pytest.mark.parametrize("accept,fmt,expected", [
    (None, None, FHIR_JSON), ("application/json", None, JSON), ("text/html, */*;q=0.1", None, FHIR_JSON),
    ("application/json;q=0.2, application/fhir+json", None, FHIR_JSON),
    ("application/fhir+json;q=0, application/json", None, JSON), ("text/html", "json", FHIR_JSON),
])
def test_content_negotiation(accept, fmt, expected):
    assert response_type(accept, fmt) == expected


@pytest.mark.parametrize("accept,fmt", [("application/fhir+xml", None), (None, "xml"),
                                        ("application/json;q=0", None)])
def test_formats_other_than_json_are_not_acceptable(accept, fmt):
    with pytest.raises(NotAcceptable):
        response_type(accept, fmt)


def test_searchset_links_page_through_every_match():
    matches = [{"resourceType": "Observation", "id": str(k)} for k in range(5)]
    base, params = "http://h/fhir", {"patient": ["p1"], "date": []}
    bundle = searchset(base, "Observation", params, Page(2, 2), 5, Page(2, 2).of(matches))
    links = {link["relation"]: dict(parse_qsl(urlsplit(link["url"]).query)) for link in bundle["link"]}
    assert {k: (v["_offset"], v["patient"]) for k, v in links.items()} == {
        "self": ("2", "p1"), "first": ("0", "p1"), "previous": ("0", "p1"), "next": ("4", "p1"),
        "last": ("4", "p1")}
    assert [e["fullUrl"] for e in bundle["entry"]] == ["http://h/fhir/Observation/2", "http://h/fhir/Observation/3"]
    assert {e["search"]["mode"] for e in bundle["entry"]} == {"match"} and bundle["total"] == 5
    empty = searchset(base, "Observation", params, Page(2), 0, [])
    assert "entry" not in empty and [link["relation"] for link in empty["link"]] == ["self", "first", "last"]
