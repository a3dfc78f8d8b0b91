"""``hub simulate`` against the real hub (API + OTLP/HTTP receiver + embedded store), in-process."""

from __future__ import annotations

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
