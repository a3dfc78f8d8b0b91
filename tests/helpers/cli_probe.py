"""Run ``hub ARGV`` in a fresh interpreter and see what it imported (so other tests' imports do not count).

    probe = probe_hub("detect", "--help")
    assert probe.code == 0 and heavy_modules(probe.modules, ("torch", "pandas")) == []
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass

_PROBE = """
import json, sys
from hub.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@dataclass(frozen=True)
class Probe:
    """What ``hub ARGV`` did: its exit code, what it printed before the probe's line, stderr, the modules."""

    code: int | str | None
    stdout: str
    stderr: str
    modules: list[str]


def probe_hub(*argv: str) -> Probe:
    """``hub ARGV`` (``hub.cli.main``) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    *lines, last = out.stdout.strip().splitlines()
    result = json.loads(last)
    return Probe(result["code"], "\n".join(lines), out.stderr, result["modules"])


def heavy_modules(modules: Iterable[str], heavy: Iterable[str]) -> list[str]:
    """The ``modules`` that are, or are inside, one of ``heavy`` (top-level names or dotted modules)."""
    names = tuple(heavy)
    return [m for m in modules if any(m == h or m.startswith(f"{h}.") for h in names)]
