"""Content negotiation (RFC 9110 §12.5): q-values, specificity, server preference on ties, 406."""

from __future__ import annotations

import pytest

from api.negotiation import NotAcceptable, negotiate, parse_weighted, preferred_encoding

OFFERS = ["text/csv", "application/x-ndjson", "application/vnd.apache.parquet"]


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "text/csv"),  # no header: the server's first choice
        ("", "text/csv"),
        ("*/*", "text/csv"),
        ("application/x-ndjson", "application/x-ndjson"),
        ("text/csv;q=0.1, application/x-ndjson;q=0.9", "application/x-ndjson"),  # highest q, not first listed
        ("application/x-ndjson;q=0, */*", "text/csv"),
        ("*/*, text/csv;q=0", "application/x-ndjson"),  # q=0: not acceptable, whatever the wildcard says
        ("application/vnd.apache.parquet, application/x-ndjson", "application/x-ndjson"),  # tie: server's order
        ("application/*;q=0.5, application/vnd.apache.parquet", "application/vnd.apache.parquet"),
        ("application/*, text/*;q=0.2", "application/x-ndjson"),
        ("text/*;q=0.2, application/x-ndjson;q=0.1", "text/csv"),
        ("TEXT/CSV;Q=0.5, application/x-ndjson;q=0.4", "text/csv"),  # case-insensitive
        ("text/csv; charset=utf-8; q=0.3, application/x-ndjson; q=0.2", "text/csv"),  # parameters ignored
        ("text/csv;q=0.5;q=0, application/x-ndjson;q=0.2", "application/x-ndjson"),  # the last q counts
        ("application/x-ndjson;q=1.0", "application/x-ndjson"),
        ("text/csv;q=2, application/x-ndjson;q=0.1", "application/x-ndjson"),  # malformed q: element left out
        ("text/csv;q=abc", "text/csv"),  # no well-formed element left: as if no header
        ("garbage", "text/csv"),
    ],
)
def test_negotiate(accept: str | None, chosen: str) -> None:
    assert negotiate(accept, OFFERS) == chosen


@pytest.mark.parametrize(
    "accept",
    ["application/xml", "text/csv;q=0", "*/*;q=0", "text/*;q=0, application/*;q=0.000",
     "application/json, text/html;q=0.9"],
)  # fmt: skip
def test_nothing_acceptable_is_not_acceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable) as info:
        negotiate(accept, OFFERS)
    assert info.value.offers == OFFERS and str(info.value).startswith("Accept: none of text/csv, ")


def test_parse_weighted_keeps_order_and_drops_malformed_elements() -> None:
    assert parse_weighted("a/b;q=0.5, ,c/d, e/f;q=1.5, g/h;q=0.001, i/j;q=0.0001") == [
        ("a/b", 0.5), ("c/d", 1.0), ("g/h", 0.001),
    ]  # fmt: skip
    assert len(parse_weighted(",".join(["a/b"] * 1000))) == 64  # bounded work


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, "identity"),
        ("", "identity"),  # an empty value: no coding wanted
        ("gzip", "gzip"),
        ("gzip;q=0", "identity"),
        ("gzip;q=0.4, identity;q=0.5", "identity"),
        ("gzip, identity", "gzip"),  # tie: the server's order
        ("*", "gzip"),
        ("*;q=0", None),  # identity refused too, and nothing else offered
        ("*;q=0, identity", "identity"),
        ("br", "identity"),  # identity is acceptable unless refused
        ("identity;q=0, gzip;q=0.1", "gzip"),
        ("gzip;q=0.5", "gzip"),  # an unnamed identity is acceptable but never preferred to a named coding
        ("gzip;q=0.001", "gzip"),
    ],
)
def test_preferred_encoding(header: str | None, chosen: str | None) -> None:
    assert preferred_encoding(header, ["gzip", "identity"]) == chosen
