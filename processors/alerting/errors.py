"""The errors of :class:`processors.alerting.AlertingService` that the API turns into answers.

>>> from processors.alerting.errors import AlertConflict, AlertNotFound
>>> isinstance(AlertNotFound("no alert 'x' for tenant 'acme'"), LookupError)  # → 404
True
>>> isinstance(AlertConflict("alert x is already resolved"), ValueError)  # → 409
True
"""

from __future__ import annotations

__all__ = ["AlertConflict", "AlertNotFound"]


class AlertNotFound(LookupError):
    """No such alert (or rule) for this tenant (→ 404)."""


class AlertConflict(ValueError):
    """The transition is not allowed in the current state (→ 409)."""
