"""Golden checks: the same seed gives byte-for-byte the same events as before the package was split.

The digests were computed on 2026-11-26 (commit 738c863), before ``hub/simulate/generator.py`` and
``senders.py`` were split into smaller modules. They cover the generator's events and simulated times
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
    (None, 1, None, "1587c8b724ee27b292450d87290d429ad79c33f8972b0db4023d508584129ae2"),
    (None, 7, "acme", "9f7a44d3958ea5f1d508ac357bc5f74342cd2df991bd2beb434929ada2b05dd8"),
    ("latency_spike:start=2,length=5", 3, None, "8e20f4fe921454b7dc8cb57fde93cca1001af681b71f4689934f1c1f60521b4a"),
    ("cost_spike:start=1,length=6", 4, "t1", "a624c53f710db33c8ca227dcf75983d31fd118dd5520108e0c58ae658bbc31e1"),
    ("injection_burst:start=2,length=4,rate=50", 5, None,
     "0ccf1db7e40c4701d6a88ccff8648724d99c209272483561fb224789525a8242"),
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
        "23fc3bc30ca03ace126d1659eac6e4316a61615cd93b7204f22807024bb77a41"
    )
