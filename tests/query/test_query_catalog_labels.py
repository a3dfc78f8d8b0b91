"""The catalogue's ``metric_labels``: one pass over a sample of points, a full look-up only for what it lacks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hubcore.query.catalog as catalog
from hubcore.storage.embedded import EmbeddedStore
from tests.alerting.conftest import add_events


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "data", wal_fsync=False, flush_interval=0.01)
    s.start()
    yield s
    s.shutdown()


class Recording:
    """The store, recording each statement its cursors run."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.sql: list[str] = []

    def cursor(self) -> Any:
        outer, cur = self, self.store.cursor()

        class Cursor:
            def execute(self, sql: str, params: Any = None) -> Any:
                outer.sql.append(sql)
                return cur.execute(sql, params or [])

            def close(self) -> None:
                cur.close()

        return Cursor()


def test_labels_the_sample_shows_are_not_looked_up_again(store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # every label used to be a look-up of its own over the view of event-derived points (LIMIT 1, which scans
    # until a row has it): 0.6-3 s of the catalogue on two days of simulated traffic
    monkeypatch.setattr(catalog, "SAMPLE_ROWS", 3)
    now = time.time()
    rows = [{"ts": now - 60 + i, "value": 100.0, "payload": {"operation": "chat"}} for i in range(10)]
    rows.append({"ts": now - 30, "value": 100.0, "status": "error", "payload": {"operation": "chat"}})
    add_events(store, rows)
    recording = Recording(store)
    cat = catalog.build_catalog(recording, "acme", since_us=int((now - 3600) * 1e6))  # type: ignore[arg-type]
    # model, team and operation are on every point; error_type on one (inside the sample of 3 or not); the rest
    # on none (no source module, provider, project, environment or token counts)
    assert cat["metric_labels"] == ["model", "operation", "error_type", "team"]
    looked_up = {label for sql in recording.sql for label in catalog._METRIC_LABELS
                 if f"AND {label} IS NOT NULL LIMIT 1" in sql}  # fmt: skip
    assert looked_up & {"model", "operation", "team"} == set()
    assert {"service_name", "provider", "token_type", "project", "environment"} <= looked_up


def test_a_label_outside_the_sample_is_still_listed(store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "SAMPLE_ROWS", 0)  # nothing sampled: every label is looked up
    now = time.time()
    add_events(store, [{"ts": now - 30, "value": 1.0, "status": "error"}])
    cat = catalog.build_catalog(store, "acme", since_us=int((now - 3600) * 1e6))
    assert cat["metric_labels"] == ["model", "error_type", "team"]
    assert catalog.build_catalog(store, "other", since_us=0)["metric_labels"] == []
