"""Unit tests of the shared exporter plumbing: naming, error classes, backoff, splitting, the disk queue,
and the component contract of every stack exporter."""

from __future__ import annotations

import base64
import email.utils
import random
import threading
import time
from pathlib import Path
from typing import Any

import cramjam
import httpx
import msgspec
import pytest

from exporters.alertmanager import AlertmanagerExporter, AlertmanagerExporterConfig
from exporters.loki import LokiExporter, LokiExporterConfig
from exporters.prom_naming import label_name, metric_name
from exporters.queue import (
    Backoff,
    DeadLetterFile,
    DiskQueue,
    HttpDelivery,
    Outcome,
    RetryConfig,
    classify_status,
    parse_retry_after,
)
from exporters.tempo import TempoExporter, TempoExporterConfig
from exporters.victoriametrics import VictoriaMetricsExporter, VictoriaMetricsExporterConfig
from exporters.victoriametrics.protos import remote_pb2
from hubcore.errors import ConfigError, PermanentError, QueueFullError
from tests.exporters._server import RecordingServer, Request
from tests.exporters._util import FAST_RETRY, queue_in


@pytest.mark.parametrize(
    ("name", "unit", "kind", "monotonic", "expected"),
    [
        ("gen_ai.client.operation.duration", "s", "histogram", False, "gen_ai_client_operation_duration_seconds"),
        ("gen_ai.client.token.usage", "{token}", "histogram", False, "gen_ai_client_token_usage"),
        ("gen_ai.server.time_to_first_token", "s", "histogram", False, "gen_ai_server_time_to_first_token_seconds"),
        ("llm.cost.usd", "USD", "sum", True, "llm_cost_usd_total"),
        ("llm.security.threats", "1", "sum", True, "llm_security_threats_total"),
        ("llm.governance.violations", "1", "sum", True, "llm_governance_violations_total"),
        ("llm.policy.evaluations", "1", "sum", True, "llm_policy_evaluations_total"),
        ("llm.registry.asset.info", "1", "gauge", False, "llm_registry_asset_info"),
        ("system.cpu.utilization", "1", "gauge", False, "system_cpu_utilization_ratio"),
        ("process.memory.usage", "By", "gauge", False, "process_memory_usage_bytes"),
        ("http.server.request.duration", "ms", "histogram", False, "http_server_request_duration_milliseconds"),
        ("net.io", "By/s", "sum", True, "net_io_bytes_per_second_total"),
        ("requests.total", "{request}", "sum", True, "requests_total"),
        ("queue.items", "", "sum", False, "queue_items"),
        ("seconds.spent", "s", "sum", True, "seconds_spent_total"),
        ("2xx.count", "", "gauge", False, "_2xx_count"),
        ("disk.io", "KiBy", "gauge", False, "disk_io_kibibytes"),
        ("weird-name/with spaces", "", "gauge", False, "weird_name_with_spaces"),
    ],
)
def test_metric_names_follow_the_collector(name: str, unit: str, kind: str, monotonic: bool, expected: str) -> None:
    assert metric_name(name, unit, kind, monotonic=monotonic) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [("gen_ai.request.model", "gen_ai_request_model"), ("http.route", "http_route"), ("9lives", "key_9lives"),
     ("a-b c", "a_b_c"), ("ok_label", "ok_label")],
)  # fmt: skip
def test_label_names(key: str, expected: str) -> None:
    assert label_name(key) == expected


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, Outcome.OK), (204, Outcome.OK), (400, Outcome.PERMANENT), (401, Outcome.PERMANENT),
     (404, Outcome.PERMANENT), (408, Outcome.RETRYABLE), (413, Outcome.TOO_LARGE), (422, Outcome.PERMANENT),
     (429, Outcome.RETRYABLE), (500, Outcome.RETRYABLE), (502, Outcome.RETRYABLE), (503, Outcome.RETRYABLE),
     (504, Outcome.RETRYABLE), (301, Outcome.PERMANENT)],
)  # fmt: skip
def test_error_classification(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


def test_backoff_is_exponential_jittered_capped_and_honours_retry_after() -> None:
    plain = Backoff(RetryConfig(initial_interval=1, max_interval=5, randomization_factor=0))
    assert [plain.next_delay() for _ in range(5)] == [1, 2, 4, 5, 5]
    jittered = Backoff(RetryConfig(initial_interval=1, randomization_factor=0.5), rng=random.Random(1))
    delays = [jittered.next_delay() for _ in range(3)]
    assert 0.5 <= delays[0] <= 1.5 and 1 <= delays[1] <= 3 and 2 <= delays[2] <= 6
    assert len({round(d, 6) for d in delays}) == 3
    hinted = Backoff(RetryConfig(max_retry_after=60))
    assert hinted.next_delay(hint=7.0) == 7.0 and hinted.next_delay(hint=600.0) == 60.0
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (parse_retry_after(future) or 0) <= 31


def _delivery(tmp_path: Path, retry: RetryConfig = FAST_RETRY, max_body: int = 1 << 20) -> HttpDelivery:
    return HttpDelivery(
        httpx.Client(timeout=5), retry, DeadLetterFile(tmp_path / "dl.jsonl", "test"), threading.Event(),
        exporter="test", max_body_bytes=max_body,
    )  # fmt: skip


def test_413_halves_until_accepted_and_keeps_order(tmp_path: Path) -> None:
    def too_big(req: Request) -> tuple[int, dict[str, str]] | None:
        return (413, {}) if len(req.body) > 25 else None

    with RecordingServer(decide=too_big) as srv:
        d = _delivery(tmp_path)
        records = [f"r{i:02d}" for i in range(20)]  # 4 bytes each: at most 6 per request
        d.deliver(records, lambda part: ",".join(part).encode(), url=srv.url + "/x", headers={})
    got = [r for req in srv.accepted for r in req.body.decode().split(",")]
    assert got == records and d.stats.splits >= 3 and d.stats.dead_lettered == 0


def test_413_on_a_single_record_is_dead_lettered(tmp_path: Path) -> None:
    with RecordingServer(status=413) as srv:
        d = _delivery(tmp_path)
        d.deliver(["a", "b"], lambda part: "".join(part).encode(), url=srv.url, headers={})
    dead = d.dead_letter.entries()
    assert [e["records"] for e in dead] == [1, 1] and "too large" in dead[0]["reason"]


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    with RecordingServer(fail=[(503, {"Retry-After": "0.4"})]) as srv:
        d = _delivery(tmp_path, RetryConfig(initial_interval=0.01, randomization_factor=0))
        started = time.monotonic()
        d.deliver(["x"], lambda part: b"x", url=srv.url, headers={})
        elapsed = time.monotonic() - started
    assert len(srv.requests) == 2 and 0.4 <= elapsed < 2.0 and d.stats.retries == 1


def test_retries_give_up_after_max_elapsed_time(tmp_path: Path) -> None:
    with RecordingServer(status=503) as srv:
        d = _delivery(tmp_path, RetryConfig(initial_interval=0.05, max_elapsed_time=0.3, randomization_factor=0))
        d.deliver(["x"], lambda part: b"x", url=srv.url, headers={})
    assert "retries exhausted" in d.dead_letter.entries()[0]["reason"] and 2 <= len(srv.requests) <= 6


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    d = _delivery(tmp_path)
    attempt = d.post_once("http://127.0.0.1:9/x", b"x", {})
    assert attempt.outcome is Outcome.RETRYABLE and attempt.status is None


def test_disk_queue_bounds_acks_and_state_survive_reopen(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path, max_batches=3, fsync=False)
    for i in range(3):
        q.put({"i": i})
    with pytest.raises(QueueFullError):
        q.put({"i": 3})
    assert not q.has_room()
    assert [b["i"] for _s, b in q.peek(2)] == [0, 1]
    q.ack(2, state=b"s2")
    q.put({"i": 3})
    q.close()
    q = DiskQueue(tmp_path, max_batches=3, fsync=False)
    assert [b["i"] for _s, b in q.peek(10)] == [2, 3] and q.state == b"s2" and q.depth == 2
    q.close()
    big = DiskQueue(tmp_path / "b", max_bytes=100, fsync=False)
    big.put({"x": "y" * 80})
    with pytest.raises(QueueFullError) as err:
        big.put({"x": "y" * 80})
    assert err.value.retry_after > 0
    big.close()


def _all_exporters(tmp_path: Path, url: str) -> list[Any]:
    return [
        VictoriaMetricsExporter(VictoriaMetricsExporterConfig(endpoint=url, sending_queue=queue_in(tmp_path / "vm"))),
        LokiExporter(LokiExporterConfig(endpoint=url, sending_queue=queue_in(tmp_path / "loki"))),
        TempoExporter(TempoExporterConfig(endpoint=url, sending_queue=queue_in(tmp_path / "tempo"))),
        AlertmanagerExporter(AlertmanagerExporterConfig(endpoint=url, dead_letter_directory=str(tmp_path / "am"))),
    ]


def test_every_exporter_starts_shuts_down_twice_and_shuts_down_without_start(tmp_path: Path) -> None:
    for ex in _all_exporters(tmp_path / "a", "http://127.0.0.1:9"):
        ex.start()
        ex.start()
        ex.shutdown(1.0)
        ex.shutdown(1.0)
    for ex in _all_exporters(tmp_path / "b", "http://127.0.0.1:9"):
        ex.shutdown(1.0)


def test_export_refuses_unknown_kinds_and_before_start(tmp_path: Path) -> None:
    vm, loki, tempo, am = _all_exporters(tmp_path, "http://127.0.0.1:9")
    with pytest.raises(RuntimeError):
        loki.export("logs", {"ts": [1]})
    for ex, kind in ((vm, "logs"), (loki, "spans"), (tempo, "metric_points"), (am, "events")):
        with pytest.raises(PermanentError):
            ex.export(kind, {"ts": [1]})


def test_configs_name_the_bad_key() -> None:
    with pytest.raises(ConfigError, match=r"exporters\.victoriametrics\.endpoint"):
        VictoriaMetricsExporter(VictoriaMetricsExporterConfig(endpoint="vm:8428"))
    with pytest.raises(ConfigError, match=r"exporters\.victoriametrics\.buckets\.x"):
        VictoriaMetricsExporterConfig(endpoint="http://vm", buckets={"x": [2.0, 1.0]}).validate()
    with pytest.raises(ConfigError, match=r"exporters\.victoriametrics\.series_ttl: must be a duration"):
        VictoriaMetricsExporterConfig(endpoint="http://vm", series_ttl="soon").validate()
    vm = msgspec.convert({"endpoint": "http://vm", "series_ttl": "6h", "max_series": 0}, VictoriaMetricsExporterConfig)
    assert vm.validate().series_ttl_s == 21600 and VictoriaMetricsExporterConfig("http://vm").series_ttl_s == 86400
    with pytest.raises(ConfigError, match=r"exporters\.loki\.endpoint"):
        LokiExporterConfig().validate()
    cluster = msgspec.convert(
        {"endpoint": "http://vminsert:8480", "cluster": {"enabled": True, "tenant_account_ids": {"acme": "7"}}},
        VictoriaMetricsExporterConfig,
    )
    assert cluster.write_url("acme") == "http://vminsert:8480/insert/7/prometheus/api/v1/write"
    assert cluster.write_url("other") == "http://vminsert:8480/insert/0/prometheus/api/v1/write"
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"endpoint": "http://x", "nope": 1}, LokiExporterConfig)


