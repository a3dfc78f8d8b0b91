-- Native events that share a correlation_id -> spans of one trace (DESIGN.md: a causal chain in Tempo).
-- trace_id = first 16 bytes of md5(tenant/correlation_id); span_id = first 8 bytes of md5(event_id):
-- deterministic, so a replayed event maps onto the same span. A telemetry duration in ms becomes the
-- span's length, ending at the event's timestamp.
SELECT
    tenant_id,
    CASE WHEN event_type = 'telemetry' AND unit = 'ms' AND value > 0
         THEN ts - to_microseconds(CAST(value * 1000 AS BIGINT)) ELSE ts END AS start_ts,
    ts AS end_ts,
    md5(tenant_id || '/' || correlation_id) AS trace_id,
    substr(md5(event_id), 1, 16) AS span_id,
    CAST(NULL AS VARCHAR) AS parent_span_id,
    event_type || ' ' || coalesce(name, '') AS name,
    'INTERNAL' AS kind,
    CASE WHEN event_type = 'telemetry' AND unit = 'ms' AND value > 0 THEN value ELSE 0.0 END AS duration_ms,
    CASE WHEN status IN ('error', 'fail', 'violation', 'blocked') OR severity IN ('error', 'critical')
         THEN 'ERROR' ELSE 'UNSET' END AS status_code,
    CAST(NULL AS VARCHAR) AS status_message,
    source_module AS service_name,
    model,
    provider,
    json_extract_string(payload, '$.operation') AS operation,
    json_extract_string(payload, '$.error_type') AS error_type,
    event_id,
    CAST(json_object('event.type', event_type, 'event.severity', severity,
                     'correlation_id', correlation_id, 'environment', environment) AS VARCHAR) AS attributes,
    CAST(NULL AS VARCHAR) AS resource,
    CAST(NULL AS VARCHAR) AS events,
    'event' AS source
FROM batch
WHERE correlation_id IS NOT NULL
