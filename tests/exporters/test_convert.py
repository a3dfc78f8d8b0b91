"""PointsConverter without a server: accumulation, state round trip, timestamps that never go back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporters.victoriametrics import VictoriaMetricsExporter, VictoriaMetricsExporterConfig, forgotten
from exporters.victoriametrics.convert import PointsConverter
from tests.exporters._util import queue_in


def rows(**cols: list[Any]) -> dict[str, list[Any]]:
    n = len(next(iter(cols.values())))
    base: dict[str, list[Any]] = {"tenant_id": ["t"] * n, "service_name": ["svc"] * n}
    return {**base, **cols}


def by_name(out: dict[Any, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    res: dict[str, list[tuple[int, float]]] = {}
    for key, samples in out.items():
        labels = dict(key)
        name = labels["__name__"] + (f"{{le={labels['le']}}}" if "le" in labels else "")
        res[name] = samples
    return res


def test_delta_histograms_accumulate_and_state_survives_a_restart() -> None:
    delta = rows(
        ts=[1_000_000, 2_000_000], name=["rpc.duration"] * 2, kind=["histogram"] * 2, temporality=["delta"] * 2,
        bounds=[[0.1, 1.0]] * 2, bucket_counts=[[1, 2, 0], [0, 1, 3]], count=[3, 4], sum=[1.5, 9.0], unit=["s"] * 2,
    )  # fmt: skip
    c = PointsConverter(clock=lambda: 10.0)
    first = by_name(c.convert(delta))  # a new series: no 0 sample (rate() divides by the samples' span)
    assert first["rpc_duration_seconds_count"] == [(2000, 7.0)]
    assert first["rpc_duration_seconds_bucket{le=0.1}"] == [(2000, 1.0)]
    assert first["rpc_duration_seconds_bucket{le=1}"] == [(2000, 4.0)]
    assert first["rpc_duration_seconds_bucket{le=+Inf}"] == [(2000, 7.0)]
    restarted = PointsConverter(clock=lambda: 10.0)
    restarted.restore(c.snapshot())
    again = by_name(restarted.convert(delta))  # same timestamps again: the sample moves 1 ms forward
    assert again["rpc_duration_seconds_count"] == [(2001, 14.0)] and again["rpc_duration_seconds_sum"] == [(2001, 21.0)]


def test_accumulated_series_never_go_back_in_time_nor_into_the_future() -> None:
    c = PointsConverter(clock=lambda: 5.0)  # "now" is 5 s after the epoch
    cost = dict(name=["llm.cost.usd"], kind=["sum"], temporality=["delta"], monotonic=[True], unit=["USD"])
    first = by_name(c.convert(rows(ts=[3_000_000], value=[1.0], **cost)))
    assert first == {"llm_cost_usd_total": [(3000, 1.0)]}
    late = by_name(c.convert(rows(ts=[1_000_000], value=[2.0], **cost)))  # an older event arrives late
    assert late == {"llm_cost_usd_total": [(3001, 3.0)]}
    future = by_name(c.convert(rows(ts=[60_000_000], value=[1.0], **cost)))  # clamped to now
    assert future == {"llm_cost_usd_total": [(5000, 4.0)]}


def test_observations_use_semantic_convention_buckets_and_configured_ones() -> None:
    c = PointsConverter(buckets={"queue.wait": [1, 10]})
    out = by_name(
        c.convert(
            rows(
                ts=[1_000_000] * 4, kind=["observation"] * 4,
                name=["gen_ai.client.operation.duration", "gen_ai.client.token.usage", "queue.wait", "queue.wait"],
                unit=["ms", "{token}", "", ""], value=[250.0, 3000.0, 5.0, 50.0],
            )
        )
    )  # fmt: skip
    dur = [k for k in out if k.startswith("gen_ai_client_operation_duration_seconds_bucket")]
    assert len(dur) == 15 and out["gen_ai_client_operation_duration_seconds_sum"] == [(1000, 0.25)]
    assert out["gen_ai_client_operation_duration_seconds_bucket{le=0.32}"] == [(1000, 1.0)]
    assert out["gen_ai_client_operation_duration_seconds_bucket{le=0.16}"] == [(1000, 0.0)]
    assert out["gen_ai_client_token_usage_bucket{le=4096}"] == [(1000, 1.0)]
    assert out["gen_ai_client_token_usage_bucket{le=1024}"] == [(1000, 0.0)]
    assert {k for k in out if k.startswith("queue_wait_bucket")} == {
        "queue_wait_bucket{le=1}", "queue_wait_bucket{le=10}", "queue_wait_bucket{le=+Inf}",
    }  # fmt: skip
    assert out["queue_wait_bucket{le=10}"] == [(1000, 1.0)] and out["queue_wait_count"] == [(1000, 2.0)]


def test_labels_are_bounded_and_external_labels_added() -> None:
    c = PointsConverter(external_labels={"cluster": "eu-1"}, label_attributes=["cost_type"])
    out = c.convert(
        rows(
            ts=[1_000_000], name=["g"], kind=["gauge"], value=[1.0], unit=[""], model=["m"],
            attributes=['{"cost_type": "api", "user.id": "u-1", "gen_ai.request.model": "x"}'],
        )
    )  # fmt: skip
    (key,) = out
    assert dict(key) == {
        "__name__": "g", "cluster": "eu-1", "cost_type": "api", "gen_ai_request_model": "m", "job": "svc",
        "tenant_id": "t",
    }  # fmt: skip


def _vm(tmp_path: Path) -> VictoriaMetricsExporter:
    (tmp_path / "q").mkdir(exist_ok=True)
    cfg = VictoriaMetricsExporterConfig(endpoint="http://127.0.0.1:9", sending_queue=queue_in(tmp_path / "q"))
    return VictoriaMetricsExporter(cfg)


def _costs(teams: list[str], amount: float = 1.0) -> dict[str, list[Any]]:
    n = len(teams)
    cost = dict(name=["llm.cost.usd"] * n, kind=["sum"] * n, temporality=["delta"] * n, monotonic=[True] * n)
    return rows(ts=[1_000_000] * n, value=[amount] * n, unit=["USD"] * n, team=teams, **cost)


def test_an_acknowledgement_carries_what_changed_and_restores_exactly(tmp_path: Path) -> None:
    ex = _vm(tmp_path)
    ex.converter.convert(_costs([f"team-{i}" for i in range(5000)]))
    first = ex.snapshot_state()  # 5,000 new series: the whole state goes to a base file
    assert first is not None and len(first) < 100
    whole = len(ex.converter.snapshot())
    assert whole > 200_000 and len(list((tmp_path / "q").glob("state-*.msgpack"))) == 1
    ex.converter.convert(_costs(["team-7"], 2.5))
    second = ex.snapshot_state()
    assert second is not None and len(second) < 500  # one series changed: not 5,000 re-encoded
    restarted = _vm(tmp_path)  # what start() does with the last acknowledgement's state
    restarted.restore_state(second)
    assert restarted.converter.state == ex.converter.state
    out = restarted.converter.convert(_costs(["team-7"], 1.0))
    assert [v for _k, samples in out.items() for _ms, v in samples] == [4.5]  # continues, no reset
    for _round in range(3):  # each round changes more than a quarter of the series: a new base each time
        ex.converter.convert(_costs([f"team-{i}" for i in range(5000)]))
        blob = ex.snapshot_state()
        assert blob is not None and len(blob) < 100
    assert len(list((tmp_path / "q").glob("state-*.msgpack"))) == 2  # the current base and the one before
    again = _vm(tmp_path)
    again.restore_state(blob)
    assert again.converter.state == ex.converter.state


def test_small_and_legacy_states_restore_exactly(tmp_path: Path) -> None:
    ex = _vm(tmp_path)
    ex.converter.convert(_costs(["a", "b"]))
    small = ex.snapshot_state()  # below the rebase threshold: no base file, the delta is all of it
    assert small is not None and not list((tmp_path / "q").glob("state-*"))
    restored = _vm(tmp_path)
    restored.restore_state(small)
    assert restored.converter.state == ex.converter.state
    legacy = _vm(tmp_path)
    legacy.restore_state(ex.converter.snapshot())  # an acknowledgement written before incremental state
    assert legacy.converter.state == ex.converter.state
    legacy.converter.convert(_costs(["a"]))
    legacy_blob = legacy.snapshot_state()
    assert legacy_blob is not None
    final = _vm(tmp_path)
    final.restore_state(legacy_blob)
    assert final.converter.state.totals == legacy.converter.state.totals
    assert sorted(final.converter.state.totals.values()) == [1.0, 2.0]


def _cost(team: str, amount: float, ts_s: float, monotonic: bool = True) -> dict[str, list[Any]]:
    name = "llm.cost.usd" if monotonic else "queue.items"
    return rows(ts=[int(ts_s * 1e6)], name=[name], kind=["sum"], temporality=["delta"], monotonic=[monotonic],
                value=[amount], unit=["USD" if monotonic else ""], team=[team])  # fmt: skip


def test_idle_series_are_forgotten_and_come_back_from_zero_after_a_zero_sample() -> None:
    now = [100_000.0]
    c = PointsConverter(clock=lambda: now[0], series_ttl=3600)
    first = by_name(c.convert(_cost("a", 5.0, now[0])))
    assert first == {"llm_cost_usd_total": [(100_000_000, 5.0)]}  # new: no 0 sample
    c.convert(_cost("a", 1.0, now[0] + 10))
    c.convert(_cost("updown", 7.0, now[0], monotonic=False))  # a level, not a counter: kept however idle
    assert c.series_count == 2 and c.stats.tracked == 2
    now[0] += 3000
    c.convert(_cost("b", 1.0, now[0]))
    assert c.series_count == 3 and c.stats.expired == 0  # "a" was updated 2,990 s ago: within the TTL
    now[0] += 700
    c.convert(_cost("b", 1.0, now[0]))  # a flush: "a" has been idle 3,690 s now
    assert c.stats.expired == 1 and c.series_count == 2
    assert {dict(k).get("team") for k in c.state.last_ms} == {"b", "updown"}
    back = by_name(c.convert(_cost("a", 2.0, now[0] - 7200)))  # a late event: not back among its old samples
    floor_ms = int((now[0] - 1800) * 1000)  # half the TTL ago at most
    assert back == {"llm_cost_usd_total": [(floor_ms - 1, 0.0), (floor_ms, 2.0)]}  # 2, not 8: from zero
    now[0] += 10_000
    c.convert(_cost("b", 1.0, now[0]))
    assert {dict(k).get("team") for k in c.state.last_ms} == {"b", "updown"} and c.stats.expired == 2
    assert c.state.totals[next(k for k in c.state.totals if dict(k).get("team") == "updown")] == 7.0


def test_max_series_forgets_the_least_recently_updated_with_a_warning(caplog: Any) -> None:
    now = [1_000.0]
    c = PointsConverter(clock=lambda: now[0], max_series=100)
    for i in range(100):
        now[0] += 1
        c.convert(_cost(f"t{i}", 1.0, now[0]))
    assert c.stats.evicted == 0
    now[0] += 1
    c.convert(_cost("new", 1.0, now[0]))
    teams = {dict(k)["team"] for k in c.state.last_ms}
    assert c.stats.evicted == 6 and len(teams) == 95 and "new" in teams and "t0" not in teams and "t99" in teams
    assert "max_series=100" in caplog.text and "forgot the 6 least recently updated" in caplog.text


def test_forgotten_series_are_dropped_from_the_saved_state_too(tmp_path: Path) -> None:
    now = [50_000.0]
    ex = _vm(tmp_path)
    ex.converter.clock = lambda: now[0]
    ex.converter.series_ttl = 600
    ex.converter.convert(_costs([f"team-{i}" for i in range(5000)]))
    assert ex.snapshot_state() is not None  # a base with the 5,000 series
    now[0] += 300
    ex.converter.convert(_costs([f"team-{i}" for i in range(4900)]))  # team-4900.. are not updated
    blob = ex.snapshot_state()  # more than a quarter changed: a new base
    now[0] += 400
    ex.converter.convert(_costs(["team-0"]))  # the sweep: 100 series idle 700 s
    assert ex.converter.series_count == 4900 and len(ex.converter.removed) == 100
    blob = ex.snapshot_state()  # below the rebase threshold: the removals travel with the delta
    assert blob is not None and len(list((tmp_path / "q").glob("state-*.msgpack"))) == 2
    restarted = _vm(tmp_path)
    restarted.restore_state(blob)
    assert restarted.converter.series_count == 4900
    assert restarted.converter.state == ex.converter.state
    now[0] += 700
    ex.converter.convert(_costs(["team-0"]))  # the others are all forgotten now: a new base without them
    blob = ex.snapshot_state()
    assert blob is not None and ex.converter.series_count == 1
    again = _vm(tmp_path)
    again.restore_state(blob)
    assert again.converter.state == ex.converter.state and again.converter.series_count == 1
    out = ex.converter.convert(_costs(["team-5"]))  # a forgotten one comes back from zero, after a 0
    assert [v for samples in out.values() for _ms, v in samples] == [0.0, 1.0]
    # after a restart too: the new base left them out, and forgotten.bin (written with it) remembers them
    again.converter.remember(forgotten.load(tmp_path / "q" / forgotten.FILE_NAME))  # what start() does
    out = again.converter.convert(_costs(["team-5"]))
    assert [v for samples in out.values() for _ms, v in samples] == [0.0, 1.0]


def test_a_state_saved_before_series_were_timed_counts_them_as_updated_at_restore(tmp_path: Path) -> None:
    import msgspec

    key = [["__name__", "llm_cost_usd_total"], ["tenant_id", "t"]]
    legacy = msgspec.msgpack.encode({"totals": [[key, 3.0]], "hists": [], "last_ms": [[key, 1000]]})
    c = PointsConverter(clock=lambda: 7_000.5, series_ttl=60)
    c.restore(legacy)
    assert list(c.state.seen.values()) == [7000] and list(c.state.totals.values()) == [3.0]
