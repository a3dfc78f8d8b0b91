"""The causal chain's base-rate test: two busy modules that fail independently share requests by chance,
and those coincidences are no chain; a real, lagged dependence between them is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics.correlation import EngineConfig, build_frame, detect_all
from analytics.correlation.detect_sequences import CHAIN_MIN_REQUESTS, chain_base_rate, detect_causal_chains
from analytics.correlation.model import Correlation
from analytics.correlation.persist import CorrelationRepository
from analytics.correlation.scenarios import SCENARIOS, Dims, busy_independent_traffic, lagged_dependent_traffic
from hubcore.storage.embedded import EmbeddedStore
from tests.correlation._data import T0, process


def _chains(events: list[dict[str, Any]]) -> list[Correlation]:
    return detect_all(build_frame(process(events)), "t1", EngineConfig(), types=["causal_chain"])


@pytest.mark.parametrize("seed", [0, 1])
def test_two_independent_busy_modules_give_no_chain(seed: int) -> None:
    busy = busy_independent_traffic(np.random.default_rng(seed), T0, T0 + 60)
    df = build_frame(process(busy.events))
    ab = df[df["abnormal"].to_numpy()]
    both = int((ab.groupby("correlation_id")["source_module"].nunique() >= 2).sum())
    assert both >= 30  # plenty of chance co-occurrences: each had been reported as a causal chain
    assert detect_all(df, "t1", EngineConfig(), types=["causal_chain"]) == []


def test_a_lagged_dependence_between_the_same_modules_is_a_chain_with_its_evidence() -> None:
    lag = lagged_dependent_traffic(np.random.default_rng(2), T0, T0 + 60)
    chains = _chains(lag.events)
    truth = set(lag.truth.event_ids)
    linked = {e for c in chains for e in c.event_ids}
    assert chains and len(truth & linked) == len(truth)
    assert all(c.root_event_id in truth for c in chains)  # rooted at the policy failure, not the error
    ev = chains[0].evidence
    assert ev["verdict"] == "significant" and ev["test"] == "base_rate"
    assert ev["lift"] >= 3 and ev["p_adjusted"] < 0.01 and ev["observed"] == len(truth) // 2
    assert set(ev["module_requests"]) == {"llm-policy-engine", "llm-observatory"}
    assert ev["expected"] == pytest.approx(
        ev["requests"] * np.prod([n / ev["requests"] for n in ev["module_requests"].values()]), rel=1e-3)


def test_an_injected_chain_in_normal_traffic_passes_the_test(noise_events: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(3)
    inj = SCENARIOS["security_chain"](rng, T0 + 30.0, Dims.pick(rng, 4))
    (chain,) = [c for c in _chains([*noise_events, *inj.events]) if set(inj.truth.event_ids) <= set(c.event_ids)]
    assert chain.evidence["verdict"] == "significant" and chain.evidence["observed"] == 1
    assert chain.evidence["expected"] < 0.01


def test_a_coincidence_in_busy_traffic_is_dropped_but_kept_where_the_modules_are_quiet() -> None:
    # the same request (a policy failure, then an error) in two kinds of traffic
    # rows: the requests with trouble (of 1,000), columns: the modules that reported it
    busy = pd.DataFrame({"a": [True] * 301 + [False] * 300, "b": [True] + [False] * 300 + [True] * 300})
    ev = chain_base_rate(busy, 1000, frozenset({"a", "b"}))
    assert ev["observed"] == 1 and ev["expected"] == pytest.approx(301 * 301 / 1000, rel=1e-3)
    assert ev["lift"] < 1 and ev["p_value"] > 0.5
    quiet = chain_base_rate(pd.DataFrame({"a": [True], "b": [True]}), 1000, frozenset({"a", "b"}))
    assert quiet["lift"] == 1000.0 and quiet["p_value"] < 0.01
    assert chain_base_rate(busy, 1000, frozenset({"a", "c"}))["observed"] == 0  # a module with no trouble


def test_too_few_requests_to_estimate_base_rates_keep_the_chain_untested() -> None:
    rng = np.random.default_rng(4)
    inj = SCENARIOS["security_chain"](rng, T0 + 5.0, Dims.pick(rng, 1))
    (chain,) = _chains(inj.events)
    assert chain.evidence == {"test": "base_rate", "requests": 1, "verdict": "untested"}
    assert CHAIN_MIN_REQUESTS > 1


def test_stricter_settings_drop_what_defaults_keep_and_bad_settings_are_refused() -> None:
    lag = lagged_dependent_traffic(np.random.default_rng(5), T0, T0 + 60)
    df = build_frame(process(lag.events))
    assert detect_causal_chains(df, "t1", 60.0)
    assert detect_causal_chains(df, "t1", 60.0, min_lift=1e6) == []
    for kwargs, name in (({"chain_alpha": 0.0}, "chain_alpha"), ({"chain_alpha": 1.5}, "chain_alpha"),
                         ({"chain_min_lift": 0.5}, "chain_min_lift")):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            EngineConfig(**kwargs)  # type: ignore[arg-type]


def test_evidence_is_stored_and_an_older_table_gains_the_column(tmp_path: Path) -> None:
    lag = lagged_dependent_traffic(np.random.default_rng(6), T0, T0 + 60)
    chains = _chains(lag.events)
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        cur = store.cursor()  # the table as it was before the evidence column, with a row in it
        cur.execute("""CREATE TABLE correlations (
  tenant_id VARCHAR, id VARCHAR, type VARCHAR, start_ts TIMESTAMP, end_ts TIMESTAMP, confidence DOUBLE,
  modules VARCHAR, event_ids VARCHAR, root_event_id VARCHAR, explanation VARCHAR, impact VARCHAR,
  dimensions VARCHAR, incident_id VARCHAR, updated_at TIMESTAMP, PRIMARY KEY (tenant_id, id))""")
        cur.execute("INSERT INTO correlations VALUES ('t1', 'old', 'pattern', make_timestamp(1), make_timestamp(2), "
                    "0.6, '[]', '[]', NULL, 'x', '{}', '{}', NULL, make_timestamp(3))")  # fmt: skip
        repo = CorrelationRepository(store, export=False)
        repo.create_tables()
        repo.create_tables()  # idempotent
        repo.save(chains, [], {})
        rows = {r["id"]: r for r in repo.list_correlations("t1", None, None, None, limit=5000)}
        assert rows["old"]["evidence"] == {}
        assert rows[chains[0].id]["evidence"] == chains[0].evidence
        (loaded,) = repo.load_correlations("t1", [chains[0].id])
        assert loaded.evidence == chains[0].evidence
    finally:
        store.shutdown()



def test_the_streaming_engine_reports_no_chain_on_busy_independent_traffic() -> None:
    from analytics.correlation.evaluate import chance_chains

    assert chance_chains(1, 30.0) == 0
