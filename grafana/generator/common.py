"""Building blocks shared by the hub's dashboards (grafana-foundation-sdk builders).

Everything a dashboard needs that is not specific to one of them lives here: datasource refs with
the fixed uids of ``grafana/provisioning/datasources/datasources.yaml``, the template variables
(tenant, environment, model, team), label filters that use them, drill-down links to Loki and
Tempo in Explore, and small panel factories::

    from grafana.generator.common import F, FM, timeseries_panel, prom

    timeseries_panel("Requests/s", [prom(f"sum by (gen_ai_request_model) (rate(x{{{FM}}}[$__rate_interval]))")])
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Sequence

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import logs as logs_panel_builder
from grafana_foundation_sdk.builders import loki as loki_query
from grafana_foundation_sdk.builders import prometheus as prom_query
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DynamicConfigValue,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.dashboard import Threshold as ThresholdStep

# Fixed datasource uids (grafana/provisioning/datasources/datasources.yaml).
VM_UID = "victoriametrics"
LOKI_UID = "loki"
TEMPO_UID = "tempo"
ALERTMANAGER_UID = "alertmanager"

VM = DataSourceRef(type_val="prometheus", uid=VM_UID)
LOKI = DataSourceRef(type_val="loki", uid=LOKI_UID)
TEMPO = DataSourceRef(type_val="tempo", uid=TEMPO_UID)

#: The template variables every dashboard has, in order (name -> label).
VARIABLES = {"tenant": "Tenant", "environment": "Environment", "model": "Model", "team": "Team"}

#: Label filters (PromQL matchers, without braces) using the template variables.
F = 'tenant_id=~"$tenant", environment=~"$environment"'
FT = F + ', team=~"$team"'
FM = F + ', gen_ai_request_model=~"$model", team=~"$team"'
#: LogQL stream selector matchers for the same variables (Loki stream labels).
LF = 'tenant_id=~"$tenant", environment=~"$environment"'

DASHBOARD_TAG = "llm-hub"


def _variable(name: str, label: str, query: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(VM)
        .query({"query": query, "refId": f"var-{name}", "qryType": 1})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def template_variables() -> list[db.QueryVariable]:
    """tenant -> environment -> model, team (chained: each narrows the next)."""
    return [
        _variable("tenant", "Tenant", "label_values(gen_ai_client_operation_duration_seconds_count, tenant_id)"),
        _variable(
            "environment",
            "Environment",
            'label_values(gen_ai_client_operation_duration_seconds_count{tenant_id=~"$tenant"}, environment)',
        ),
        _variable(
            "model",
            "Model",
            f"label_values(gen_ai_client_operation_duration_seconds_count{{{F}}}, gen_ai_request_model)",
        ),
        _variable("team", "Team", f"label_values(llm_cost_usd_total{{{F}}}, team)"),
    ]


# --------------------------------------------------------------------------- drill-down links

_PLACEHOLDER = re.compile(r"(\$\{[^}]+\})")


def _encode_keeping_placeholders(text: str) -> str:
    """Percent-encode ``text`` but leave Grafana's ``${...}`` interpolations intact."""
    parts = _PLACEHOLDER.split(text)
    return "".join(p if _PLACEHOLDER.fullmatch(p) else urllib.parse.quote(p, safe="") for p in parts)


def explore_url(datasource_uid: str, query: dict[str, object]) -> str:
    """A Grafana Explore URL (``/explore?left=...``) for one query over the clicked time range."""
    left = {
        "datasource": datasource_uid,
        "queries": [{"refId": "A", "datasource": {"uid": datasource_uid}, **query}],
        "range": {"from": "${__from}", "to": "${__to}"},
    }
    return "/explore?orgId=1&left=" + _encode_keeping_placeholders(json.dumps(left, separators=(",", ":")))


def loki_events_link(selector: str, title: str = "Raw events (Loki)") -> db.DashboardLink:
    """Data link to the raw native events in Loki; ``selector`` may use ``${__field.labels.*}``."""
    return (
        db.DashboardLink(title)
        .url(explore_url(LOKI_UID, {"expr": selector + " | json", "queryType": "range"}))
        .target_blank(True)
    )


def tempo_traces_link(traceql: str, title: str = "Traces (Tempo)") -> db.DashboardLink:
    """Data link to Tempo's TraceQL search in Explore."""
    return (
        db.DashboardLink(title)
        .url(explore_url(TEMPO_UID, {"query": traceql, "queryType": "traceql", "limit": 20}))
        .target_blank(True)
    )


def model_drilldown_links(source_module: str = "llm-observatory") -> list[db.DashboardLink]:
    """Links from a series of one model to its raw events and its traces (current variables)."""
    model = "${__field.labels.gen_ai_request_model}"
    selector = (
        f'{{source_module="{source_module}", tenant_id=~"${{tenant:regex}}", '
        f'environment=~"${{environment:regex}}"}} |= "{model}"'
    )
    traceql = f'{{ resource.service.name = "{source_module}" && span.gen_ai.request.model = "{model}" }}'
    return [loki_events_link(selector), tempo_traces_link(traceql)]


def module_events_links(source_module: str, event_type: str) -> list[db.DashboardLink]:
    """Links from a panel about one source module to its raw events and traces."""
    selector = (
        f'{{source_module="{source_module}", event_type="{event_type}", '
        f'tenant_id=~"${{tenant:regex}}", environment=~"${{environment:regex}}"}}'
    )
    traceql = f'{{ resource.service.name = "{source_module}" }}'
    return [loki_events_link(selector), tempo_traces_link(traceql)]


# --------------------------------------------------------------------------- queries


