"""RCA on incidents that are not among the evaluation scenarios (no detector or ranker knows them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from analytics.correlation import CorrelationEngine, build_frame
from analytics.correlation.scenarios import Dims, _Builder, _u
from tests.correlation._data import T0, with_incident


def _top(noise: list[dict[str, Any]], events: list[dict[str, Any]], truth: list[str]) -> tuple[set[str], list[str]]:
    from analytics.correlation.scenarios import Injected, Truth

    inj = Injected(events, Truth("unseen", "", truth, truth[0]))
    res = CorrelationEngine(None).analyze_frame(build_frame(with_incident(noise, inj)), "t1")
    s = set(truth)
    best = max(res.incidents, key=lambda i: len(s & set(i.event_ids)))
    types = {c.type for c in res.correlations if s & set(c.event_ids)}
    return types, [h["evidence"][0] for h in res.hypotheses[best.id]]


def test_user_abuse_then_phi_violations_then_policy_fails(noise_events: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(21)
    d = Dims.pick(rng, 5, model=3)
    b, u, t = _Builder(rng, d), d.users[1], T0 + 35
    ids = [b.security(t + 5 * k, "jailbreak", corr=b.uid(), user=u, ip="10.9.9.9") for k in range(3)]
    ids += [b.security(t + 15 + 3 * k, "pii_leak", corr=b.uid(), user=u, ip="10.9.9.9") for k in range(2)]
    ids += [b.violation(t + 20 + 4 * k, "gov-phi-handling", corr=b.uid(), user=u) for k in range(3)]
    ids += [b.policy(t + 22 + 3 * k, "pol-pii-redaction", "fail", corr=b.uid(), user=u) for k in range(4)]
    types, roots = _top(noise_events, b.events, ids)
    assert {"security_incident", "compliance_cascade"} <= types
    assert roots[0] == ids[0]


def test_cache_slowdown_then_api_errors(noise_events: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(22)
    b = _Builder(rng, Dims("doc-qa", "research", "claude-3-haiku", "anthropic", "asset-claude-3-haiku", ["u1"], "", ""))
    truth: list[str] = []
    for s in np.sort(rng.uniform(T0, T0 + 85, 250)):
        corr, bad = b.uid(), T0 + 40 <= s < T0 + 70
        c = _u(rng, 1, 3) * (15 if bad else 1)
        e1 = b.telemetry(s, c, corr=corr, metric="cache.get.duration", service="redis-cache")
        fail = bad and s > T0 + 46 and rng.random() < 0.5
        e2 = b.telemetry(s + c / 1000 + 0.05, _u(rng, 50, 120) + c, corr=corr, metric="http.server.request.duration",
                         service="search-api", error="upstream_timeout" if fail else None)  # fmt: skip
        if bad:
            truth += [e1, e2] if fail else [e1]
    types, roots = _top(noise_events, b.events, truth)
    assert "performance_degradation" in types
    assert roots[0] == truth[0]


def test_model_deprecation_then_errors(noise_events: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(23)
    d = Dims.pick(rng, 7, model=5)
    b, t = _Builder(rng, d), T0 + 30
    meta = {"asset_id": d.asset_id, "asset_type": "model", "name": d.model, "action": "deprecated", "version": "old"}
    ids = [b.add("llm-registry", "metadata", t, meta)]
    for s in np.sort(rng.uniform(3, 25, 12)):
        corr = b.uid()
        ids.append(b.telemetry(t + s, _u(rng, 20, 80), corr=corr, error="model_not_found"))
        ids.append(b.policy(t + s + 0.2, "pol-model-allowlist", "fail", corr=corr))
    types, roots = _top(noise_events, b.events, ids)
    assert "anomaly" in types
    assert roots[0] == ids[0]
