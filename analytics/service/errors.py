"""The errors of :class:`analytics.service.AnalyticsService` that the API turns into answers.

>>> from analytics.service.errors import NotFound
>>> err = NotFound("anomaly 'x' does not exist for tenant 'acme'")
>>> err.reason, str(err)
('not_found', "anomaly 'x' does not exist for tenant 'acme'")
"""

from __future__ import annotations

from hubcore.errors import PermanentError

__all__ = ["NotFound"]


class NotFound(PermanentError):
    """An id that does not exist for the caller's tenant (HTTP 404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="not_found")