def prom(expr: str, legend: str = "__auto", instant: bool = False) -> prom_query.Dataquery:
    """A VictoriaMetrics (Prometheus-type) query."""
    q = prom_query.Dataquery().expr(_squash(expr)).legend_format(legend).datasource(VM)
    return q.instant() if instant else q.range()


def loki(expr: str, legend: str = "", instant: bool = False) -> loki_query.Dataquery:
    """A Loki query (log or metric LogQL)."""
    q = loki_query.Dataquery().expr(_squash(expr)).datasource(LOKI)
    if legend:
        q = q.legend_format(legend)
    return q.instant(True).range(False) if instant else q.range(True)


def _squash(expr: str) -> str:
    return " ".join(expr.split())


# --------------------------------------------------------------------------- panels


def _with_targets(panel, targets: Sequence[object]):  # type: ignore[no-untyped-def]
    for target in targets:
        panel = panel.with_target(target)
    return panel


def timeseries_panel(
    title: str,
    targets: Sequence[object],
    *,
    unit: str = "short",
    description: str = "",
    links: Sequence[db.DashboardLink] = (),
    stacked: bool = False,
    bars: bool = False,
    span: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(VM)
        .unit(unit)
        .span(span)
        .height(height)
        .fill_opacity(20 if stacked else 10)
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
    )
    if stacked:
        panel = panel.stacking(_stacking_normal())
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS)
    if links:
        panel = panel.data_links(list(links))
    return _with_targets(panel, targets)


def _stacking_normal():  # type: ignore[no-untyped-def]
    from grafana_foundation_sdk.builders.common import StackingConfig

    return StackingConfig().mode(StackingMode.NORMAL)


def band_panel(
    title: str,
    actual: object,
    yhat: object,
    lower: object,
    upper: object,
    *,
    unit: str = "short",
    description: str = "",
    links: Sequence[db.DashboardLink] = (),
    span: int = 12,
) -> timeseries.Panel:
    """Actual vs forecast: ``yhat`` line with the ``[yhat_lower, yhat_upper]`` band shaded."""
    panel = timeseries_panel(
        title, [actual, yhat, lower, upper], unit=unit, description=description, links=links, span=span
    )
    return (
        panel.override_by_regexp(
            "^yhat_lower.*",
            [
                DynamicConfigValue(id_val="custom.fillBelowTo", value="yhat_upper"),
                DynamicConfigValue(id_val="custom.lineWidth", value=0),
                DynamicConfigValue(id_val="custom.fillOpacity", value=25),
                DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"}),
            ],
        )
        .override_by_regexp(
            "^yhat_upper.*",
            [
                DynamicConfigValue(id_val="custom.lineWidth", value=0),
                DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "blue"}),
            ],
        )
        .override_by_regexp(
            "^yhat .*",
            [
                DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
            ],
        )
    )


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([ThresholdStep(value=v, color=c) for v, c in steps])
    )


def stat_panel(
    title: str,
    target: object,
    *,
    unit: str = "short",
    description: str = "",
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    links: Sequence[db.DashboardLink] = (),
    span: int = 4,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(VM)
        .unit(unit)
        .span(span)
        .height(4)
        .graph_mode(BigValueGraphMode.AREA)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(*steps))
    )
    if links:
        panel = panel.data_links(list(links))
    return panel.with_target(target)


def table_panel(
    title: str,
    targets: Sequence[object],
    *,
    unit: str = "short",
    description: str = "",
    links: Sequence[db.DashboardLink] = (),
    span: int = 12,
    datasource: DataSourceRef = VM,
) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .unit(unit)
        .span(span)
        .height(8)
        .with_transformation(
            _transformation("reduce", {"reducers": ["lastNotNull"], "mode": "seriesToRows", "labelsToFields": True})
        )
    )
    if links:
        panel = panel.data_links(list(links))
    return _with_targets(panel, targets)


def _transformation(id_: str, options: dict[str, object]):  # type: ignore[no-untyped-def]
    from grafana_foundation_sdk.models.dashboard import DataTransformerConfig

    return DataTransformerConfig(id_val=id_, options=options)


def bargauge_panel(
    title: str,
    target: object,
    *,
    unit: str = "percentunit",
    description: str = "",
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    max_value: float | None = None,
    span: int = 12,
) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(VM)
        .unit(unit)
        .span(span)
        .height(8)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(*steps))
    )
    if max_value is not None:
        panel = panel.max(max_value)
    return panel.with_target(target)


def logs_panel(title: str, expr: str, *, description: str = "", span: int = 24) -> logs_panel_builder.Panel:
    return (
        logs_panel_builder.Panel()
        .title(title)
        .description(description)
        .datasource(LOKI)
        .span(span)
        .height(10)
        .show_time(True)
        .wrap_log_message(True)
        .prettify_log_message(False)
        .enable_log_details(True)
        .with_target(loki(expr))
    )


def new_dashboard(uid: str, title: str, description: str, extra_tags: Sequence[str] = ()) -> db.Dashboard:
    """A dashboard with the common variables, time range, tags and links to its siblings."""
    d = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([DASHBOARD_TAG, *extra_tags])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .readonly()
        .link(
            db.DashboardLink("LLM Hub dashboards")
            .type("dashboards")
            .tags([DASHBOARD_TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .annotation(
            db.AnnotationQuery()
            .name("Critical alerts")
            .datasource(VM)
            .enable(True)
            .icon_color("red")
            .expr('ALERTS{alertstate="firing", severity="critical", tenant_id=~"$tenant"}')
        )
    )
    for variable in template_variables():
        d = d.with_variable(variable)
    return d
