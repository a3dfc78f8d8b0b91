"""Stored incidents: a correlation belongs to the incident computed last (no stale duplicates)."""

from __future__ import annotations

import json
from pathlib import Path

from analytics.correlation.model import Correlation, Incident
from analytics.correlation.persist import CorrelationRepository
from hubcore.storage.embedded import EmbeddedStore


def _corr(cid: str) -> Correlation:
    return Correlation(cid, "causal_chain", "t", [f"e-{cid}"], ["llm-sentinel"], 0.9, "x", 1_000_000, 2_000_000)


def _inc(iid: str, cids: list[str]) -> Incident:
    return Incident(iid, "t", cids, ["causal_chain"], [f"e-{c}" for c in cids], 1_000_000, 2_000_000, 0.9, iid)


def test_a_correlation_moves_to_the_incident_computed_last(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        repo = CorrelationRepository(store, export=False)
        repo.create_tables()
        c1, c2, c3 = _corr("c1"), _corr("c2"), _corr("c3")
        repo.save([c1, c2], [_inc("old", ["c1", "c2"])], {})
        # the window slid: c1 is now part of an incident with another root (so another id)
        repo.save([c1, c3], [_inc("new", ["c1", "c3"])], {})

        def incidents() -> dict[str, list[str]]:
            rows = store.cursor().execute("SELECT id, correlation_ids FROM incidents ORDER BY id").fetchall()
            return {i: json.loads(c) for i, c in rows}

        assert incidents() == {"new": ["c1", "c3"], "old": ["c2"]}  # before: "old" kept c1 too
        repo.save([c2], [_inc("newer", ["c2"])], {})
        assert incidents() == {"new": ["c1", "c3"], "newer": ["c2"]}  # an incident left with none is gone
        other = Incident("o", "other-tenant", ["c1"], ["causal_chain"], [], 0, 1, 0.5, "o")
        repo.save([], [other], {})
        assert "new" in incidents() and "o" in incidents()  # tenants are separate
    finally:
        store.shutdown()


def test_a_stored_correlation_always_names_its_current_incident(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        repo = CorrelationRepository(store, export=False)
        repo.create_tables()

        def owners() -> dict[str, str | None]:
            return {c["id"]: c["incident_id"] for c in repo.list_correlations("t", None, None, None)}

        c1, c2 = _corr("c1"), _corr("c2")
        repo.save([c1, c2], [_inc("i1", ["c1"]), _inc("i2", ["c2"])], {})
        assert owners() == {"c1": "i1", "c2": "i2"}
        # c1 changed (more events), its incident did not (the engine saves only incidents that changed):
        # its row had been rewritten with no incident (GET /incidents/None: 404)
        c1.event_ids.append("e-late")
        repo.save([c1], [], {}, incident_of={"c1": "i1", "c2": "i2"})
        assert owners() == {"c1": "i1", "c2": "i2"}
        # the two merged into an incident with a new id, neither correlation changed: both follow it (they had
        # kept naming i1 and i2, deleted since)
        repo.save([], [_inc("i3", ["c1", "c2"])], {})
        assert owners() == {"c1": "i3", "c2": "i3"}
        assert [i["id"] for i in repo.list_incidents("t")] == ["i3"]
    finally:
        store.shutdown()
