"""Content negotiation (RFC 9110 §12.5): ``Accept`` and ``Accept-Encoding`` with their q-values.

One helper for every route that chooses what to send, so that none parses the headers its own way:

* each element's weight is its ``q`` (0 to 1, default 1); ``q=0`` means "not acceptable";
* an offer takes the weight of the most specific element that matches it (``text/csv`` before ``text/*``
  before ``*/*``; for codings, the coding's own name before ``*``);
* the offer with the highest weight wins; ties keep the server's order of preference (``offers``' order);
* nothing acceptable: :func:`negotiate` raises :class:`NotAcceptable` (the route answers 406
  ``not_acceptable`` and lists what it can send).

No header, an empty one, or one without a single well-formed element accepts anything: the first offer.
Media-type parameters other than ``q`` (``charset=``...) are not compared.

    >>> negotiate("application/x-ndjson;q=0.5, text/csv;q=0.9", ["text/csv", "application/x-ndjson"])
    'text/csv'
    >>> negotiate("text/*;q=0.2, application/x-ndjson", ["text/csv", "application/x-ndjson"])
    'application/x-ndjson'
    >>> negotiate("*/*, text/csv;q=0", ["text/csv", "application/x-ndjson"])
    'application/x-ndjson'
    >>> negotiate("application/xml", ["text/csv"])
    Traceback (most recent call last):
    ...
    api.negotiation.NotAcceptable: Accept: none of text/csv is acceptable (the request accepts application/xml)
    >>> preferred_encoding("gzip;q=0, identity", ["gzip", "identity"])
    'identity'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["NotAcceptable", "negotiate", "parse_weighted", "preferred_encoding"]

_QVALUE = re.compile(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
MAX_ELEMENTS = 64  # a header longer than this in elements is read up to here
_IMPLICIT_IDENTITY = 0.0001  # below any q a header can state (3 decimals): acceptable, least preferred


class NotAcceptable(Exception):
    """Nothing the route can send is acceptable: HTTP 406 ``not_acceptable``."""

    def __init__(self, header: str, offers: Sequence[str], sent: str) -> None:
        shown = sent if len(sent) <= 200 else sent[:200] + "..."
        super().__init__(f"{header}: none of {', '.join(offers)} is acceptable (the request accepts {shown})")
        self.header = header
        self.offers = list(offers)


def parse_weighted(value: str | None) -> list[tuple[str, float]]:
    """The well-formed elements of an ``Accept``-like header as ``(lower-case name, q)``, in order.

    The name is the media range (``text/csv``) or the token (``gzip``) without its parameters; an element
    with a malformed ``q`` is left out (not read as 1, which could pick what the client refused).

        >>> parse_weighted("text/csv; charset=utf-8; q=0.8, */*;q=0.1, bad;q=2")
        [('text/csv', 0.8), ('*/*', 0.1)]
    """
    out: list[tuple[str, float]] = []
    for element in (value or "").split(",")[:MAX_ELEMENTS]:
        name, *params = (p.strip() for p in element.split(";"))
        name = name.lower()
        if not name or not all(_TOKEN.fullmatch(part) for part in name.split("/", 1)):
            continue
        q: float | None = 1.0
        for param in params:
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                val = val.strip()
                q = float(val) if _QVALUE.fullmatch(val) else None
        if q is not None:
            out.append((name, q))
    return out


def _media_weight(elements: list[tuple[str, float]], offer: str) -> float:
    """The q of the most specific element matching ``offer`` (``type/subtype``), 0 when none does."""
    kind = offer.split("/", 1)[0] + "/*"
    best = (-1, 0.0)
    for name, q in elements:
        specificity = 2 if name == offer else 1 if name == kind else 0 if name == "*/*" else -1
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def negotiate(accept: str | None, offers: Sequence[str]) -> str:
    """The offer (``type/subtype``, lower case, in the server's order of preference) ``accept`` prefers.

    Raises :class:`NotAcceptable` when the header gives every offer a weight of 0.
    """
    elements = [(name, q) for name, q in parse_weighted(accept) if "/" in name]
    if not elements:  # no header, or not one well-formed media range in it: as if there were no header
        return offers[0]
    best, best_q = offers[0], 0.0
    for offer in offers:
        q = _media_weight(elements, offer)
        if q > best_q:  # strictly higher: a tie keeps the earlier (preferred) offer
            best, best_q = offer, q
    if best_q <= 0.0:
        raise NotAcceptable("Accept", offers, str(accept).strip())
    return best


def preferred_encoding(accept_encoding: str | None, offers: Sequence[str]) -> str | None:
    """The content coding (``gzip``, ``identity``...) to send, or None when no offer is acceptable.

    Without the header only ``identity`` is chosen (the client stated no coding it can decode); with it,
    a coding it does not name (nor ``*``) is not acceptable, except ``identity``, which is unless refused
    (``identity;q=0``, or ``*;q=0`` without an ``identity`` element) — with the lowest weight, so that a
    coding the client names, whatever its q, is preferred to an ``identity`` it does not.
    """
    if accept_encoding is None:
        return "identity" if "identity" in offers else None
    elements = dict(reversed(parse_weighted(accept_encoding)))  # the first mention of a coding counts
    best, best_q = None, 0.0
    for offer in offers:
        q = elements.get(offer, elements.get("*", _IMPLICIT_IDENTITY if offer == "identity" else 0.0))
        if q > best_q:
            best, best_q = offer, q
    return best
