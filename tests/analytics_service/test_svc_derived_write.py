"""DerivedRepository.write: one stored row per (tenant, time, name, labels), the newest write winning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.service.derived import DerivedRepository, DerivedRow
from hubcore.storage.embedded import EmbeddedStore

LABELS = {"for": "q", "model_alias": "m", "model": "gpt-4o"}


@pytest.fixture()
def repo(tmp_path: Path) -> Iterator[DerivedRepository]:
    store = EmbeddedStore(str(tmp_path), wal_fsync=False)
    store.start()
    try:
        yield DerivedRepository(store)
    finally:
        store.shutdown()


def _rows(repo: DerivedRepository) -> list[tuple[str, float, str, float]]:
    cur = repo.store.cursor()
    try:
        got = cur.execute(
            "SELECT tenant_id, epoch(ts), name, value FROM derived_series ORDER BY tenant_id, ts, name, value"
        ).fetchall()
    finally:
        cur.close()
    return [(t, float(ts), n, float(v)) for t, ts, n, v in got]


def test_a_rewrite_replaces_the_row_of_the_same_key_and_leaves_others(repo: DerivedRepository) -> None:
    assert repo.write([DerivedRow("t", 60.0, "anomaly_score", 88.65, LABELS, "anomaly"),
                       DerivedRow("t", 120.0, "anomaly_score", 1.0, LABELS, "anomaly"),
                       DerivedRow("u", 60.0, "anomaly_score", 5.0, LABELS, "anomaly")]) == 3  # fmt: skip
    assert repo.write([DerivedRow("t", 60.0, "anomaly_score", 38.45, LABELS, "anomaly")]) == 1
    assert _rows(repo) == [("t", 60.0, "anomaly_score", 38.45), ("t", 120.0, "anomaly_score", 1.0),
                           ("u", 60.0, "anomaly_score", 5.0)]  # fmt: skip


def test_other_labels_or_names_at_the_same_time_are_other_rows(repo: DerivedRepository) -> None:
    repo.write([DerivedRow("t", 60.0, "yhat", 1.0, LABELS, "anomaly")])
    repo.write([DerivedRow("t", 60.0, "yhat", 2.0, {**LABELS, "model": "claude"}, "anomaly"),
                DerivedRow("t", 60.0, "yhat_upper", 3.0, LABELS, "anomaly")])  # fmt: skip
    assert [r[3] for r in _rows(repo)] == [1.0, 2.0, 3.0]


def test_of_rows_repeating_a_key_in_one_write_the_last_is_kept(repo: DerivedRepository) -> None:
    written = repo.write([DerivedRow("t", 60.0, "anomaly_score", 1.0, LABELS, "anomaly"),
                          DerivedRow("t", 60.0, "anomaly_score", 2.0, dict(reversed(list(LABELS.items()))), "anomaly"),
                          DerivedRow("t", 120.0, "anomaly_score", 7.0, LABELS, "anomaly")])  # fmt: skip
    assert written == 2
    assert _rows(repo) == [("t", 60.0, "anomaly_score", 2.0), ("t", 120.0, "anomaly_score", 7.0)]


def test_nan_values_are_not_written_and_do_not_delete(repo: DerivedRepository) -> None:
    repo.write([DerivedRow("t", 60.0, "anomaly_score", 3.0, LABELS, "anomaly")])
    assert repo.write([DerivedRow("t", 60.0, "anomaly_score", float("nan"), LABELS, "anomaly")]) == 0
    assert _rows(repo) == [("t", 60.0, "anomaly_score", 3.0)]
