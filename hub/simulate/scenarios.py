"""Incident scenarios injected into the simulated traffic, with ground truth for evaluation.

A scenario steers the base generator (per-model latency multipliers, per-team traffic multipliers)
or adds its own events, during a window of simulated time, and records what it did. Select one with
``--scenario NAME[:key=value,...]``; write its ground truth with ``--truth FILE.json``.

To add a scenario: subclass :class:`Scenario`, set ``name``/``description``, implement the hooks you
need, and decorate it with :func:`register`. Common parameters: ``start`` and ``length`` (seconds of
simulated time; default: from 30 % to 60 % of the run).

    >>> sorted(SCENARIOS)[:3]
    ['cost_spike', 'injection_burst', 'latency_spike']
    >>> s = make_scenario("latency_spike:factor=3,model=gpt-4o", horizon_s=100.0)
    >>> (s.start, s.end, s.factor, s.model)
    (30.0, 60.0, 3.0, 'gpt-4o')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from hub.simulate import catalog as C

if TYPE_CHECKING:  # the registry (hub simulate --help lists it) imports neither numpy nor the generator
    import numpy as np

    from hub.simulate.events import Event
    from hub.simulate.state import GeneratorState


class ScenarioError(ValueError):
    pass


SCENARIOS: dict[str, type[Scenario]] = {}


def register(cls: type[Scenario]) -> type[Scenario]:
    SCENARIOS[cls.name] = cls
    return cls


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Scenario:
    """Base class: no incident. Hooks are called by the generator, once per chunk of requests."""

    name: ClassVar[str] = "none"
    description: ClassVar[str] = "normal traffic, no incident"
    params_doc: ClassVar[dict[str, str]] = {}

    def __init__(self, params: dict[str, str] | None = None, horizon_s: float = 60.0) -> None:
        self.params = dict(params or {})
        known = {"start", "length", *self.params_doc}
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise ScenarioError(f"scenario {self.name!r}: unknown parameter(s) {unknown}; known: {sorted(known)}")
        self.horizon_s = horizon_s
        self.start = self._float("start", 0.3 * horizon_s)
        self.end = self.start + self._float("length", 0.3 * horizon_s)
        self.event_ids: list[str] = []
        self.first_event_s: float | None = None
        self.last_event_s: float | None = None
        self.t0 = 0.0

    def _float(self, key: str, default: float) -> float:
        raw = self.params.get(key)
        if raw is None:
            return default
        try:
            val = float(raw)
        except ValueError:
            raise ScenarioError(f"scenario {self.name!r}: {key}={raw!r} is not a number") from None
        if val < 0:
            raise ScenarioError(f"scenario {self.name!r}: {key} must be >= 0")
        return val

    # -- hooks --------------------------------------------------------------------------------------
    def setup(self, state: GeneratorState) -> None:
        self.t0 = state.t0

    def before_chunk(self, state: GeneratorState, t: float) -> bool:
        """Set the generator's modifiers for the chunk starting at simulated time ``t``; True if active."""
        return False

    def after_chunk(
        self, state: GeneratorState, rng: np.random.Generator, t_start: float, t_end: float, active: bool,
        events: list[Event], times: list[float],
    ) -> None:  # fmt: skip
        """Inspect (or extend, keeping ``times`` aligned and sorted) the chunk's events."""

    # -- ground truth -------------------------------------------------------------------------------
    def in_window(self, t: float) -> bool:
        return self.start <= t < self.end

    def _note(self, event_id: str, t: float) -> None:
        self.event_ids.append(event_id)
        if self.first_event_s is None:
            self.first_event_s = t
        self.last_event_s = t

    def target(self) -> dict[str, Any]:
        return {}

    def truth(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scenario": self.name, "description": self.description}
        if self.name == "none":
            out["event_ids"] = []
            return out
        out.update({
            "window": {"start": _iso(self.t0 + self.start), "end": _iso(self.t0 + self.end),
                       "start_offset_s": self.start, "end_offset_s": self.end},
            "target": self.target(),
            "affected_events": len(self.event_ids),
            "first_event": None if self.first_event_s is None else _iso(self.t0 + self.first_event_s),
            "last_event": None if self.last_event_s is None else _iso(self.t0 + self.last_event_s),
            "event_ids": self.event_ids,
        })  # fmt: skip
        return out


register(Scenario)


def _index(kind: str, name: str, names: list[str]) -> int:
    if name not in names:
        raise ScenarioError(f"unknown {kind} {name!r}; known: {names}")
    return names.index(name)


@dataclass(frozen=True, slots=True)
class _Knob:
    """What a :class:`_Multiplier` scenario turns: the parameter ``key`` names one of ``choices`` (a model
    or a team; ``default`` without it), whose entry in the generator's ``array`` (``latency_mult`` or
    ``team_mult``) becomes ``factor`` (``default_factor``) during the window; the noted events are those
    of ``noted_type`` whose ``payload[key]`` is that model or team."""

    key: str
    default: str
    default_factor: float
    array: str
    noted_type: str
    choices: tuple[str, ...]
    factor_doc: str  # what ``factor`` multiplies, for ``params_doc``

    def params_doc(self) -> dict[str, str]:
        return {self.key: f"{self.key} name (default {self.default})",
                "factor": f"{self.factor_doc} multiplier (default {self.default_factor:g})"}  # fmt: skip


class _Multiplier(Scenario):
    """A scenario that multiplies one model's or team's entry of a generator multiplier (see :class:`_Knob`).
    The chosen name is also set as the attribute named by the knob's ``key`` (``.model``, ``.team``)."""

    knob: ClassVar[_Knob]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.params_doc = cls.knob.params_doc()

    def __init__(self, params: dict[str, str] | None = None, horizon_s: float = 60.0) -> None:
        super().__init__(params, horizon_s)
        knob = self.knob
        self.value = self.params.get(knob.key, knob.default)
        self.index = _index(knob.key, self.value, list(knob.choices))
        self.factor = self._float("factor", knob.default_factor)
        setattr(self, knob.key, self.value)

    def before_chunk(self, state: GeneratorState, t: float) -> bool:
        active = self.in_window(t)
        getattr(state, self.knob.array)[self.index] = self.factor if active else 1.0
        return active

    def after_chunk(
        self, state: GeneratorState, rng: np.random.Generator, t_start: float, t_end: float, active: bool,
        events: list[Event], times: list[float],
    ) -> None:  # fmt: skip
        if not active:
            return
        etype, key, value = self.knob.noted_type, self.knob.key, self.value
        for ev, t in zip(events, times, strict=True):
            if ev["event_type"] == etype and ev["payload"].get(key) == value:
                self._note(ev["event_id"], t)


@register
class LatencySpike(_Multiplier):
    name = "latency_spike"
    description = "one model's latency multiplied by `factor` during the window"
    knob = _Knob("model", "claude-3-5-sonnet", 5.0, "latency_mult", "telemetry", tuple(m.name for m in C.MODELS),
                 "latency")  # fmt: skip

    def target(self) -> dict[str, Any]:
        spec = C.MODELS[self.index]
        return {"model": self.value, "provider": spec.provider, "asset_id": spec.asset_id,
                "metric": "gen_ai.client.operation.duration", "factor": self.factor}  # fmt: skip


@register
class CostSpike(_Multiplier):
    name = "cost_spike"
    description = "one team's request rate multiplied by `factor` during the window (cost follows)"
    knob = _Knob("team", "research", 10.0, "team_mult", "cost", tuple(t.name for t in C.TEAMS), "traffic")

    def target(self) -> dict[str, Any]:
        return {"team": self.value, "factor": self.factor, "event_type": "cost",
                "note": "event_ids are the team's cost events during the window"}  # fmt: skip


@register
class InjectionBurst(Scenario):
    name = "injection_burst"
    description = "a burst of prompt-injection findings from one source IP during the window"
    params_doc = {"ip": "attacker IP (default 203.0.113.77)", "rate": "findings per second (default 20)",
                  "project": "targeted project (default support-bot)"}  # fmt: skip

    def __init__(self, params: dict[str, str] | None = None, horizon_s: float = 60.0) -> None:
        super().__init__(params, horizon_s)
        self.ip = self.params.get("ip", "203.0.113.77")
        self.rate = self._float("rate", 20.0)
        self.project = self.params.get("project", "support-bot")
        projects = {p.name: p for p in C.PROJECTS}
        if self.project not in projects:
            raise ScenarioError(f"unknown project {self.project!r}; known: {sorted(projects)}")
        self.team = projects[self.project].team
        self._next_t = self.start

    def after_chunk(
        self, state: GeneratorState, rng: np.random.Generator, t_start: float, t_end: float, active: bool,
        events: list[Event], times: list[float],
    ) -> None:  # fmt: skip
        lo, hi = max(t_start, self.start), min(t_end, self.end)
        if hi <= lo or self.rate <= 0:
            return
        new_t: list[float] = []
        t = max(self._next_t, lo)
        while t < hi:
            new_t.append(t)
            t += float(rng.exponential(1.0 / self.rate))
        self._next_t = t
        if not new_t:
            return
        import numpy as np

        from hub.simulate.events import security_event, uuid4_strings

        ids = uuid4_strings(2 * len(new_t), rng)
        ts = state.timestamp_strings(np.array(new_t))
        model = C.MODELS[2]
        extra: list[tuple[float, Event]] = []
        for j, tj in enumerate(new_t):
            level = "critical" if rng.random() < 0.3 else "high"
            tags = {"team": self.team, "project": self.project, "user_id": f"user-{self.project}-anon",
                    "region": "us-east-1"}  # fmt: skip
            if state.tenant:
                tags["tenant_id"] = state.tenant
            ev = security_event(ids[2 * j], ts[j], "prompt_injection", level, 0.9 + 0.09 * float(rng.random()),
                                model.name, model.asset_id, f"user-{self.project}-anon", self.ip,
                                f"key-{self.project}-leaked", ids[2 * j + 1], "production", tags)  # fmt: skip
            extra.append((tj, ev))
            self._note(ev["event_id"], tj)
        merged = sorted(zip(times, events, strict=True), key=lambda p: p[0])
        merged += extra
        merged.sort(key=lambda p: p[0])
        times[:] = [p[0] for p in merged]
        events[:] = [p[1] for p in merged]

    def target(self) -> dict[str, Any]:
        return {"source_ip": self.ip, "threat_type": "prompt_injection", "project": self.project,
                "team": self.team, "rate_per_s": self.rate}  # fmt: skip


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"name:key=value,key=value"`` → (name, params)."""
    name, _, rest = spec.partition(":")
    params: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, val = item.partition("=")
        if not eq:
            raise ScenarioError(f"scenario parameter {item!r} is not key=value")
        params[key.strip()] = val.strip()
    return name.strip(), params


def make_scenario(spec: str, horizon_s: float) -> Scenario:
    name, params = parse_spec(spec)
    cls = SCENARIOS.get(name)
    if cls is None:
        raise ScenarioError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}")
    return cls(params, horizon_s)
