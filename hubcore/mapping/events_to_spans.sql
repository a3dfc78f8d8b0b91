-- Native events -> spans (DESIGN.md: events that share a correlation_id are one trace, a causal chain in Tempo).
-- trace_id: the trace id of the event's W3C `traceparent` tag when it has a valid one (the event joins that
-- real trace, under the traceparent's span); else first 16 bytes of md5(tenant/correlation_id), and the event
-- hangs under its trace's synthetic root span (one per tenant and correlation_id, span id = first 8 bytes of
-- md5('root/' || tenant/correlation_id), named 'correlation', spanning the events it was made from).
-- span_id = first 8 bytes of md5(event_id). Every id is deterministic, so a replayed event maps onto the same
-- spans. The store keeps the first 32 bits of each event's trace id in events.trace_key
-- (hubcore.mapping.EVENT_TRACE_KEY_SQL): a trace's events are found by that column, not by hashing every event.
-- A telemetry duration in ms becomes the span's length, ending at the event's timestamp.
WITH tp AS (SELECT *, @TRACEPARENT@ AS traceparent FROM batch),
ev AS (
    SELECT *,
        @TRACE_ID_OF_TRACEPARENT@ AS span_trace_id,
        CASE WHEN event_type = 'telemetry' AND unit = 'ms' AND value > 0
             THEN ts - to_microseconds(CAST(value * 1000 AS BIGINT)) ELSE ts END AS span_start_ts
    FROM tp
),
mapped AS (SELECT * FROM ev WHERE span_trace_id IS NOT NULL)
SELECT
    tenant_id,
    span_start_ts AS start_ts,
    ts AS end_ts,
    span_trace_id AS trace_id,
    substr(md5(event_id), 1, 16) AS span_id,
    coalesce(substr(traceparent, 37, 16), @ROOT_SPAN_ID@) AS parent_span_id,
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
FROM mapped
UNION ALL
SELECT
    tenant_id,
    min(span_start_ts) AS start_ts,
    max(ts) AS end_ts,
    any_value(span_trace_id) AS trace_id,
    @ROOT_SPAN_ID@ AS span_id,
    CAST(NULL AS VARCHAR) AS parent_span_id,
    'correlation' AS name,
    'INTERNAL' AS kind,
    CAST(epoch_us(max(ts)) - epoch_us(min(span_start_ts)) AS DOUBLE) / 1000 AS duration_ms,
    'UNSET' AS status_code,
    CAST(NULL AS VARCHAR) AS status_message,
    'llm-analytics-hub' AS service_name,
    CAST(NULL AS VARCHAR) AS model,
    CAST(NULL AS VARCHAR) AS provider,
    CAST(NULL AS VARCHAR) AS operation,
    CAST(NULL AS VARCHAR) AS error_type,
    CAST(NULL AS VARCHAR) AS event_id,
    CAST(json_object('correlation_id', correlation_id, 'hub.synthetic', true,
                     'hub.event_count', count(*)) AS VARCHAR) AS attributes,
    CAST(NULL AS VARCHAR) AS resource,
    CAST(NULL AS VARCHAR) AS events,
    'event_root' AS source
FROM mapped
WHERE traceparent IS NULL
GROUP BY tenant_id, correlation_id
