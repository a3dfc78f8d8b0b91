-- Native events -> OTel metric points. Input: a relation named `batch` with the columns of `events`.
-- telemetry  -> one observation of payload.metric_name (histogram/gauge input), plus token-usage
--               observations (gen_ai.client.token.usage, gen_ai.token.type) when the payload has tokens
-- cost       -> delta of the monotonic counter llm.cost.usd by model/project/team/cost_type
-- security   -> +1 on llm.security.threats by threat_type/threat_level/action
-- governance -> +1 on llm.governance.violations (violations only)
-- policy     -> +1 on llm.policy.evaluations by policy and result
-- metadata   -> llm.registry.asset.info = 1 (an info series)
SELECT
    tenant_id,
    ts,
    CAST(NULL AS TIMESTAMP) AS start_ts,
    CASE event_type
        WHEN 'telemetry' THEN name
        WHEN 'cost' THEN 'llm.cost.usd'
        WHEN 'security' THEN 'llm.security.threats'
        WHEN 'governance' THEN 'llm.governance.violations'
        WHEN 'policy' THEN 'llm.policy.evaluations'
        ELSE 'llm.registry.asset.info'
    END AS name,
    CASE event_type WHEN 'telemetry' THEN 'observation' WHEN 'metadata' THEN 'gauge' ELSE 'sum' END AS kind,
    CASE WHEN event_type IN ('telemetry', 'metadata') THEN '' ELSE 'delta' END AS temporality,
    event_type NOT IN ('telemetry', 'metadata') AS monotonic,
    CASE WHEN event_type IN ('telemetry', 'cost') THEN value ELSE 1.0 END AS value,
    CAST(NULL AS BIGINT) AS count,
    CAST(NULL AS DOUBLE) AS sum,
    CAST(NULL AS DOUBLE) AS min,
    CAST(NULL AS DOUBLE) AS max,
    CAST(NULL AS DOUBLE[]) AS bounds,
    CAST(NULL AS BIGINT[]) AS bucket_counts,
    CASE event_type WHEN 'telemetry' THEN unit WHEN 'cost' THEN 'USD' ELSE '1' END AS unit,
    source_module AS service_name,
    model,
    provider,
    json_extract_string(payload, '$.operation') AS operation,
    CAST(NULL AS VARCHAR) AS token_type,
    CASE WHEN event_type = 'telemetry' AND status = 'error'
         THEN coalesce(json_extract_string(payload, '$.error_type'), '_OTHER') END AS error_type,
    team,
    project,
    environment,
    CAST(CASE event_type
        WHEN 'telemetry' THEN coalesce(json_extract(payload, '$.dimensions'), '{}')
        WHEN 'cost' THEN json_object('cost_type', name)
        WHEN 'security' THEN json_object('threat_type', name,
                                         'threat_level', json_extract_string(payload, '$.threat_level'),
                                         'action', status)
        WHEN 'governance' THEN json_object('policy_id', name,
                                           'violation_type', json_extract_string(payload, '$.violation_type'),
                                           'regulation', json_extract_string(payload, '$.regulation'))
        WHEN 'policy' THEN json_object('policy_id', name, 'result', status)
        ELSE json_object('asset_id', asset_id,
                         'asset_type', json_extract_string(payload, '$.asset_type'),
                         'name', name,
                         'version', json_extract_string(payload, '$.version'))
    END AS VARCHAR) AS attributes,
    CAST(NULL AS VARCHAR) AS resource,
    'event' AS source
FROM batch
WHERE event_type <> 'governance' OR status = 'violation'
UNION ALL
SELECT
    tenant_id, ts, CAST(NULL AS TIMESTAMP), 'gen_ai.client.token.usage', 'observation', '', false,
    CAST(input_tokens AS DOUBLE), NULL, NULL, NULL, NULL, NULL, NULL, '{token}', source_module, model, provider,
    json_extract_string(payload, '$.operation'), 'input', NULL, team, project, environment,
    CAST(coalesce(json_extract(payload, '$.dimensions'), '{}') AS VARCHAR), NULL, 'event'
FROM batch
WHERE event_type = 'telemetry' AND input_tokens IS NOT NULL AND name <> 'gen_ai.client.token.usage'
UNION ALL
SELECT
    tenant_id, ts, CAST(NULL AS TIMESTAMP), 'gen_ai.client.token.usage', 'observation', '', false,
    CAST(output_tokens AS DOUBLE), NULL, NULL, NULL, NULL, NULL, NULL, '{token}', source_module, model, provider,
    json_extract_string(payload, '$.operation'), 'output', NULL, team, project, environment,
    CAST(coalesce(json_extract(payload, '$.dimensions'), '{}') AS VARCHAR), NULL, 'event'
FROM batch
WHERE event_type = 'telemetry' AND output_tokens IS NOT NULL AND name <> 'gen_ai.client.token.usage'