def test_shutdown_honours_its_deadline_and_the_queue_survives(tmp_path: Path) -> None:
    cfg = LokiExporterConfig(endpoint="http://127.0.0.1:9", flush_interval=0.05, sending_queue=queue_in(tmp_path))
    ex = LokiExporter(cfg)
    ex.start()
    ex.export("logs", {"tenant_id": ["t"], "ts": [1_000_000], "body": ["kept"], "service_name": ["s"]})
    time.sleep(0.2)  # the worker is now retrying against a closed port
    started = time.monotonic()
    ex.shutdown(0.3)
    assert time.monotonic() - started < 2.0
    with RecordingServer() as srv:
        again = LokiExporter(msgspec_replace(cfg, endpoint=srv.url))
        again.start()
        assert again.flush(10)
        again.shutdown(2)
    assert len(srv.accepted) == 1 and b"kept" in srv.accepted[0].body


def msgspec_replace(cfg: Any, **changes: Any) -> Any:
    return msgspec.structs.replace(cfg, **changes)


def test_a_zero_or_past_retry_after_is_a_floor_not_a_tight_loop() -> None:
    past = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT")
    assert past == 0.0
    plain = Backoff(RetryConfig(initial_interval=0.5, randomization_factor=0))
    assert [plain.next_delay(hint=past) for _ in range(4)] == [0.5, 1.0, 2.0, 4.0]  # the schedule goes on
    jittered = Backoff(RetryConfig(initial_interval=0.5, max_interval=5), rng=random.Random(3))
    delays = [jittered.next_delay(hint=0.0) for _ in range(20)]
    assert min(delays) >= 0.5 and max(delays) <= 5.0  # never below initial_interval, capped
    hinted = Backoff(RetryConfig(initial_interval=0.5, max_interval=5, max_retry_after=60, randomization_factor=0))
    assert [hinted.next_delay(hint=h) for h in (3.0, 0.0, 600.0)] == [3.0, 1.0, 60.0]


