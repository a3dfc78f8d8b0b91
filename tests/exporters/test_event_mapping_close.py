"""An exporter's event mapping is not closed under a worker that is still mapping a batch.

Under load an exporter's worker can outlive ``shutdown``'s wait; closing the DuckDB connection it is
using made shutdown raise ``connection is busy with another call`` (seen in ``test_crash.py``'s drain
child) or the worker's batch fail on a closed connection.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import exporters._common as common
from exporters._common import EventMapping
from hubcore.mapping import EVENTS_TO_SPANS_SQL


def test_close_leaves_the_connection_to_a_batch_in_progress_and_closes_it_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = common.run_mapping
    entered, release = threading.Event(), threading.Event()

    def held(con: Any, sql: str, cols: dict[str, list[Any]]) -> dict[str, list[Any]]:
        entered.set()
        release.wait(10)
        con.execute("SELECT 1").fetchall()  # the connection is still open for the batch
        return {"n": [1]}

    monkeypatch.setattr(common, "run_mapping", held)
    mapping = EventMapping(EVENTS_TO_SPANS_SQL)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(mapping({"event_id": ["a"]})))
    worker.start()
    assert entered.wait(10)
    assert mapping.close(wait=0.05) is False  # busy: not closed under the worker
    release.set()
    worker.join(10)
    assert results == [{"n": [1]}]
    monkeypatch.setattr(common, "run_mapping", real)
    assert mapping.close(wait=0.05) is True  # idle now: closed
    assert mapping.close() is True  # and idempotent
