"""Per-tenant, per-query, per-team feedback state of the anomaly ensemble, persisted as JSON in the data dir.

Layout: the query-wide state in ``<data_dir>/analytics/feedback/<tenant>/<query>.json``
(``FeedbackState.to_json()``; the file of the releases that kept one state per query, read unchanged),
and one team's own marks in ``<tenant>/<query>.teams/<team>.json`` (the same JSON plus ``"team"``),
written atomically and synced (:func:`hubcore.files.write_atomic`: a crash leaves the old file or the
new one; the ``.json.tmp`` it may leave is never read, nor listed as a team).

A team's series are scored with :meth:`FeedbackStore.effective`: the query-wide marks, then the team's
own, learned again in that order (``FeedbackState.replayed``); a team without marks, and a series
naming no team, get the query-wide state. So a mark on team ``ml``'s series retunes ``ml``'s series
only, while a query-wide mark (a series naming no team, or ``scope: query``) still teaches every team.

    >>> import tempfile
    >>> fs = FeedbackStore(tempfile.mkdtemp())
    >>> state = fs.load("acme", "latency_p95")
    >>> state.ensemble_threshold
    1.0
    >>> state.ensemble_threshold = 2.0; fs.save("acme", "latency_p95", state)
    >>> fs.load("acme", "latency_p95").ensemble_threshold
    2.0
    >>> ml = fs.load("acme", "latency_p95", team="ml"); ml.record_false_positive("t1", {"robust": 3.0}, 3.0)
    >>> fs.save("acme", "latency_p95", ml, team="ml"); fs.teams("acme", "latency_p95")
    ['ml']
    >>> [len(fs.effective("acme", "latency_p95", t).history) for t in ("ml", "search", None)]
    [1, 0, 0]
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.anomaly import FeedbackState
from hubcore.files import fsync_dir, write_atomic
from hubcore.times import iso_s

__all__ = ["FeedbackStore", "mark_time_iso", "state_answer"]

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def _name(part: str) -> str:
    cleaned = _SAFE.sub("_", part)
    return cleaned if cleaned not in ("", ".", "..") else f"_{cleaned}"


def _team_file(team: str) -> str:
    """A file name per team: the name itself when it is safe, else a cleaned name plus a hash (``a/b``
    and ``a_b`` stay apart)."""
    name = _name(team)
    return f"{name}.json" if name == team else f"{name}-{hashlib.sha1(team.encode()).hexdigest()[:10]}.json"


def mark_time_iso(stamp: str) -> str:
    """A mark's time as the API answers times: ISO-8601 UTC with ``Z`` (:func:`hubcore.times.iso_s`). The
    state keeps (and the files of every release hold) pandas' naive UTC form, which undoing a mark matches
    on; only the answers convert. A value that is no time is returned as it is.

    >>> mark_time_iso("2026-11-27 15:45:00"), mark_time_iso("2026-11-27T15:45:00.5Z"), mark_time_iso("t1")
    ('2026-11-27T15:45:00Z', '2026-11-27T15:45:00.500000Z', 't1')
    """
    try:
        ts = datetime.fromisoformat(stamp)
    except (ValueError, TypeError):
        return stamp
    return iso_s((ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).timestamp())


def state_answer(state: FeedbackState) -> dict[str, Any]:
    """``state`` as the API answers it: :meth:`FeedbackState.to_dict` with each mark's time in ISO-8601 UTC."""
    out = state.to_dict()
    for mark in out["history"]:
        mark["timestamp"] = mark_time_iso(mark["timestamp"])
    return out


def _copy(state: FeedbackState) -> FeedbackState:
    return FeedbackState.from_json(state.to_json())


class FeedbackStore:
    """Loads and saves :class:`FeedbackState` per (tenant, query, team); thread-safe. ``team`` None is
    the query-wide state."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir) / "analytics" / "feedback"
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str | None], FeedbackState] = {}
        self._teams: dict[tuple[str, str], set[str]] = {}  # (tenant, query) -> teams with a file

    def path(self, tenant: str, query: str, team: str | None = None) -> Path:
        if team is None:
            return self.root / _name(tenant) / f"{_name(query)}.json"
        return self._teams_dir(tenant, query) / _team_file(team)

    def _teams_dir(self, tenant: str, query: str) -> Path:
        return self.root / _name(tenant) / f"{_name(query)}.teams"

    def load(self, tenant: str, query: str, team: str | None = None) -> FeedbackState:
        """The saved state of the scope (``team`` None: query-wide), or a neutral one (a copy: mutate it,
        then :meth:`save`). A team's state holds its own marks only (see :meth:`effective`)."""
        with self._lock:
            return _copy(self._load(tenant, query, team))

    def _load(self, tenant: str, query: str, team: str | None) -> FeedbackState:
        cached = self._cache.get((tenant, query, team))
        if cached is None:
            p = self.path(tenant, query, team)
            cached = FeedbackState.from_json(p.read_text()) if p.is_file() else FeedbackState()
            self._cache[(tenant, query, team)] = cached
        return cached

    def effective(self, tenant: str, query: str, team: str | None) -> FeedbackState:
        """The state that scores a series of ``team`` (None: naming no team): the query-wide marks then
        the team's own, learned again in that order; the query-wide state when the team has no marks."""
        with self._lock:
            shared = self._load(tenant, query, None)
            own = self._load(tenant, query, team) if team is not None else FeedbackState()
            if not own.history:
                return _copy(shared)
            return FeedbackState(history=[*shared.history, *own.history]).replayed(lambda _: True)

    def teams(self, tenant: str, query: str) -> list[str]:
        """The teams with marks of their own for (tenant, query), sorted (the directory is read once)."""
        with self._lock:
            return sorted(self._team_set(tenant, query))

    def _team_set(self, tenant: str, query: str) -> set[str]:
        found = self._teams.get((tenant, query))
        if found is None:
            found = set()
            d = self._teams_dir(tenant, query)
            for p in d.glob("*.json") if d.is_dir() else []:
                try:
                    team = json.loads(p.read_text()).get("team")
                except (OSError, ValueError):
                    continue
                if isinstance(team, str) and team:
                    found.add(team)
            self._teams[(tenant, query)] = found
        return found

    def save(self, tenant: str, query: str, state: FeedbackState, team: str | None = None) -> None:
        """Persist the scope's state; a team's state without marks is removed (its series fall back to the
        query-wide state)."""
        p = self.path(tenant, query, team)
        with self._lock:
            if team is not None and not state.history:
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
                else:
                    fsync_dir(p.parent)  # the undo or reset that removed the last mark is durable too
                self._cache[(tenant, query, team)] = FeedbackState()
                self._team_set(tenant, query).discard(team)
                return
            p.parent.mkdir(parents=True, exist_ok=True)
            text = state.to_json() if team is None else json.dumps({**state.to_dict(), "team": team}, sort_keys=True)
            write_atomic(p, text.encode(), fsync=True)  # a mark someone made must survive a power loss
            self._cache[(tenant, query, team)] = _copy(state)
            if team is not None:
                self._team_set(tenant, query).add(team)
