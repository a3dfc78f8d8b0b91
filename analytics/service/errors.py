"""The errors of :class:`analytics.service.AnalyticsService` that the API turns into answers.

>>> from analytics.service.errors import NotFound
>>> err = NotFound("anomaly 'x' does not exist for tenant 'acme'")
>>> err.reason, str(err)
('not_found', "anomaly 'x' does not exist for tenant 'acme'")

A message about a JSON body's value shows it as JSON (:func:`json_text`): ``got null``, not Python's ``got None``.
"""

from __future__ import annotations

import json
from typing import Any

from hubcore.errors import PermanentError

__all__ = ["NotFound", "json_text"]

#: The most characters of a value :func:`json_text` shows.
_SHOWN = 120


def json_text(value: Any) -> str:
    """A body's ``value`` as the JSON it was sent as, for an error message (cut after 120 characters).

    >>> json_text(None), json_text(True), json_text("true_positive"), json_text([1, 2.5]), json_text({"a": None})
    ('null', 'true', '"true_positive"', '[1, 2.5]', '{"a": null}')
    >>> len(json_text("x" * 500))
    121
    """
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not a JSON value (a caller's own object)
        text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


class NotFound(PermanentError):
    """An id that does not exist for the caller's tenant (HTTP 404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="not_found")
