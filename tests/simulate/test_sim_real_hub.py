"""``hub simulate`` against the real hub (API + OTLP/HTTP receiver + embedded store), in-process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hub.simulate.cli import main

hub_helpers = pytest.importorskip("tests.helpers.hub", reason="the hub service is not available")


def test_everything_sent_is_stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with hub_helpers.running_hub(tmp_path / "hub", grpc=False, otlp_http=True) as hub:
        code = main(["--api", hub.api, "--otlp", hub.otlp_http, "--count", "5000", "--rate", "50000", "--unpaced",
                     "--tenant", "acme", "--seed", "8", "--otlp-sample", "1", "--span-sample", "0.05", "--quiet",
                     "--scenario", "injection_burst:start=0,length=1", "--truth", str(tmp_path / "truth.json")])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        s = json.loads(out.strip().splitlines()[-1])
        assert s["accepted"] == 5000 and s["rejected"] == 0 and s["status_counts"] == {"202": 10}
        rows = dict(hub.sql("SELECT event_type, count(*) FROM events WHERE tenant_id = 'acme' GROUP BY 1"))
        assert rows == s["events_by_type"]
        truth = json.loads((tmp_path / "truth.json").read_text())
        ids = truth["event_ids"]
        assert ids
        found = hub.sql("SELECT count(*) FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
        assert found[0][0] == len(ids)


def test_grpc_receiver(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("receivers.native_grpc.client")
    with hub_helpers.running_hub(tmp_path / "hub", grpc=True, otlp_http=False) as hub:
        target = hub.grpc_target  # the native EventIngestionService shares the OTLP gRPC server
        code = main(["--grpc", target, "--count", "3000", "--batch", "1000", "--rate", "1000", "--unpaced",
                     "--tenant", "acme", "--quiet", "--concurrency", "2"])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        s = json.loads(out.strip().splitlines()[-1])
        assert s["mode"] == "grpc" and s["accepted"] == 3000 and s["status_counts"] == {"OK": 3}
        assert hub.sql("SELECT count(*) FROM events WHERE tenant_id = 'acme'")[0][0] == 3000


def test_a_traced_request_is_one_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--otlp``: the events of each request sent as spans carry a traceparent in that trace, so ``GET
    /api/v1/traces/{id}`` has exactly one root (the gateway's); the other requests' events have none."""
    import httpx

    with hub_helpers.running_hub(tmp_path / "hub", grpc=False, otlp_http=True) as hub:
        code = main(["--api", hub.api, "--otlp", hub.otlp_http, "--count", "400", "--batch", "37", "--rate", "5000",
                     "--unpaced", "--tenant", "acme", "--seed", "3", "--otlp-sample", "1", "--span-sample", "0.3",
                     "--quiet"])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        s = json.loads(out.strip().splitlines()[-1])
        assert s["accepted"] == 400 and s["otlp"]["traces"] > 5 and s["otlp"]["export_failures"]["traces"] == 0
        rows = hub.sql("SELECT correlation_id, event_type, json_extract_string(tags, '$.traceparent') FROM events "
                       "WHERE tenant_id = 'acme' AND correlation_id IS NOT NULL")  # fmt: skip
        span_traces = {t for (t,) in hub.sql("SELECT DISTINCT trace_id FROM spans WHERE tenant_id = 'acme'")}
        assert len(span_traces) == s["otlp"]["traces"]
        traced: dict[str, set[str]] = {}
        for corr, _etype, tp in rows:
            if tp is not None:
                traced.setdefault(corr, set()).add(tp.split("-")[1])
        # every event of a traced request names the trace of the request's OTLP spans; no other event has one
        assert {t for ts in traced.values() for t in ts} == span_traces
        assert all(len(ts) == 1 for ts in traced.values())
        untraced = {corr for corr, _e, tp in rows if tp is None}
        assert untraced and not untraced & set(traced)
        headers = {"X-Scope-OrgID": "acme"}
        for corr, (tid,) in list(traced.items())[:5]:
            body = httpx.get(f"{hub.api}/api/v1/traces/{tid}", headers=headers, timeout=10).json()
            roots = [sp for sp in body["spans"] if sp["parent_span_id"] is None]
            assert [(r["service_name"], r["source"]) for r in roots] == [("llm-gateway", "otlp")], (corr, roots)
            ids = {sp["span_id"] for sp in body["spans"]}
            assert all(sp["parent_span_id"] in ids for sp in body["spans"] if sp is not roots[0])
            assert sum(sp["source"] == "event" for sp in body["spans"]) == sum(c == corr for c, _e, _t in rows)
        # a request without spans keeps its events under the synthetic correlation root
        corr = sorted(untraced)[0]
        tid = hashlib.md5(f"acme/{corr}".encode()).hexdigest()
        body = httpx.get(f"{hub.api}/api/v1/traces/{tid}", headers=headers, timeout=10).json()
        assert [sp["source"] for sp in body["spans"] if sp["parent_span_id"] is None] == ["event_root"]
