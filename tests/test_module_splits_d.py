"""Modules split for size (split-d) keep their import paths: each name moved out is still importable from the
module that held it and is the very object its new module defines; the classes split into mixins inherit
the moved methods unchanged, the moved code logs under its old logger name, and the new modules' usage
examples run."""

from __future__ import annotations

import doctest
import importlib
import logging

import pytest

from tests.helpers.splits import check_listed, check_moved

#: (the module that held the names, the module that holds them now, the names moved)
MOVED: list[tuple[str, str, tuple[str, ...]]] = [
    ("analytics.service.service", "analytics.service.alert_state", ("ALERT_REFRESH_S", "RESCORE_POINTS", "first_changed")),
    ("analytics.service.service", "analytics.service.errors", ("NotFound",)),
    ("analytics.service.service", "analytics.service.cache_metrics", ("_ForecastCacheCollector",)),
    ("analytics.service.service", "analytics.service.warm_pass", ("_warm_up",)),
    ("processors.alerting.service", "processors.alerting.errors", ("AlertConflict", "AlertNotFound")),
    ("processors.alerting.service", "processors.alerting.transitions", ("SOURCE", "AlertmanagerLike")),
    ("api.routers.analytics", "api.routers.analytics_access", ("MAX_BODY", "get_service", "_body", "_answer")),
    ("api.routers.analytics", "api.routers.budget_bodies",
     ("_BUDGET_EXAMPLE", "_NAME_TAKEN", "_NULLABLE", "_budget_tenant", "_check_team", "_left_out", "_name_taken",
      "_stored")),
    ("api.routers.analytics", "api.routers.feedback_scope", ("_check_anomaly_team", "_feedback_team")),
    ("hubcore.storage.embedded", "hubcore.storage.writer", ("_rows",)),
]  # fmt: skip

#: (the class, its mixin, the methods that moved to the mixin)
MIXINS: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("analytics.service.service", "AnalyticsService", "analytics.service.alert_state", "AlertStateMixin",
     ("_alert_rows", "_vanished", "_forget_stale")),
    ("analytics.service.service", "AnalyticsService", "analytics.service.warm_pass", "WarmPassMixin",
     ("_runs_due", "warm_forecasts")),
    ("analytics.service.service", "AnalyticsService", "analytics.service.budget_runs", "BudgetRunsMixin",
     ("run_budgets", "budget_status", "refresh_budget", "delete_budget")),
    ("analytics.service.service", "AnalyticsService", "analytics.service.feedback_ops", "FeedbackOpsMixin",
     ("_team_feedback", "_anomaly", "find_anomaly", "_marked_point", "_check_query", "holds_team", "_rerun",
      "undo_false_positive", "feedback_state", "_marked", "reset_feedback", "mark_false_positive")),
    ("processors.alerting.service", "AlertingService", "processors.alerting.transitions", "TransitionsMixin",
     ("_resolve", "_escalate", "_inhibit", "_am_alert", "_send")),
    ("processors.alerting.service", "AlertingService", "processors.alerting.operations", "AlertOperationsMixin",
     ("list_alerts", "count_inhibited", "get_alert", "acknowledge", "resolve", "receive_webhook")),
    ("hubcore.storage.embedded", "EmbeddedStore", "hubcore.storage.writer", "StoreWriterMixin",
     ("_run_writer", "_apply_each", "_quarantine", "_apply", "_maybe_enforce_retention")),
]  # fmt: skip

#: The new modules whose docstrings hold runnable examples.
DOCTESTED = ["analytics.service.alert_state", "analytics.service.cache_metrics", "analytics.service.errors",
             "processors.alerting.errors", "api.routers.budget_bodies", "hubcore.storage.writer"]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "names"), MOVED, ids=[f"{o}->{n}" for o, n, _ in MOVED])
def test_moved_names_are_still_importable_from_their_old_module(old: str, new: str, names: tuple[str, ...]) -> None:
    check_moved(old, new, names)


@pytest.mark.parametrize("old", sorted({o for o, _, _ in MOVED}))
def test_a_split_module_lists_the_public_names_moved_out(old: str) -> None:
    check_listed(old, MOVED)


@pytest.mark.parametrize(("module", "cls", "mixin_module", "mixin", "methods"), MIXINS,
                         ids=[f"{c}<-{m}" for _, c, _, m, _ in MIXINS])  # fmt: skip
def test_the_class_inherits_the_moved_methods_unchanged(
    module: str, cls: str, mixin_module: str, mixin: str, methods: tuple[str, ...]
) -> None:
    klass = getattr(importlib.import_module(module), cls)
    base = getattr(importlib.import_module(mixin_module), mixin)
    assert base in klass.__mro__
    for name in methods:
        assert name in vars(base), f"{mixin}.{name} is not defined there"
        assert name not in vars(klass), f"{cls}.{name} still defined in {module}"
        assert getattr(klass, name) is getattr(base, name)


@pytest.mark.parametrize(
    ("module", "logger"),
    [("analytics.service.warm_pass", "hub.analytics"), ("analytics.service.budget_runs", "hub.analytics"),
     ("processors.alerting.transitions", "processors.alerting.service"),
     ("hubcore.storage.writer", "hubcore.storage.embedded")],
)  # fmt: skip
def test_moved_code_logs_under_its_old_logger_name(module: str, logger: str) -> None:
    """Log filters and tests that select ``processors.alerting.service`` (caplog) still see the moved records."""
    assert importlib.import_module(module).log is logging.getLogger(logger)


@pytest.mark.parametrize("name", DOCTESTED)
def test_the_usage_examples_of_the_new_modules_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0


def test_the_analytics_routes_keep_their_order() -> None:
    """The router still registers every route itself, in the same order (the OpenAPI schema lists them so)."""
    from api.routers.analytics import router

    routes = [(sorted(r.methods), r.path) for r in router.routes]  # type: ignore[attr-defined]
    assert routes == [
        (["GET"], "/api/v1/anomalies"), (["POST"], "/api/v1/anomalies/{anomaly_id}/feedback"),
        (["DELETE"], "/api/v1/anomalies/{anomaly_id}/feedback"), (["GET"], "/api/v1/anomalies/feedback"),
        (["DELETE"], "/api/v1/anomalies/feedback"), (["GET"], "/api/v1/forecast"), (["POST"], "/api/v1/whatif"),
        (["POST"], "/api/v1/budgets"), (["GET"], "/api/v1/budgets"), (["GET"], "/api/v1/budgets/{budget_id}"),
        (["PUT"], "/api/v1/budgets/{budget_id}"), (["DELETE"], "/api/v1/budgets/{budget_id}"),
        (["GET"], "/api/v1/analytics/series"),
    ]  # fmt: skip
