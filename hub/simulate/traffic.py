"""One chunk of simulated LLM requests: vectorised draws, then each request's correlated events.

A request picks a project (team weights times the scenario's ``team_mult``), a model, a (input, output)
token pair from the project's workload pool, a user, an environment and a region; latency is
``TTFT + output tokens x per-token time`` with lognormal noise, a Pareto tail and the scenario's
``latency_mult``; cost is tokens x price (EUR in eu-west-1). It yields a telemetry event, a cost event
(unless it failed) and, with the catalog's probabilities, a policy evaluation, a security finding, a
governance record and a registry update — all sharing the request's ``correlation_id``.

The scenario's hooks run around each chunk (:meth:`~hub.simulate.scenarios.Scenario.before_chunk` sets
the multipliers, :meth:`~hub.simulate.scenarios.Scenario.after_chunk` may add events).

    >>> import numpy as np
    >>> from hub.simulate.state import GeneratorState
    >>> from hub.simulate.traces import synthetic_traces
    >>> state = GeneratorState.create(synthetic_traces(), rate=1000.0, t0=1.7e9)
    >>> events, times = chunk(50, np.random.default_rng(2), state)
    >>> state.requests, sum(e["event_type"] == "telemetry" for e in events), len(events) == len(times)
    (50, 50, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hub.simulate import catalog as C
from hub.simulate.events import (
    DURATION_METRIC,
    SCHEMA_VERSION,
    Event,
    governance_event,
    model_update_event,
    policy_event,
    security_event,
    uuid4_strings,
)
from hub.simulate.state import GeneratorState
from hub.simulate.tables import pick

MAX_LATENCY_MS = 300_000.0
GOV_VIOLATION = [name for name, _ in C.GOVERNANCE_ACTIONS].index("violation")


def chunk(m: int, rng: np.random.Generator, state: GeneratorState) -> tuple[list[Event], list[float]]:
    """Events of ``m`` simulated requests, in arrival order, with their simulated times."""
    T = state.tables
    assert T is not None
    scenario = state.scenario
    active = scenario.before_chunk(state, state.sim_time) if scenario is not None else False

    w = T.proj_base_w * state.team_mult[T.proj_team]
    speedup = w.sum() / T.proj_base_w.sum()
    gaps = state.next_gaps(m, rng) / (state.request_rate * speedup)
    times = state.sim_time + np.cumsum(gaps)
    t_start = state.sim_time
    state.sim_time = float(times[-1])

    r = rng.random((16, m))
    proj = pick(np.cumsum(w / w.sum()), r[0])
    model = np.minimum((r[1][:, None] > T.proj_model_cum[proj]).sum(axis=1), len(T.model_name) - 1)
    wl = T.proj_workload[proj]
    k = T.pool_off[wl] + (r[2] * T.pool_size[wl]).astype(np.int64)
    outs = T.pool_out[k]
    ins = np.clip(T.pool_in[k], 1, np.maximum(1, T.ctx[model] - outs))
    user = (r[3] ** 2 * C.USERS_PER_PROJECT).astype(np.int64)
    env = pick(T.env_cum, r[4])
    region = pick(T.region_cum, r[5])
    err = r[6] < C.P_ERROR
    err_kind = pick(T.err_cum, r[7])
    outs = np.where(err, 0, outs)

    noise = rng.lognormal(0.0, 0.35, (2, m))
    lat = T.ttft[model] * noise[0] * (1.0 + ins / 16_000.0) + outs * T.per_tok[model] * noise[1] ** 0.5
    tail = r[8] < C.P_HEAVY_TAIL
    if tail.any():
        lat = np.where(tail, lat * (1.0 + 3.0 * rng.pareto(1.5, m)), lat)
    lat = lat * state.latency_mult[model]
    if err.any():
        rl = 20.0 + 180.0 * r[9]
        to = 30_000.0 + 30_000.0 * r[9]
        se = T.ttft[model] * (0.2 + 2.0 * r[9])
        lat = np.where(err, np.choose(err_kind, [rl, se, to]), lat)
    lat = np.minimum(lat, MAX_LATENCY_MS)
    in_s = r[10] < C.P_LATENCY_IN_SECONDS
    value = np.round(np.where(in_s, lat / 1000.0, lat), 6)

    usd = ins * T.price_in[model] / 1000.0 + outs * T.price_out[model] / 1000.0
    eur = region == T.eur_region
    amount = np.round(np.where(eur, usd / C.USD_PER_EUR, usd), 10)
    amount = np.maximum(amount, 1e-10)

    has_pol = r[11] < C.P_POLICY
    # Healthy traffic: at most one module reports trouble per request (an error or a > 20 s call, a security
    # finding, a policy warn/fail, a governance violation). Two in one request, in the order the platform
    # handles a call (catalog.OFFSET_MS_*), is what the correlation engine reports as a causal chain: the
    # scenarios inject those; chance coincidences of independent draws would be false incidents.
    troubled = err | (lat > 20_000.0)
    has_sec = (r[12] < C.P_SECURITY) & ~troubled
    troubled = troubled | has_sec
    has_gov = r[13] < C.P_GOVERNANCE
    has_upd = r[14] < C.P_REGISTRY_UPDATE
    per_request = 1 + (~err).astype(np.int64) + has_pol + has_sec + has_gov + has_upd
    n_events = int(per_request.sum())
    ids = uuid4_strings(n_events + m, rng)
    ts = state.timestamp_strings(times)
    # the other modules' events of a request, a few ms before (policy, security) or after (cost, governance) its
    # telemetry, in the order the platform handles a call (see catalog.OFFSET_MS_*)
    ts_cost = state.timestamp_strings(times, C.OFFSET_MS_COST)
    ts_pol, ts_sec, ts_gov = (dict(zip(np.flatnonzero(has).tolist(), state.timestamp_strings(times[has], off),
                                       strict=True))  # only the requests that have one: most have none
                              for has, off in ((has_pol, C.OFFSET_MS_POLICY), (has_sec, C.OFFSET_MS_SECURITY),
                                               (has_gov, C.OFFSET_MS_GOVERNANCE)))  # fmt: skip

    # side-event parameters (cheap to draw for all, used for a few)
    pol_idx = (r[15] * len(C.POLICIES)).astype(np.int64)
    q = rng.random((6, m))
    pol_res = pick(T.pol_result_cum, q[0])
    pol_ms = np.round(0.4 + 3.0 * q[1] ** 3, 3)
    gov_idx = (q[2] * len(C.GOVERNANCE_POLICIES)).astype(np.int64)
    gov_act = pick(T.gov_action_cum, q[3])
    thr = pick(T.threat_cum, q[4])
    lvl = pick(T.level_cum, q[5])
    pol_res = np.where(troubled, 0, pol_res)  # pass (POLICY_RESULTS[0])
    troubled = troubled | (has_pol & (pol_res != 0))
    gov_act = np.where(troubled & (gov_act == GOV_VIOLATION), 0, gov_act)  # audit (GOVERNANCE_ACTIONS[0])

    events: list[Event] = []
    add = events.append
    next_id = iter(ids[m:]).__next__  # ids[0:m] are correlation ids; the rest go to events, in order
    tenant = state.tenant
    model_name, model_provider, model_asset = T.model_name, T.model_provider, T.model_asset
    proj_name, team_name, users = T.proj_name, T.proj_team_name, T.users
    env_name, region_name, err_name = T.env_name, T.region_name, T.err_name
    lat_l, ins_l, outs_l = lat.tolist(), ins.tolist(), outs.tolist()
    cols = (proj.tolist(), model.tolist(), user.tolist(), env.tolist(), region.tolist(), err.tolist(),
            err_kind.tolist(), value.tolist(), in_s.tolist(), amount.tolist(), eur.tolist(), has_pol.tolist(),
            has_sec.tolist(), has_gov.tolist(), has_upd.tolist())  # fmt: skip
    for i, (p, mi, ui, ei, ri, e, ek, val, sec_unit, amt, is_eur, pol, sec, gov, upd) in enumerate(
        zip(*cols, strict=True)
    ):
        corr = ids[i]
        ts_i = ts[i]
        mname = model_name[mi]
        prov = model_provider[mi]
        aid = model_asset[mi]
        pname = proj_name[p]
        tname = team_name[p]
        uname = users[p][ui]
        envn = env_name[ei]
        tags = {"team": tname, "project": pname, "user_id": uname, "region": region_name[ri]}
        if tenant:
            tags["tenant_id"] = tenant
        tel: dict[str, Any] = {
            "metric_name": DURATION_METRIC, "value": val, "unit": "s" if sec_unit else "ms",
            "model": mname, "provider": prov, "operation": "chat", "request_id": corr, "asset_id": aid,
            "input_tokens": ins_l[i], "output_tokens": outs_l[i],
        }  # fmt: skip
        if e:
            tel["status"] = "error"
            tel["error_type"] = err_name[ek]
            sev = "error"
        else:
            sev = "warning" if lat_l[i] > 20_000.0 else "info"
        add({"event_id": next_id(), "timestamp": ts_i, "source_module": "llm-observatory",
             "event_type": "telemetry", "schema_version": SCHEMA_VERSION, "correlation_id": corr,
             "severity": sev, "environment": envn, "tags": tags, "payload": tel})  # fmt: skip
        if not e:
            add({"event_id": next_id(), "timestamp": ts_cost[i], "source_module": "llm-costops",
                 "event_type": "cost", "schema_version": SCHEMA_VERSION, "correlation_id": corr,
                 "severity": "info", "environment": envn, "tags": dict(tags),
                 "payload": {"cost_type": "token", "amount": amt, "currency": "EUR" if is_eur else "USD",
                             "model": mname, "provider": prov, "asset_id": aid,
                             "input_tokens": ins_l[i], "output_tokens": outs_l[i],
                             "project": pname, "team": tname, "request_id": corr}})  # fmt: skip
        if pol:
            add(policy_event(next_id(), ts_pol[i], C.POLICIES[pol_idx[i]], C.POLICY_RESULTS[pol_res[i]][0],
                             float(pol_ms[i]), pname, uname, mname, aid, corr, envn, dict(tags)))  # fmt: skip
        if sec:
            add(security_event(next_id(), ts_sec[i], C.THREAT_TYPES[thr[i]][0], C.THREAT_LEVELS[lvl[i]][0],
                               float(0.5 + 0.49 * q[4, i]), mname, aid, uname,
                               f"10.{p}.{ui // 200}.{ui % 200 + 1}", f"key-{pname}-{ui % 3}",
                               corr, envn, dict(tags)))  # fmt: skip
        if gov:
            add(governance_event(next_id(), ts_gov[i], C.GOVERNANCE_POLICIES[gov_idx[i]],
                                 C.GOVERNANCE_ACTIONS[gov_act[i]][0], pname, uname, mname, aid, corr, envn,
                                 dict(tags)))  # fmt: skip
        if upd:
            state.model_revision[mi] += 1
            add(model_update_event(next_id(), ts_i, C.MODELS[mi], state.model_revision[mi], tenant))
    etimes: list[float] = np.repeat(times, per_request).tolist()
    state.requests += m
    if scenario is not None:
        scenario.after_chunk(state, rng, t_start, state.sim_time, active, events, etimes)
    return events, etimes
