"""schemathesis against the hub's own OpenAPI schema: with and without credentials, no 5xx, and every
status code, content type and body as documented.

The open hub gets the deep run: every phase (examples, coverage, fuzzing, stateful) at 8 examples (fuzzing in a
second schemathesis process beside the other phases: generating the cases takes a core of its own). Past the
authentication, the hub with auth enabled runs the same handlers on the same inputs, so it is not fuzzed
deeply a second time: with a key and without one, every operation gets its examples and 2 fuzzed cases
(valid and invalid input), and with the key the stateful phase's chains (create, then read, update, delete)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers.hub import running_hub

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
HERE = Path(__file__).parent
#: bounds the coverage phase on the published request bodies; hooks: a serializer for application/x-ndjson
CONFIG, HOOKS = HERE / "schemathesis.toml", HERE / "schemathesis_hooks.py"


#: The deep run, on the open hub: every phase, 8 examples per operation for fuzzing and the stateful phase
#: (two processes side by side: each response is checked against the schema alone, whatever the other wrote).
DEEP = (
    ("--phases", "examples,coverage,stateful", "--max-examples", "8"),
    ("--phases", "fuzzing", "--max-examples", "8"),
)
#: Without credentials every operation answers 401 before it reads its input: a few examples of each check
#: that the 401 is documented everywhere; generating thousands of bodies to be refused unread takes minutes.
ANONYMOUS = ("--phases", "examples,fuzzing", "--max-examples", "2")
#: With a key, every operation a few times (its examples, 2 fuzzed cases) and the stateful chains: what the
#: key changes (the tenant, the role's 403s) shows on every operation; the inputs were explored by DEEP.
WITH_KEY = ("--phases", "examples,fuzzing,stateful", "--max-examples", "2")


def _st(url: str, *extra: str) -> subprocess.Popen[str]:
    """schemathesis started on ``url``'s schema (``.communicate()`` waits for it)."""
    exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(exe).exists():
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    return subprocess.Popen(
        [exe, "--config-file", str(CONFIG), "run", f"{url}/openapi.json", "--checks", CHECKS, "--workers", "1",
         "--seed", "1", "--no-color", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
    )  # fmt: skip


def _finish(*runs: subprocess.Popen[str]) -> list[str]:
    """Wait for schemathesis runs started side by side; their outputs, each asserted to be a pass."""
    outputs = []
    try:
        for run in runs:
            try:
                out, _ = run.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                run.kill()
                out, _ = run.communicate()
                raise AssertionError(f"schemathesis did not finish in 300 s:\n{out[-4000:]}") from None
            assert run.returncode == 0, out[-4000:]
            outputs.append(out)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    return outputs


def test_open_hub_conforms_to_its_schema(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        _finish(*(_st(hub.api, *phases) for phases in DEEP))
        assert httpx.get(f"{hub.api}/healthz").status_code == 200


def test_authenticated_hub_conforms_with_and_without_credentials(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store = hub.service.security.key_store
        assert store is not None
        key = store.create(tenant_id="st", role="tenant_admin").key
        # the two runs share the hub and nothing else (the anonymous one changes no state): side by side,
        # each on its own core where there are two
        bearer = ("--header", f"Authorization: Bearer {key}")
        refused, _ = _finish(_st(hub.api, *ANONYMOUS), _st(hub.api, *WITH_KEY, *bearer))
        assert "returned only 401/403 responses" in refused, refused[-2000:]  # refused unread
