"""Exporters: where the hub's signals go. ``embedded`` (DuckDB, the default) is here now; the stack
exporters (VictoriaMetrics remote write, Loki push, Tempo OTLP, Alertmanager) come with issue 3."""
