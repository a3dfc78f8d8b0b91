"""Modules split for size keep their import paths: each name moved out is still importable from the module
that held it, and is the very object its new module defines (not a copy that could drift)."""

from __future__ import annotations

import pytest

from tests.helpers.splits import check_listed, check_moved

#: (the module that held the names, the module that holds them now, the names moved)
MOVED: list[tuple[str, str, tuple[str, ...]]] = [
    ("analytics.anomaly.ensemble", "analytics.anomaly.inputs", ("SeriesFrame", "fill_gaps", "_naive_utc")),
    ("analytics.anomaly.ensemble", "analytics.anomaly.bands", ("steady_band", "_expected", "_outside_any")),
    ("analytics.anomaly.ensemble", "analytics.anomaly.explain", ("explain", "number")),
    ("analytics.anomaly.ensemble", "analytics.anomaly.voting",
     ("DEFAULT_WEIGHTS", "default_detectors", "weights_from_accuracy", "marked_events", "_trailing_max")),
    ("analytics.correlation.engine", "analytics.correlation.memory",
     ("ADJACENT_US", "MAX_RECALLED_ROWS")),
    ("hubcore.query.model", "hubcore.query.ir",
     ("ALL_TENANTS", "BUCKETS", "DEFAULT_LIMIT", "FUNCTIONS", "KEY_PATTERN", "MAX_BUCKETS", "MAX_IN_VALUES",
      "MAX_LIMIT", "MAX_OFFSET", "MAX_PATH_KEYS", "MAX_RANGE_DAYS", "NUMERIC_COLUMNS", "NUMERIC_OPERATORS",
      "OPERATORS", "STRING_COLUMNS", "STRING_OPERATORS", "Aggregation", "FieldRef", "Filter", "Metric", "Query",
      "QueryError", "SortKey", "TimeRange", "closest_composite", "decode_offset_cursor")),
    ("api.routers.query", "api.routers.query_export",
     ("EXPORT_BATCH_ROWS", "MAX_EXPORT_LIMIT", "export_format", "_streaming", "_truncated", "_export_range",
      "_export_filter", "_export_limit", "_check_repeated")),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "names"), MOVED, ids=[f"{o}->{n}" for o, n, _ in MOVED])
def test_moved_names_are_still_importable_from_their_old_module(old: str, new: str, names: tuple[str, ...]) -> None:
    check_moved(old, new, names)


@pytest.mark.parametrize("old", sorted({o for o, _, _ in MOVED}))
def test_a_split_module_lists_the_public_names_moved_out(old: str) -> None:
    check_listed(old, MOVED)


def test_the_engine_inherits_the_memory_methods_unchanged() -> None:
    from analytics.correlation.engine import CorrelationEngine
    from analytics.correlation.memory import CorrelationMemory

    for name in ("_merge", "_continue_incidents", "_earlier_incidents", "_recall", "_trim", "_changed",
                 "_with_remembered"):  # fmt: skip
        assert getattr(CorrelationEngine, name) is getattr(CorrelationMemory, name)
