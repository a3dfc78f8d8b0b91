"""The readers: PromQL against a real VictoriaMetrics, LogQL against a local endpoint speaking Loki's API,
and clear errors for HTTP failures and malformed answers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pandas as pd
import pytest

from hubcore.storage.readers import BackendUnavailable, LokiReader, PromReader, QueryError, ResponseParseError
from tests.exporters._server import RecordingServer, Request
from tests.exporters._util import wait_for
from tests.helpers.procs import run_victoriametrics


@pytest.mark.real_backend
def test_prom_reader_query_range_and_instant(tmp_path: Path) -> None:
    now = int(time.time())
    lines = "\n".join(
        f'{{"metric":{{"__name__":"m","job":"{job}"}},"values":[1,2,3],"timestamps":[{(now - 120) * 1000},{(now - 60) * 1000},{now * 1000}]}}'
        for job in ("a", "b")
    )
    with run_victoriametrics(tmp_path) as vm, PromReader(vm.url, timeout=5, retries=1) as reader:
        httpx.post(f"{vm.url}/api/v1/import", content=lines).raise_for_status()
        vm.flush()
        df = wait_for(lambda: reader.query_range("m", now - 120, now, "60s"), lambda d: len(d) == 6)
        assert list(df.columns[:2]) == ["timestamp", "value"] and {"__name__", "job"} <= set(df.columns)
        assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
        assert df[df["job"] == "a"]["value"].tolist() == [1.0, 2.0, 3.0]
        inst = reader.query("sum(m)", time=now + 30)
        assert inst["value"].tolist() == [6.0] and list(inst.columns) == ["timestamp", "value"]
        assert reader.query("scalar(sum(m))", time=now + 30)["value"].tolist() == [6.0]
        empty = reader.query_range("nothing_here", now - 60, now, 60)
        assert empty.empty and list(empty.columns) == ["timestamp", "value"]
        with pytest.raises(QueryError) as err:
            reader.query("sum(")
        assert err.value.status == 422 and err.value.query == "sum("


def test_prom_reader_retries_then_reports_unavailable() -> None:
    ok = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"2"]}]}}'
    with RecordingServer(fail=[(503, {}), (502, {})], decide=None, status=200) as srv:
        srv.decide = lambda req: None if srv.fail else (200, {}, ok)
        df = PromReader(srv.url, retries=2, backoff=0.01).query("up")
        assert df["value"].tolist() == [2.0] and df["a"].tolist() == ["1"] and len(srv.requests) == 3
    with RecordingServer(status=503) as srv, pytest.raises(BackendUnavailable, match="3 attempts"):
        PromReader(srv.url, retries=2, backoff=0.01).query("up")
    with pytest.raises(BackendUnavailable):
        PromReader("http://127.0.0.1:9", retries=0).query("up")
    with RecordingServer(decide=lambda r: (200, {}, b"<html>")) as srv, pytest.raises(ResponseParseError):
        PromReader(srv.url, retries=0).query("up")
    with pytest.raises(ValueError, match="url"):
        PromReader("localhost:8428")


def test_loki_reader_streams_and_matrix() -> None:
    def answer(req: Request) -> tuple[int, dict[str, str], bytes]:
        q = parse_qs(req.body.decode())
        assert req.headers["x-scope-orgid"] == "acme" and req.path == "/loki/api/v1/query_range"
        assert q["direction"] == ["forward"] and q["limit"] == ["50"] and q["start"] == ["1000000000000"]
        if q["query"][0].startswith("sum"):
            data = {"resultType": "matrix", "result": [{"metric": {"job": "x"}, "values": [[1000, "3"]]}]}
        else:
            data = {"resultType": "streams", "result": [
                {"stream": {"event_type": "security"}, "values": [["1000000000000000002", '{"b":2}']]},
                {"stream": {"event_type": "cost"}, "values": [["1000000000000000001", '{"a":1}']]},
            ]}  # fmt: skip
        return 200, {}, json.dumps({"status": "success", "data": data}).encode()

    with RecordingServer(decide=answer) as srv, LokiReader(srv.url, tenant="acme") as reader:
        df = reader.query_range('{tenant_id="acme"} | json', 1000, 2000, limit=50, direction="forward")
        assert df["line"].tolist() == ['{"a":1}', '{"b":2}'] and df["labels"][0] == {"event_type": "cost"}
        assert df["timestamp"][0] == pd.Timestamp(1_000_000_000_000_000_001, unit="ns", tz="UTC")
        m = reader.query_range('sum(count_over_time({a="b"}[1m]))', 1000, 2000, limit=50, direction="forward")
        assert m["value"].tolist() == [3.0] and m["labels"][0] == {"job": "x"}
    with RecordingServer(status=400) as srv, pytest.raises(QueryError):
        LokiReader(srv.url).query_range("{", 0, 1)
