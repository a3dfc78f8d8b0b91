"""Exporters: where the hub's signals go.

* ``embedded`` — the DuckDB store (the default).
* ``victoriametrics`` (Prometheus remote write), ``loki`` (push API), ``tempo`` (OTLP/HTTP) and
  ``alertmanager`` (``/api/v2/alerts``) — stack mode, each behind a bounded on-disk queue
  (``queue/``) with retries, splitting and a dead-letter file.
"""
