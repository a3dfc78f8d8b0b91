"""The correlation data model: correlation types, correlations, incidents, RCA hypotheses, configs.

>>> c = Correlation.build("causal_chain", "t1", ["e1", "e2"], ["llm-sentinel", "llm-governance"],
...                       0.9, "security finding led to a violation", 1_000_000, 2_000_000, key="corr-1")
>>> c.type, len(c.id)
('causal_chain', 16)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

CORRELATION_TYPES: Final = (
    "causal_chain",
    "temporal",
    "pattern",
    "anomaly",
    "cost_impact",
    "security_incident",
    "performance_degradation",
    "compliance_cascade",
)


def stable_id(*parts: str) -> str:
    """A short deterministic id (so a correlation seen again in a later window is updated, not duplicated)."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


def empty_impact() -> dict[str, Any]:
    return {
        "performance": {"error_events": 0, "max_latency_ms": 0.0},
        "cost": {"usd": 0.0, "wasted_usd": 0.0},
        "security": {"findings": 0, "max_level": None},
        "business": {"sla_breach": False, "affected_users": 0},
    }


@dataclass(slots=True)
class Correlation:
    """Events linked by one correlation method. ``root_event_id`` is the detector's best root guess."""

    id: str
    type: str
    tenant_id: str
    event_ids: list[str]
    modules: list[str]
    confidence: float
    explanation: str
    start_us: int
    end_us: int
    impact: dict[str, Any] = field(default_factory=empty_impact)
    root_event_id: str | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    #: statistics behind the finding where the detector ran a test (a causal chain's base-rate test)
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls, ctype: str, tenant_id: str, event_ids: list[str], modules: list[str], confidence: float,
        explanation: str, start_us: int, end_us: int, *, key: str, root_event_id: str | None = None,
        dimensions: dict[str, str] | None = None, evidence: dict[str, Any] | None = None,
    ) -> Correlation:  # fmt: skip
        if ctype not in CORRELATION_TYPES:
            raise ValueError(f"ctype must be one of {CORRELATION_TYPES}, got {ctype!r}")
        return cls(
            stable_id(tenant_id, ctype, key), ctype, tenant_id, list(dict.fromkeys(event_ids)),
            sorted(set(modules)), round(min(max(confidence, 0.0), 1.0), 4), explanation, int(start_us), int(end_us),
            root_event_id=root_event_id, dimensions=dict(dimensions or {}), evidence=dict(evidence or {}),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        from analytics.correlation.timeutil import iso

        return {
            "id": self.id, "type": self.type, "tenant_id": self.tenant_id, "event_ids": self.event_ids,
            "modules": self.modules, "confidence": self.confidence, "impact": self.impact,
            "explanation": self.explanation, "start": iso(self.start_us), "end": iso(self.end_us),
            "root_event_id": self.root_event_id, "dimensions": self.dimensions, "evidence": self.evidence,
        }  # fmt: skip


@dataclass(slots=True)
class Incident:
    """Correlations that share events or overlap in time on shared dimensions."""

    id: str
    tenant_id: str
    correlation_ids: list[str]
    types: list[str]
    event_ids: list[str]
    start_us: int
    end_us: int
    confidence: float
    title: str
    impact: dict[str, Any] = field(default_factory=empty_impact)

    def to_dict(self) -> dict[str, Any]:
        from analytics.correlation.timeutil import iso

        return {
            "id": self.id, "tenant_id": self.tenant_id, "correlation_ids": self.correlation_ids,
            "types": self.types, "event_count": len(self.event_ids), "start": iso(self.start_us),
            "end": iso(self.end_us), "confidence": self.confidence, "title": self.title, "impact": self.impact,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class AnomalyRecord:
    """An anomaly from the anomaly detector (vmanomaly vocabulary: ``anomaly_score`` > 1 is anomalous)."""

    ts_us: int
    anomaly_score: float
    source_module: str = ""
    name: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Streaming and detection settings (defaults follow the issue: 60 s windows, bounded memory)."""

    window_s: float = 60.0
    chain_max_gap_s: float = 60.0
    max_events_per_window: int = 50_000
    max_events_per_key: int = 200
    max_tenants: int = 1_000
    bucket_s: float = 1.0
    max_lag_buckets: int = 10
    temporal_alpha: float = 0.001
    #: a causal chain's modules must co-occur on requests above their base rates: p < chain_alpha, lift >= this
    chain_alpha: float = 0.01
    chain_min_lift: float = 3.0
    spike_z: float = 4.0
    min_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError("window_s must be positive")
        if self.max_events_per_window <= 0 or self.max_events_per_key <= 0:
            raise ValueError("max_events_per_window and max_events_per_key must be positive")
        if self.bucket_s <= 0 or self.bucket_s * 4 > self.window_s:
            raise ValueError("bucket_s must be positive and at most window_s / 4")
        if not 0 < self.temporal_alpha < 1:
            raise ValueError("temporal_alpha must be in (0, 1)")
        if not 0 < self.chain_alpha < 1:
            raise ValueError("chain_alpha must be in (0, 1)")
        if not self.chain_min_lift >= 1:
            raise ValueError("chain_min_lift must be at least 1")
