"""The FHIR R4 RESTful conventions this service follows, as pure functions: media types and
content negotiation, OperationOutcome for errors, searchset Bundles with paging links, and
date search parameters (http://hl7.org/fhir/R4/http.html, search.html)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from urllib.parse import urlencode

FHIR_JSON = "application/fhir+json"
JSON = "application/json"
_FORMATS = {"json": FHIR_JSON, FHIR_JSON: FHIR_JSON, JSON: JSON}

# issue-type (http://hl7.org/fhir/R4/valueset-issue-type.html) for each HTTP status we answer
_ISSUE_CODE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 406: "not-supported",
               409: "conflict", 415: "not-supported", 422: "invalid", 500: "exception",
               503: "transient"}


class NotAcceptable(ValueError):
    """The client asked only for formats this server does not produce (XML, RDF, ...)."""


def response_type(accept: str | None, format_param: str | None) -> str:
    """The media type of a FHIR response: `_format` wins over Accept; application/json is
    answered as application/json, anything else JSON-compatible as application/fhir+json."""
    if format_param:
        chosen = _FORMATS.get(format_param.strip().split(";")[0])
        if chosen is None:
            raise NotAcceptable(f"_format {format_param!r}: this server speaks JSON only "
                                f"(json, {FHIR_JSON}, {JSON})")
        return chosen
    if not accept:
        return FHIR_JSON
    offered = []
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = next((_quality(p[2:]) for p in params if p.startswith("q=")), 1.0)
        if q > 0:
            offered.append((q, kind.lower()))
    for _, kind in sorted(offered, key=lambda o: -o[0]):  # stable: ties keep the client's order
        if kind in (FHIR_JSON, "*/*", "application/*"):
            return FHIR_JSON
        if kind == JSON:
            return JSON
    raise NotAcceptable(f"Accept {accept!r}: this server answers {FHIR_JSON} or {JSON} only")


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def operation_outcome(status: int, diagnostics: str, expression: list[str] | None = None,
                      details: dict | None = None, severity: str = "error") -> dict:
    issue: dict = {"severity": severity, "code": _ISSUE_CODE.get(status, "processing"),
                   "diagnostics": diagnostics}
    if details:
        issue["details"] = details
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@dataclasses.dataclass(frozen=True)
class Page:
    """Which slice of a search's matches one Bundle carries (_count, _offset)."""
    count: int
    offset: int = 0

    def of(self, matches: list) -> list:
        return matches[self.offset:self.offset + self.count]


def searchset(base: str, resource_type: str, params: dict[str, list[str]], page: Page,
              total: int, resources: list[dict]) -> dict:
    """A searchset Bundle: each entry with the resource's absolute fullUrl and search mode
    `match`; links self, first, and previous/next where there are such pages."""
    def link(relation: str, offset: int) -> dict:
        query = [(k, v) for k, vs in params.items() for v in vs]
        query += [("_count", str(page.count)), ("_offset", str(offset))]
        return {"relation": relation, "url": f"{base}/{resource_type}?{urlencode(query)}"}

    links = [link("self", page.offset), link("first", 0)]
    if page.offset > 0:
        links.append(link("previous", max(0, page.offset - page.count)))
    if page.offset + page.count < total:
        links.append(link("next", page.offset + page.count))
    last = max(0, math.ceil(total / page.count) - 1) * page.count
    links.append(link("last", last))
    found = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    if resources:  # FHIR JSON has no empty arrays
        found["entry"] = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                           "search": {"mode": "match"}} for r in resources]
    return found


# -- date search parameters (http://hl7.org/fhir/R4/search.html#date) -------------------------
_DATE = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(\d{4}(-\d{2}(-\d{2}(T.+)?)?)?)$")


class BadSearch(ValueError):
    """A search parameter the server cannot honour; the message names it."""


@dataclasses.dataclass(frozen=True)
class TimeRange:
    """[since, before) in POSIX seconds; the intersection of every date parameter given."""
    since: float = -math.inf
    before: float = math.inf

    def overlaps(self, start: float, end: float | None = None) -> bool:
        """Whether [start, end] (a point when end is start; open when end is None) meets it."""
        end = math.inf if end is None else end
        return start < self.before and end >= self.since

    def contains(self, t: float) -> bool:
        return self.since <= t < self.before


def time_range(name: str, values: list[str]) -> TimeRange:
    since, before = -math.inf, math.inf
    for value in values:
        m = _DATE.match(value)
        if not m:
            raise BadSearch(f"{name}={value!r}: expected [eq|gt|ge|lt|le]YYYY[-MM[-DD[Thh:mm:ss+zz:zz]]]")
        prefix, text = m.group(1) or "eq", m.group(2)
        lo, hi = _interval(name, text)
        if prefix == "eq":
            since, before = max(since, lo), min(before, hi)
        elif prefix == "ge":
            since = max(since, lo)
        elif prefix == "gt":
            since = max(since, hi)
        elif prefix == "lt":
            before = min(before, lo)
        elif prefix == "le":
            before = min(before, hi)
        else:
            raise BadSearch(f"{name}: the prefix {prefix!r} is not supported (eq, gt, ge, lt, le are)")
    return TimeRange(since, before)


def _interval(name: str, text: str) -> tuple[float, float]:
    """The instants a date or dateTime of some precision stands for, as [lo, hi)."""
    utc = dt.timezone.utc
    try:
        if "T" in text:
            t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if t.tzinfo is None:
                raise BadSearch(f"{name}={text!r}: a time needs a time zone (Z or +hh:mm)")
            step = dt.timedelta(seconds=1) if t.microsecond == 0 else dt.timedelta(microseconds=1)
            return t.timestamp(), (t + step).timestamp()
        parts = [int(p) for p in text.split("-")]
        if len(parts) == 1:
            lo, hi = dt.datetime(parts[0], 1, 1, tzinfo=utc), dt.datetime(parts[0] + 1, 1, 1, tzinfo=utc)
        elif len(parts) == 2:
            y, m = parts
            lo = dt.datetime(y, m, 1, tzinfo=utc)
            hi = dt.datetime(y + m // 12, m % 12 + 1, 1, tzinfo=utc)
        else:
            lo = dt.datetime(*parts, tzinfo=utc)
            hi = lo + dt.timedelta(days=1)
    except ValueError as err:
        raise BadSearch(f"{name}={text!r}: {err}") from None
    return lo.timestamp(), hi.timestamp()
