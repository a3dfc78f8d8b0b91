"""Golden checks: the same seed gives byte-for-byte the same events as before the package was split.

The digests were computed on 2026-11-26 (commit 738c863), before ``hub/simulate/generator.py`` and
``senders.py`` were split into smaller modules, and recomputed on 2026-11-27 when the policy results
became pass 98.5 % / warn 1 % / fail 0.5 % (a healthy platform under the shipped 95 % compliance rule), and again
on 2026-11-27 when the other modules' events of a request moved a few ms before (policy, security) or after (cost,
governance) its telemetry (``catalog.OFFSET_MS_*``: the order the dependency graph is learned from) and at most one
module reports trouble per request on healthy traffic (``traffic.chunk``). They cover the generator's events and simulated times
(with and without a tenant, with each scenario and its ground truth) and a ``--dry-run`` file written by
the CLI. A deliberate change to the generated events must update them (and say so in the commit).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from hub.simulate import GeneratorState, encode_lines, generate_timed, make_scenario, synthetic_traces
from hub.simulate.cli import main

T0 = 1_800_000_000.0

GOLDEN = [
    (None, 1, None, "dec6e705ee5ff7176685353a41b0d51b1031de5e70d6a54699b6d5fcd446d52c"),
    (None, 7, "acme", "f2d388abe7d9344ddf894c78cf414749df0bdd3569a32411dcab44c8f4a3f65c"),
    ("latency_spike:start=2,length=5", 3, None, "fb13ce4dfe19b09895de78cff783239e6b8fa63006324b8fa95eab6f51dde5a4"),
    ("cost_spike:start=1,length=6", 4, "t1", "d9399bac20a204f2ca69e2ff0d3d2418b29a0c1a4b6fb2b0dd86f99b32313a72"),
    ("injection_burst:start=2,length=4,rate=50", 5, None,
     "adc042c96428066cdeb7b48c5e420fbca10d0b4507441422e4eeb52b1328da9f"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "seed", "tenant", "digest"), GOLDEN)
def test_generator_events_for_a_seed_are_unchanged(
    spec: str | None, seed: int, tenant: str | None, digest: str
) -> None:
    scenario = None if spec is None else make_scenario(spec, horizon_s=20.0)
    state = GeneratorState.create(synthetic_traces(), rate=2000.0, t0=T0, tenant=tenant, scenario=scenario)
    rng = np.random.default_rng(seed)
    h = hashlib.sha256()
    for n in (1, 999, 5000, 20000):
        events, times = generate_timed(n, rng, state)
        h.update(encode_lines(events))
        h.update(repr(times).encode())
    if scenario is not None:
        h.update(repr(sorted(scenario.truth().items())).encode())
    assert h.hexdigest() == digest


def test_cli_dry_run_file_for_a_seed_is_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "events.jsonl"
    code = main(["--dry-run", "--output", str(out), "--count", "5000", "--rate", "800", "--seed", "12",
                 "--tenant", "acme", "--start-time", "2026-01-01T00:00:00Z", "--traces-dir", str(tmp_path / "none"),
                 "--scenario", "injection_burst:start=1,length=2", "--quiet"])  # fmt: skip
    capsys.readouterr()
    assert code == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == (
        "9e0097a8b25a33e901fc3b7d65430d48e460543d4c4d4d32875458ad1367c6e4"
    )
