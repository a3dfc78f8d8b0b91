"""The false-positive feedback of :class:`analytics.service.AnalyticsService`: marking an anomaly, undoing
a mark, reading and resetting what a query's (or a team's) ensemble learned.

:class:`FeedbackOpsMixin` holds these operations (the API's ``/api/v1/anomalies/.../feedback`` routes call
them); the learned states are stored by :class:`analytics.service.feedback.FeedbackStore`::

    svc = AnalyticsService(AnalyticsConfig(), store)
    svc.mark_false_positive("acme", anomaly_id)        # learns, persists, rescores
    svc.feedback_state("acme", "requests")             # thresholds, weights, marks
    svc.undo_false_positive("acme", anomaly_id)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from analytics.anomaly import FeedbackState
from analytics.anomaly.raw_cache import RawScoreCache
from analytics.service.config import DEFAULT_DETECTORS, AnalyticsConfig
from analytics.service.derived import DerivedRepository
from analytics.service.errors import NotFound, json_text
from analytics.service.feedback import FeedbackStore, mark_time_iso, state_answer
from analytics.service.models import anomaly_id as anomaly_id_of
from analytics.service.models import build_detector, score_series
from analytics.service.related import related_columns
from analytics.service.series import Series, labels_key
from analytics.service.teams import check_team, series_team, team_dimensions
from hubcore.errors import InvalidParameter, PermanentError
from hubcore.query.model import QueryError
from hubcore.security.rbac import ForbiddenError


class FeedbackOpsMixin:
    """Feedback on the anomaly models (see the module docstring)."""

    config: AnalyticsConfig
    repo: DerivedRepository
    feedback: FeedbackStore
    raw_scores: RawScoreCache
    clock: Callable[[], float]

    if TYPE_CHECKING:

        def fit_window(self, model: str, query: str) -> float: ...
        def load(self, tenant: str, query: str, start_s: float, end_s: float) -> list[Series]: ...
        def load_related(
            self, tenant: str, model: str, query: str, start_s: float, end_s: float
        ) -> dict[str, list[Series]]: ...
        def run_model(
            self, tenant: str, model: str, query: str, now: float, *, refit: bool = False
        ) -> tuple[int, int]: ...

    # The learned state is kept per (tenant, query, team): a mark on a team's series teaches that team's
    # state (its series are scored with the query-wide marks plus their own); a series naming no team, or
    # a mark made with scope "query", teaches the query-wide state, which every series falls back to (the
    # API lets only callers with teams:all teach it where the query also holds teams' series).
    def _team_feedback(self, tenant: str, query: str, series: Sequence[Series]) -> dict[str, FeedbackState]:
        """The state of each series whose team has marks of its own, by series key (the others are scored
        with the query-wide state)."""
        teams = self.feedback.teams(tenant, query)
        if not teams:
            return {}
        spec = self.config.queries.get(query)
        dims = team_dimensions(spec, tenant)
        states = {team: self.feedback.effective(tenant, query, team) for team in teams}
        out = {}
        for s in series:
            team = series_team(spec, s.labels, tenant, dims)
            if team is not None and team in states:
                out[s.key] = states[team]
        return out

    def _anomaly(self, tenant: str, anomaly_id: str, *, marked: bool = False) -> tuple[dict[str, Any], str | None]:
        """The anomaly record and the team whose state scores its series (None: query-wide).

        ``marked``: a point a mark made no longer anomalous has no record after the rescoring; its mark
        still names it (:meth:`_marked_point`: query, model, labels and time only), so it can be undone by
        the id it was marked with."""
        rec = self.find_anomaly(tenant, anomaly_id, marked=marked)
        if rec is None:
            raise NotFound(f"anomaly {anomaly_id!r} does not exist for tenant {tenant!r}")
        return rec, series_team(self.config.queries.get(rec["query"]), rec["labels"], tenant)

    def find_anomaly(self, tenant: str, anomaly_id: str, *, marked: bool = False) -> dict[str, Any] | None:
        """The stored anomaly record, or (``marked``) the point a false-positive mark names under that id
        once the mark has made it no longer anomalous (query, model alias, labels and time only); None."""
        rec = self.repo.get_anomaly(tenant, anomaly_id)
        return self._marked_point(tenant, anomaly_id) if rec is None and marked else rec

    def _marked_point(self, tenant: str, anomaly_id: str) -> dict[str, Any] | None:
        """The point (query, model alias, series, time) a recorded false-positive mark of ``tenant`` names
        under ``anomaly_id`` (the id is a digest of them: :func:`anomaly_id`), or None."""
        for query in self.config.queries:
            models = [m for m in self.config.models if self.config.models[m].model_class == "anomaly"
                      and query in self.config.model_queries(m)]  # fmt: skip
            scopes: list[str | None] = [None, *self.feedback.teams(tenant, query)]
            for scope in scopes if models else []:
                for fp in self.feedback.load(tenant, query, scope).history:
                    if fp.series is None or not fp.timestamp:
                        continue
                    ts = float(pd.Timestamp(fp.timestamp).tz_localize(None).timestamp())
                    for model in models:
                        if anomaly_id_of(tenant, query, model, fp.series, ts) == anomaly_id:
                            return {"query": query, "model_alias": model, "timestamp": fp.timestamp,
                                    "labels": json.loads(fp.series)}  # fmt: skip
        return None

    def _check_query(self, query: str, team: str | None, tenant: str) -> None:
        """422 unless ``query`` is a configured alias and ``team`` (if any) can hold one of its series."""
        spec = self.config.queries.get(query)
        if spec is None:
            raise InvalidParameter(f"query: unknown query alias {query!r}; configured: "
                                   f"{', '.join(sorted(self.config.queries))}")  # fmt: skip
        if team is not None:
            check_team(query, spec, team, tenant)

    def holds_team(self, query: str, team: str, tenant: str) -> bool:
        """Whether some series of ``query`` can belong to ``team`` (an unknown query: True, for the 422)."""
        spec = self.config.queries.get(query)
        try:
            return spec is None or check_team(query, spec, team, tenant) == team
        except InvalidParameter:
            return False

    def _rerun(self, tenant: str, query: str) -> None:
        for model in self.config.models:
            if self.config.models[model].model_class == "anomaly" and query in self.config.model_queries(model):
                self.run_model(tenant, model, query, self.clock(), refit=True)

    def undo_false_positive(self, tenant: str, anomaly_id: str, *, query_wide: bool = True) -> dict[str, Any]:
        """Forget the marks recorded for an anomaly (its series and time) in its team's state and in the
        query-wide one: each is learned again from its other marks, as they were recorded, persisted, and
        the model rerun. ``query_wide`` False (a caller limited to a team): the query-wide marks of a team's
        series (made with scope "query") are left, and a 403 when they are the only ones."""
        rec, team = self._anomaly(tenant, anomaly_id, marked=True)
        query, model = rec["query"], rec["model_alias"]
        stamp, series = str(pd.Timestamp(rec["timestamp"]).tz_localize(None)), labels_key(rec["labels"])
        removed = blocked = 0
        for scope in ([team] if team is not None else []) + [None]:
            state = self.feedback.load(tenant, query, scope)
            kept = state.replayed(lambda fp: not (fp.timestamp == stamp and fp.series in (series, None)))
            n = len(state.history) - len(kept.history)
            if n and scope is None and team is not None and not query_wide:
                blocked += n
            elif n:
                self.feedback.save(tenant, query, kept, scope)
                removed += n
        if not removed:
            if blocked:
                raise ForbiddenError(f"anomaly {anomaly_id!r}: its mark is query-wide (made with scope \"query\", it "
                                     "teaches every team's series); undoing it needs teams:all")  # fmt: skip
            raise NotFound(f"anomaly {anomaly_id!r} has no false-positive mark to undo")
        if model in self.config.models and query in self.config.queries:
            self.run_model(tenant, model, query, self.clock(), refit=True)
        return {"anomaly": anomaly_id, "query": query, "team": team, "removed_marks": removed,
                "feedback": state_answer(self.feedback.effective(tenant, query, team))}  # fmt: skip

    def feedback_state(self, tenant: str, query: str, team: str | None = None) -> dict[str, Any]:
        """What the (tenant, query) ensemble has learned from feedback (thresholds, weights, marks): the
        query-wide state and the number of marks of each team with its own (``teams``), or with ``team``
        the state that scores that team's series (``marks``: the team's own; ``query_marks``: the
        query-wide ones it also learns from)."""
        self._check_query(query, team, tenant)
        shared = self.feedback.load(tenant, query)
        if team is None:
            teams = {t: len(self.feedback.load(tenant, query, t).history) for t in self.feedback.teams(tenant, query)}
            return {"query": query, "team": None, "marks": len(shared.history), "feedback": state_answer(shared),
                    "teams": teams, "marked": self._marked(tenant, query, shared)}  # fmt: skip
        own = self.feedback.load(tenant, query, team)
        return {"query": query, "team": team, "marks": len(own.history), "query_marks": len(shared.history),
                "feedback": state_answer(self.feedback.effective(tenant, query, team)),
                "marked": self._marked(tenant, query, own)}  # fmt: skip

    def _marked(self, tenant: str, query: str, state: FeedbackState) -> list[dict[str, Any]]:
        """The marked points of ``state`` as a user finds them: time, series labels, and the anomaly id of the
        point under each anomaly model of the query (``DELETE /api/v1/anomalies/{id}/feedback`` takes it, also
        once the mark has made the point no longer anomalous)."""
        models = [m for m in self.config.models if self.config.models[m].model_class == "anomaly"
                  and query in self.config.model_queries(m)]  # fmt: skip
        out = []
        for fp in state.history:
            ids: dict[str, str] = {}
            if fp.series is not None and fp.timestamp:
                ts = float(pd.Timestamp(fp.timestamp).tz_localize(None).timestamp())
                ids = {m: anomaly_id_of(tenant, query, m, fp.series, ts) for m in models}
            out.append({"timestamp": mark_time_iso(fp.timestamp), "labels": json.loads(fp.series) if fp.series else None,
                        "detector": fp.detector, "ensemble_score": fp.ensemble_score, "anomaly_ids": ids})  # fmt: skip
        return out

    def reset_feedback(self, tenant: str, query: str, team: str | None = None) -> dict[str, Any]:
        """Forget every mark of the (tenant, query) ensemble, query-wide and every team's (``team``: only
        that team's own marks); its models rerun."""
        self._check_query(query, team, tenant)
        scopes: list[str | None] = [team] if team is not None else [None, *self.feedback.teams(tenant, query)]
        removed: dict[str | None, int] = {}
        for scope in scopes:
            removed[scope] = len(self.feedback.load(tenant, query, scope).history)
            self.feedback.save(tenant, query, FeedbackState(), scope)
        self._rerun(tenant, query)
        out: dict[str, Any] = {"query": query, "team": team, "removed_marks": sum(removed.values())}
        if team is None:
            out["teams"] = {t: n for t, n in removed.items() if t is not None}
        return out

    def mark_false_positive(
        self, tenant: str, anomaly_id: str, detector: str | None = None, scope: str | None = None
    ) -> dict[str, Any]:
        """Teach the ensemble that an anomaly was a false positive, persist, rescore. ``scope`` ``team``
        (the default when the series names a team) teaches its team's state, ``query`` the query-wide one
        (every series of the query)."""
        rec, team = self._anomaly(tenant, anomaly_id)
        query, model = rec["query"], rec["model_alias"]
        if model not in self.config.models or query not in self.config.queries:
            raise NotFound(f"anomaly {anomaly_id!r} belongs to query {query!r} / model {model!r}, no longer configured")
        if scope not in (None, "team", "query"):
            raise InvalidParameter(f'scope: must be "team", "query" or null, got {json_text(scope)}',
                                   reason="invalid_feedback")  # fmt: skip
        if scope == "team" and team is None:
            raise InvalidParameter(f"scope: the series of anomaly {anomaly_id!r} names no team; its feedback is "
                                   'query-wide ("query" or null)', reason="invalid_feedback")  # fmt: skip
        learner = None if scope == "query" else team
        spec = self.config.models[model]
        if detector is not None:
            _check_blamed(anomaly_id, detector, rec["detected_by"], spec.params.get("detectors") or DEFAULT_DETECTORS)
        ts = pd.Timestamp(rec["timestamp"]).tz_localize(None)
        state = self.feedback.effective(tenant, query, team)  # what scored the series
        now: float | None = None
        if rec["detected_by"] == ["bulk_robust"]:
            state.record_false_positive(str(ts), {"bulk_robust": rec["anomaly_score"]}, rec["anomaly_score"], None,
                                        labels_key(rec["labels"]))  # fmt: skip
        else:
            now = self.clock()
            fit_window = self.fit_window(model, query)
            t = ts.timestamp()
            start, end = (now - fit_window, now) if t >= now - fit_window else (t - fit_window, t + 86_400)
            match = [s for s in self.load(tenant, query, start, end) if s.labels == rec["labels"]]
            if not match:
                raise NotFound(f"the series of anomaly {anomaly_id!r} has no data any more")
            det = build_detector(spec.params, state, self.raw_scores)
            if detector is not None and detector not in det.weights:
                raise PermanentError(f"detector: unknown detector {detector!r}; known: {sorted(det.weights)}",
                                     reason="bad_detector")  # fmt: skip
            related = self.load_related(tenant, model, query, start, end)
            score_series(det, match[0], related_columns(match[0], related))
            det.mark_false_positive(ts, detector)
            state = det.feedback
        mark = state.history[-1]
        own = self.feedback.load(tenant, query, learner)
        own.record_false_positive(mark.timestamp, dict(mark.detector_scores), mark.ensemble_score, mark.detector,
                                  mark.series)  # fmt: skip
        self.feedback.save(tenant, query, own, learner)
        # rescored over the window the mark was scored on (``now``): its raw detector outputs are reused
        self.run_model(tenant, model, query, now if now is not None else self.clock(), refit=True)
        return {"anomaly": anomaly_id, "query": query, "model_alias": model, "team": learner,
                "scope": "query" if learner is None else "team",
                "feedback": state_answer(self.feedback.effective(tenant, query, team))}  # fmt: skip


def _check_blamed(anomaly_id: str, detector: str, flagged_by: Sequence[str], detectors: Sequence[str]) -> None:
    """422 naming ``detector`` unless it flagged the anomaly (its ``detected_by``): a mark aimed at another
    detector would raise that detector's threshold for nothing (one that gave the point a score of 0 had its
    threshold raised to 1.1), and leave the detectors that did flag it as they were."""
    if detector in flagged_by:
        return
    by = ", ".join(flagged_by) or "none"
    if detector not in detectors:
        raise PermanentError(f"detector: unknown detector {detector!r}; known: {sorted(detectors)} (anomaly "
                             f"{anomaly_id!r} was flagged by {by})", reason="bad_detector")  # fmt: skip
    raise QueryError("detector", f"{detector} did not flag anomaly {anomaly_id!r}; it was flagged by {by}: name one "
                                 "of those, or leave detector out to blame the detectors that flagged it",
                     reason="invalid_feedback")  # fmt: skip
