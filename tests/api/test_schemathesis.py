"""schemathesis against the hub's own OpenAPI schema: with and without credentials, no 5xx, and every
status code, content type and body as documented."""

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


#: Without credentials every operation answers 401 before it reads its input: a few examples of each check
#: that the 401 is documented everywhere; generating thousands of bodies to be refused unread takes minutes.
ANONYMOUS = ("--phases", "examples,fuzzing", "--max-examples", "2")


def _st(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(exe).exists():
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    return subprocess.run(
        [exe, "--config-file", str(CONFIG), "run", f"{url}/openapi.json", "--checks", CHECKS, "--workers", "1",
         "--seed", "1", "--no-color", *(extra or ("--max-examples", "8"))],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
    )  # fmt: skip


def test_open_hub_conforms_to_its_schema(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        out = _st(hub.api)
        assert out.returncode == 0, out.stdout[-4000:]
        assert httpx.get(f"{hub.api}/healthz").status_code == 200


def test_authenticated_hub_conforms_with_and_without_credentials(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store = hub.service.security.key_store
        assert store is not None
        key = store.create(tenant_id="st", role="tenant_admin").key
        anonymous = _st(hub.api, *ANONYMOUS)
        assert anonymous.returncode == 0, anonymous.stdout[-4000:]
        assert "returned only 401/403 responses" in anonymous.stdout, anonymous.stdout[-2000:]  # refused unread
        with_key = _st(hub.api, "--max-examples", "8", "--header", f"Authorization: Bearer {key}")
        assert with_key.returncode == 0, with_key.stdout[-4000:]
