"""The modules split for size (grafana.generator.dashboards, exporters.queue.base,
exporters.victoriametrics.convert, hub.simulate.cli) keep their import paths: each name moved out is still
importable from the module that held it and is the very object its new module defines; the classes split
into a mixin inherit its methods unchanged; the new modules' usage examples run."""

from __future__ import annotations

import doctest
import importlib
import importlib.util

import pytest

from tests.helpers.splits import check_listed, check_moved

#: (the module that held the names, the module that holds them now, the names moved)
MOVED: list[tuple[str, str, tuple[str, ...]]] = [
    ("grafana.generator.dashboards", "grafana.generator.queries",
     ("RI", "RANGE", "DUR", "TTFT", "TOKENS", "COST", "THREATS", "VIOLATIONS", "EVALS", "sel", "quantile",
      "error_ratio", "compliance_ratio")),
    ("grafana.generator.dashboards", "grafana.generator.executive", ("executive",)),
    ("grafana.generator.dashboards", "grafana.generator.performance", ("performance",)),
    ("grafana.generator.dashboards", "grafana.generator.cost", ("cost",)),
    ("grafana.generator.dashboards", "grafana.generator.security", ("security",)),
    ("grafana.generator.dashboards", "grafana.generator.governance", ("governance",)),
    ("grafana.generator.dashboards", "grafana.generator.anomalies", ("anomalies",)),
    ("grafana.generator.dashboards", "grafana.generator.correlations", ("correlations",)),
    ("exporters.queue.base", "exporters.queue.batches",
     ("Batch", "encode_batch", "_rows", "_batch_rows", "_tenant_rows", "_select")),
    ("exporters.queue.base", "exporters.queue.tenant_hold", ("_TenantRetry",)),
    ("exporters.victoriametrics.convert", "exporters.victoriametrics.series",
     ("SeriesKey", "Samples", "DURATION_BUCKETS", "TOKEN_BUCKETS", "DEFAULT_BUCKETS", "DEFAULT_LABEL_ATTRIBUTES",
      "INDEXED_LABELS", "_TIME_TO_SECONDS", "_Hist", "_State", "SeriesStats", "_with_name")),
    ("hub.simulate.cli", "hub.simulate.arguments",
     ("MAX_BATCH", "DEFAULT_MAX_AGE_S", "OTLP_AUTO_REQUESTS_PER_S", "_UsageError", "build_parser", "_validate")),
    ("hub.simulate.cli", "hub.simulate.progress",
     ("Progress", "_graceful_interrupt", "_err", "unsent", "explain_unsent")),
    ("hub.simulate.cli", "hub.simulate.correlate", ("ANALYZE_CHUNK_S", "ANALYZE_MIN_S", "correlate_span")),
]  # fmt: skip

NEEDS_SDK = pytest.mark.skipif(
    importlib.util.find_spec("grafana_foundation_sdk") is None,
    reason="grafana-foundation-sdk not installed (pip install 'grafana-foundation-sdk==1769699998!10.1.0')",
)


def _params(items: list[tuple[str, ...]]) -> list[object]:
    """Each item as test arguments; those of grafana.generator need the SDK."""
    return [pytest.param(*item, marks=NEEDS_SDK if item[0].startswith("grafana.") else ()) for item in items]


@pytest.mark.parametrize(("old", "new", "names"), _params(MOVED), ids=[f"{o}->{n}" for o, n, _ in MOVED])
def test_moved_names_are_still_importable_from_their_old_module(old: str, new: str, names: tuple[str, ...]) -> None:
    check_moved(old, new, names)


@pytest.mark.parametrize("old", _params([(o,) for o in sorted({o for o, _, _ in MOVED})]))
def test_a_split_module_lists_the_public_names_moved_out(old: str) -> None:
    check_listed(old, MOVED)


def test_the_queued_exporter_inherits_the_per_tenant_delivery_unchanged() -> None:
    from exporters.queue import base, tenant_hold

    assert base.QueuedExporter.__mro__[1] is tenant_hold.TenantHoldMixin
    for name in ("deliver_by_tenant", "_hold_rows", "_release", "_due", "_not_before", "_load_held",
                 "_should_relocate", "_relocate"):  # fmt: skip
        assert getattr(base.QueuedExporter, name) is getattr(tenant_hold.TenantHoldMixin, name)
    assert tenant_hold.log is base.log  # its log records keep the logger name they had (exporters.queue.base)


def test_the_points_converter_inherits_the_series_key_helpers_unchanged() -> None:
    from exporters.victoriametrics import convert, series

    assert convert.PointsConverter.__mro__[1] is series.SeriesKeyMixin
    for name in ("_bounds_for", "_emit_hist", "_attr_labels", "_key"):
        assert getattr(convert.PointsConverter, name) is getattr(series.SeriesKeyMixin, name)


def test_the_dashboards_keep_their_order_and_factories() -> None:
    pytest.importorskip("grafana_foundation_sdk")
    from grafana.generator import dashboards

    assert list(dashboards.DASHBOARDS) == ["executive-summary", "performance", "cost", "security", "governance",
                                           "anomalies-forecasts", "correlations-incidents"]  # fmt: skip
    assert list(dashboards.DASHBOARDS.values()) == [dashboards.executive, dashboards.performance, dashboards.cost,
                                                    dashboards.security, dashboards.governance, dashboards.anomalies,
                                                    dashboards.correlations]  # fmt: skip


#: the new modules whose docstrings show usage as doctests (exporters and hub.simulate: also in their areas' lists)
DOCTESTED = [(m,) for m in (
    "grafana.generator.dashboards", "grafana.generator.queries", "grafana.generator.executive",
    "grafana.generator.performance", "grafana.generator.cost", "grafana.generator.security",
    "grafana.generator.governance", "grafana.generator.anomalies", "grafana.generator.correlations",
)]  # fmt: skip


@pytest.mark.parametrize("name", _params(DOCTESTED))
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