def test_one_poison_batch_is_dead_lettered_alone_and_counted(tmp_path: Path) -> None:
    def gauge(name: str, ts: object, tenant: str) -> dict[str, Any]:
        return {"kind": "metric_points", "cols": {
            "tenant_id": [tenant], "ts": [ts], "name": [name], "kind": ["gauge"], "temporality": [""],
            "monotonic": [False], "value": [42.0], "unit": [""], "attributes": ["{}"]}}  # fmt: skip

    now_us = int(time.time() * 1e6)
    q = DiskQueue(tmp_path / "q", fsync=False)  # queued before the worker starts: one flush takes all three
    q.put(gauge("first.good", now_us, "a"))
    q.put(gauge("poison", "not-a-timestamp", "b"))
    q.put(gauge("second.good", now_us, "c"))
    q.close()
    with RecordingServer() as srv:
        cfg = VictoriaMetricsExporterConfig(
            endpoint=srv.url, flush_interval=0.05, sending_queue=queue_in(tmp_path / "q"), retry_on_failure=FAST_RETRY
        )
        ex = VictoriaMetricsExporter(cfg)
        ex.start()
        assert ex.flush(10)
        ex.shutdown(5)
    dead = ex.dead_letter.entries()
    assert len(dead) == 1 and dead[0]["records"] == 1 and "conversion failed" in dead[0]["reason"]
    assert "poison" in base64.b64decode(dead[0]["body_b64"]).decode()
    stats = ex.delivery_stats
    assert stats is not None and stats.dead_lettered == 1  # hub_export_dead_lettered_total: the alert fires
    sent = {
        label.value
        for req in srv.accepted
        for ts in remote_pb2.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(req.body))).timeseries
        for label in ts.labels
        if label.name == "__name__"
    }
    assert sent == {"first_good", "second_good"}  # the rest of the flush was delivered


