"""The bookkeeping of :class:`analytics.service.AnalyticsService` between runs: what each series' last run
saw and wrote, and which series' ``anomaly_alert`` is up.

:class:`AlertStateMixin` keeps the ``anomaly_alert`` rows worth storing (:meth:`~AlertStateMixin._alert_rows`),
withdraws the announcements of series a run no longer finds (:meth:`~AlertStateMixin._vanished`) and drops
the bookkeeping of series that are gone (:meth:`~AlertStateMixin._forget_stale`). The state it works on is
created by ``AnalyticsService.__init__`` and used by its ``run_model``, which restores it after a restart
on the first run of each (tenant, model, query) (:meth:`~AlertStateMixin._restore`: the alerts from the
stored ``anomaly_alert`` rows, the input points from :class:`~analytics.service.run_state.RunStateStore`);
:func:`first_changed` tells a run which written bucket changed since the last one (late data):

    >>> import numpy as np
    >>> first_changed((np.array([0.0, 60.0]), np.array([1.0, 2.0])), np.array([0.0, 60.0]), np.array([1.0, 3.0]))
    60.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from analytics.service.config import AnalyticsConfig
from analytics.service.derived import DerivedRepository, DerivedRow
from analytics.service.run_state import RunStateStore, last_alerts
from analytics.service.series import labels_key

#: A series whose ``anomaly_alert`` stays 0 gets a row this often (the alert rules look back 10 minutes).
ALERT_REFRESH_S = 300.0
#: The newest points of a series whose values a run remembers: a written bucket among them whose value has
#: changed by the next run (late data, e.g. a backfill that had sent part of it) is scored and written again.
RESCORE_POINTS = 12


def first_changed(before: tuple[np.ndarray, np.ndarray] | None, ts: np.ndarray, values: np.ndarray) -> float | None:
    """The earliest time of ``before`` (times, values a run saw) whose value ``values`` now holds otherwise
    (an empty bucket that got a value counts; the last bits of a sum read twice do not), or None.

    >>> first_changed((np.array([0.0, 60.0, 120.0]), np.array([1.0, np.nan, 5.0])),
    ...               np.array([60.0, 120.0, 180.0]), np.array([2.0, 5.0 + 1e-13, 7.0]))
    60.0
    >>> first_changed(None, np.array([60.0]), np.array([2.0])) is None
    True
    """
    if before is None or not ts.size:
        return None
    old_ts, old_values = before
    common, i, j = np.intersect1d(old_ts, ts.astype(float), return_indices=True)
    differs = ~np.isclose(old_values[i], values[j].astype(float), rtol=1e-9, atol=0.0, equal_nan=True)
    return float(common[differs].min()) if differs.any() else None


class AlertStateMixin:
    """``anomaly_alert`` rows and the per-series bookkeeping of the runs (see the module docstring)."""

    config: AnalyticsConfig
    _alert_written: dict[tuple[str, str], tuple[float, float]]
    _announced: dict[tuple[str, str, str], dict[str, dict[str, str]]]
    _written: dict[tuple[str, str, str], dict[str, float]]
    _inputs: dict[tuple[str, str, str], dict[str, tuple[np.ndarray, np.ndarray]]]
    _restored: set[tuple[str, str, str]]
    repo: DerivedRepository
    run_state: RunStateStore

    if TYPE_CHECKING:

        def fit_window(self, model: str, query: str) -> float: ...

    def _restore(self, key: tuple[str, str, str], now: float) -> None:
        """Once per (tenant, model, query) and process, before its first run: what a service that ran
        before a restart knew of it. The newest ``anomaly_alert`` row of each series written in the last
        day says whether its alert is up (a series that then vanishes gets its 0) and when it was last
        written (a quiet series' 0 is not stored again before :data:`ALERT_REFRESH_S`); the saved input
        points let the run find a written bucket whose value changed (late data). What this process
        already holds is kept."""
        if key in self._restored:
            return
        self._restored.add(key)
        tenant, model, query = key
        for labels, value, ts in last_alerts(self.repo, tenant, model, query, now - 86_400):
            series = labels_key(labels)
            self._alert_written.setdefault((tenant, series), (value, ts))
            if value > 0:
                self._announced.setdefault(key, {}).setdefault(series, labels)
        seen = self._inputs.setdefault(key, {})
        for series, inputs in self.run_state.load(tenant, model, query).items():
            seen.setdefault(series, inputs)

    def _forget_stale(self, now: float) -> None:
        """Drop the bookkeeping of series that are gone (relabelled, retired), so that it does not grow
        with every series ever seen: alert state not written for a day, and the last-written point of a
        series with no point inside its model's fit window (a run could not load it any more; if it comes
        back, its new points are all unwritten)."""
        self._alert_written = {k: v for k, v in self._alert_written.items() if now - v[1] < 86_400}
        self._announced = {k: v for k, v in self._announced.items() if v}
        for key in list(self._written):
            keep_s = self._keep_s(key[1], key[2])
            kept = {s: ts for s, ts in self._written[key].items() if now - ts <= keep_s}
            if kept:
                self._written[key] = kept
            else:
                del self._written[key]
        before = self._inputs
        self._inputs = {
            k: {s: v for s, v in seen.items() if s in self._written.get(k, {})} for k, seen in self._inputs.items()
        }
        for k, seen in self._inputs.items():  # the saved points follow (a file left without series goes)
            if len(seen) != len(before[k]) or not seen:
                self.run_state.save(*k, seen)
        # the files of keys no run of this process loaded (a model or query gone from the config, a tenant
        # without data since the restart): the same rule, on each series' newest saved point
        self.run_state.prune(now, self._keep_s, skip=self._restored)

    def _keep_s(self, model: str, query: str) -> float:
        """How long the last-written point of a series of (model, query) is remembered: its fit window (of
        a model still configured), at least a day."""
        horizon = self.fit_window(model, query) if model in self.config.models else 0.0
        return max(horizon, 86_400)

    def _alert_rows(self, rows: list[DerivedRow]) -> list[DerivedRow]:
        """The ``anomaly_alert`` rows worth storing: every run while a series is announced (the alert rules
        hold on them), the run that ends it, and otherwise one 0 per :data:`ALERT_REFRESH_S` (so that a
        quiet series costs one row per five minutes, not one per run, and its rule still has data)."""
        keep = []
        for r in rows:
            key = (r.tenant_id, labels_key(r.labels))
            last_value, last_ts = self._alert_written.get(key, (0.0, float("-inf")))
            if r.value > 0 or last_value > 0 or r.ts - last_ts >= ALERT_REFRESH_S:
                keep.append(r)
                self._alert_written[key] = (r.value, r.ts)
        return keep

    def _vanished(self, key: tuple[str, str, str], state: list[DerivedRow], now: float) -> list[DerivedRow]:
        """A 0 for each series whose ``anomaly_alert`` was up and that this run did not find (its query no
        longer yields it): the run withdraws its announcement, as it would a scored one's."""
        announced = self._announced.get(key, {})
        found = {labels_key(r.labels) for r in state}
        gone = [DerivedRow(key[0], now, "anomaly_alert", 0.0, labels, "anomaly")
                for k, labels in announced.items() if k not in found]  # fmt: skip
        self._announced[key] = {labels_key(r.labels): r.labels for r in state if r.value > 0}
        return gone
