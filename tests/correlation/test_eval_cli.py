"""``hub eval rca``: runs in-process, prints a table and one JSON line last; doctests of the package."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from hub.eval_cli import main

MODULES = ("frame", "model", "timeutil", "rca", "detect", "detect_sequences", "detect_stats", "detect_graphs",
           "persist", "scenarios")  # fmt: skip


def test_eval_rca_prints_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rca", "--seeds", "1", "--duration", "120", "--rate", "40"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].split()[:3] == ["type", "precision", "recall"]
    result = json.loads(out[-1])
    assert result["eval"] == "rca" and result["incidents"] == 4
    assert set(result["per_type"]) >= {"causal_chain", "security_incident", "compliance_cascade"}
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["rca_top1"] <= result["rca_top3"] <= 1.0
    assert result["chance_chains"] == 0  # two busy, independent modules: no causal chain


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "0"], "--seeds must be at least 1, got 0"),
        (["--duration", "60"], "--duration must be at least 120 s, got 60.0"),
        (["--duration", "inf"], "--duration must be at least 120 s, got inf"),
        (["--rate", "nan"], "--rate must be a positive number, got nan"),  # was a ValueError traceback
        (["--rate", "-1"], "--rate must be a positive number, got -1.0"),
    ],
)
def test_eval_rejects_bad_arguments(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["rca", *args]) == 2
    assert capsys.readouterr().err.strip() == f"hub eval rca: {message}"


def test_eval_rejects_an_unknown_command() -> None:
    with pytest.raises(SystemExit):
        main(["nope"])


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"analytics.correlation.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