def test_disk_queue_reads_after_a_cursor_and_keeps_what_is_held_across_reopen(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path, fsync=False)
    for i in range(1, 6):
        q.put({"i": i})
    assert [s for s, _b in q.peek(10, after=2)] == [3, 4, 5] and q.count_after(2) == 3
    assert [b["i"] for _s, b in q.read([4, 2, 9])] == [2, 4]
    assert q.pending_through(3) == (3, sum(len(msgspec.msgpack.encode({"i": i})) for i in (1, 2, 3)))
    assert q.wait(0.0, after=4) and not q.wait(0.01, after=5)
    q.ack(1, cursor=4, held={"noisy": 2})  # batches 2..4 read, delivered but noisy's rows from 2 on
    q.close()
    q = DiskQueue(tmp_path, fsync=False)
    assert (q.acked_seq, q.cursor, q.held, q.depth) == (1, 4, {"noisy": 2}, 4)
    assert [s for s, _b in q.peek(10, after=q.cursor)] == [5]
    q.ack(5)  # nothing held any more
    assert (q.cursor, q.held, q.depth) == (5, {}, 0)
    q.close()


def test_the_pipeline_encoded_bytes_are_queued_as_given(tmp_path: Path) -> None:
    from exporters.queue.base import encode_batch

    ex = LokiExporter(LokiExporterConfig(endpoint="http://127.0.0.1:9", sending_queue=queue_in(tmp_path)))
    ex.start()
    try:
        ex._stop.set()  # no delivery: read the queue back
        assert ex._thread is not None
        ex._thread.join(5)
        cols = {"tenant_id": ["t"], "ts": [1], "body": ["x"]}
        raw = encode_batch("logs", cols)
        ex.export("logs", cols, encoded=raw)
        ex.export("logs", cols)
        assert ex._queue is not None and [b for _s, b in ex._queue.peek(10)] == [{"kind": "logs", "cols": cols}] * 2
        assert ex._queue.pending_bytes == 2 * len(raw)
    finally:
        ex.shutdown(1.0)


def test_the_ack_is_replaced_durably_and_a_leftover_ack_tmp_is_ignored_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the ack went through its own copy of temp-write-rename, which synced the file but not its directory:
    # a power loss could bring back an older ack (and its state blob) after the segments it covered were gone
    import hubcore.files as files

    synced: list[Path] = []
    monkeypatch.setattr(files, "fsync_dir", lambda d: synced.append(Path(d)))
    q = DiskQueue(tmp_path, fsync=True)
    q.put({"i": 1})
    synced.clear()  # (the write-ahead log syncs its directory for a new segment)
    q.ack(1, state=b"totals")
    assert synced == [tmp_path]
    q.close()
    (tmp_path / "ack.tmp").write_bytes(b"\x93\x05")  # an ack write a crash cut short, never renamed
    again = DiskQueue(tmp_path, fsync=False)
    assert (again.acked_seq, again.state) == (1, b"totals") and not (tmp_path / "ack.tmp").exists()
    again.close()
    unsynced = DiskQueue(tmp_path / "nosync", fsync=False)
    unsynced.put({"i": 1})
    synced.clear()
    unsynced.ack(1)
    assert synced == []  # fsync off: no directory sync either
    unsynced.close()
