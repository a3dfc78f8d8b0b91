"""The simulated platform: models with prices and latency profiles, teams, projects, users, policies.

Prices are USD per 1,000 tokens (list prices of late 2024; llama-3-70b at a typical hosted price).
Latency is ``TTFT + output_tokens * per-token time`` with noise and a heavy tail (see ``generator``).

    >>> [m.name for m in MODELS][:2], MODELS[0].asset_id
    (['gpt-4o', 'gpt-4o-mini'], 'model-openai-gpt-4o')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    provider: str
    price_in: float  # USD per 1k input tokens
    price_out: float  # USD per 1k output tokens
    ttft_ms: float  # median time to first token at ~1k input tokens
    per_token_ms: float  # median decode time per output token
    context_window: int
    version: str
    family: str

    @property
    def asset_id(self) -> str:
        return f"model-{self.provider}-{self.name}"


MODELS: Final[tuple[ModelSpec, ...]] = (
    ModelSpec("gpt-4o", "openai", 0.0025, 0.010, 420.0, 11.0, 128_000, "2024-08-06", "gpt-4o"),
    ModelSpec("gpt-4o-mini", "openai", 0.00015, 0.0006, 300.0, 7.0, 128_000, "2024-07-18", "gpt-4o"),
    ModelSpec("claude-3-5-sonnet", "anthropic", 0.003, 0.015, 650.0, 13.0, 200_000, "20241022", "claude-3.5"),
    ModelSpec("claude-3-haiku", "anthropic", 0.00025, 0.00125, 380.0, 6.0, 200_000, "20240307", "claude-3"),
    ModelSpec("llama-3-70b", "meta", 0.00059, 0.00079, 260.0, 9.0, 8_192, "instruct", "llama-3"),
    ModelSpec("mistral-large", "mistral", 0.002, 0.006, 520.0, 15.0, 128_000, "2411", "mistral-large"),
)


@dataclass(frozen=True, slots=True)
class ProjectSpec:
    name: str
    team: str
    workload: str  # a key of traces.WORKLOADS
    share: float  # of the team's traffic
    model_weights: tuple[float, ...]  # one per MODELS entry


@dataclass(frozen=True, slots=True)
class TeamSpec:
    name: str
    weight: float
    projects: tuple[ProjectSpec, ...] = field(default_factory=tuple)


def _p(name: str, team: str, workload: str, share: float, weights: tuple[float, ...]) -> ProjectSpec:
    return ProjectSpec(name, team, workload, share, weights)


#                              gpt-4o  mini  sonnet haiku llama mistral
TEAMS: Final[tuple[TeamSpec, ...]] = (
    TeamSpec("support", 0.30, (
        _p("support-bot", "support", "conversation", 0.7, (0.15, 0.45, 0.05, 0.25, 0.05, 0.05)),
        _p("ticket-triage", "support", "conversation", 0.3, (0.0, 0.5, 0.0, 0.4, 0.1, 0.0)),
    )),
    TeamSpec("search", 0.25, (
        _p("semantic-search", "search", "conversation", 0.6, (0.2, 0.4, 0.1, 0.1, 0.1, 0.1)),
        _p("query-rewrite", "search", "conversation", 0.4, (0.0, 0.6, 0.0, 0.2, 0.2, 0.0)),
    )),
    TeamSpec("devtools", 0.20, (
        _p("code-assistant", "devtools", "code", 0.75, (0.45, 0.1, 0.35, 0.0, 0.1, 0.0)),
        _p("code-review", "devtools", "code", 0.25, (0.3, 0.0, 0.6, 0.0, 0.0, 0.1)),
    )),
    TeamSpec("research", 0.15, (
        _p("doc-qa", "research", "long_context", 0.6, (0.3, 0.1, 0.4, 0.2, 0.0, 0.0)),
        _p("summarizer", "research", "long_context", 0.4, (0.2, 0.2, 0.3, 0.3, 0.0, 0.0)),
    )),
    TeamSpec("marketing", 0.10, (
        _p("copywriter", "marketing", "conversation", 1.0, (0.4, 0.2, 0.2, 0.0, 0.0, 0.2)),
    )),
)  # fmt: skip

PROJECTS: Final[tuple[ProjectSpec, ...]] = tuple(p for t in TEAMS for p in t.projects)
USERS_PER_PROJECT: Final = 25

ENVIRONMENTS: Final = (("production", 0.85), ("staging", 0.10), ("development", 0.05))
# Requests served from eu-west-1 are billed in EUR.
REGIONS: Final = (("us-east-1", 0.65), ("eu-west-1", 0.22), ("ap-southeast-1", 0.13))
EUR_REGION: Final = "eu-west-1"
USD_PER_EUR: Final = 1.08  # matches hubcore.config.DEFAULT_EXCHANGE_RATES

ERROR_TYPES: Final = (("rate_limited", 0.5), ("server_error", 0.3), ("timeout", 0.2))

# llm-policy-engine policies: (policy_id, name, rule ids, reason when not passing)
POLICIES: Final = (
    ("pol-content-safety", "Content safety", ("cs-001", "cs-004"), "unsafe content category detected"),
    ("pol-pii-redaction", "PII redaction", ("pii-002",), "unredacted PII in prompt"),
    ("pol-token-budget", "Per-request token budget", ("tb-001",), "request exceeds the project's token budget"),
    ("pol-model-allowlist", "Model allow-list", ("ma-001",), "model not approved for this environment"),
)
POLICY_RESULTS: Final = (("pass", 0.985), ("warn", 0.01), ("fail", 0.005))  # healthy under the 95 % compliance rule

# llm-governance: (policy_id, regulation, violation_type)
GOVERNANCE_POLICIES: Final = (
    ("gov-data-retention", "GDPR", "retention_period_exceeded"),
    ("gov-cross-border-transfer", "GDPR", "cross_border_transfer"),
    ("gov-access-control", "SOC2", "unauthorised_access"),
    ("gov-change-management", "SOC2", "unapproved_model_change"),
    ("gov-phi-handling", "HIPAA", "phi_disclosure"),
)
GOVERNANCE_ACTIONS: Final = (("audit", 0.90), ("violation", 0.05), ("approval", 0.03), ("exception", 0.02))

# llm-sentinel
THREAT_TYPES: Final = (("prompt_injection", 0.60), ("pii_leak", 0.25), ("jailbreak", 0.15))
THREAT_LEVELS: Final = (("low", 0.30), ("medium", 0.40), ("high", 0.22), ("critical", 0.08))
THREAT_INDICATORS: Final = {
    "prompt_injection": ("ignore_previous_instructions", "system_prompt_override", "tool_call_hijack"),
    "pii_leak": ("email_address", "credit_card_number", "us_ssn"),
    "jailbreak": ("dan_prompt", "roleplay_bypass", "encoding_obfuscation"),
}

# Per-request probabilities of the correlated side events.
P_ERROR: Final = 0.02
P_POLICY: Final = 0.30
P_SECURITY: Final = 0.004
P_GOVERNANCE: Final = 0.08
P_REGISTRY_UPDATE: Final = 0.0005
P_LATENCY_IN_SECONDS: Final = 0.2  # share of telemetry events that report seconds instead of ms
P_HEAVY_TAIL: Final = 0.02

# Where each module's event of a request falls, in milliseconds from the model call's telemetry (the request's
# time), in the order a platform handles a call: the policy check and the security scan of the prompt before
# the call, the cost and the governance audit record after it. Distinct times give the correlation engine the
# order it learns the dependency graph from (``GET /api/v1/dependencies``: events of one correlation id that
# share their time give none).
OFFSET_MS_POLICY: Final = -4
OFFSET_MS_SECURITY: Final = -2
OFFSET_MS_COST: Final = 1
OFFSET_MS_GOVERNANCE: Final = 2
