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
    assert out[0].split() == ["type", "precision", "matched", "found", "recall", "covered", "truth"]
    result = json.loads(out[-1])
    for row in result["per_type"].values():  # each ratio is its two counts, which the table prints beside it
        assert row["matched_events"] <= row["found_events"] and row["covered_events"] <= row["truth_events"]
        if row["found_events"]:
            assert abs(row["matched_events"] / row["found_events"] - row["precision"]) < 1e-4
        if row["truth_events"]:
            assert abs(row["covered_events"] / row["truth_events"] - row["recall"]) < 1e-4
    assert result["eval"] == "rca" and result["incidents"] == 4
    assert set(result["per_type"]) >= {"causal_chain", "security_incident", "compliance_cascade"}
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["rca_top1"] <= result["rca_top3"] <= 1.0
    assert result["chance_chains"] == 0  # two busy, independent modules: no causal chain


def test_eval_table_shows_what_precision_and_recall_divide(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """``anomaly precision 0.993 recall 0.861 found 145 truth 36`` read like a bug: precision counts a found event
    as right when it belongs to any injected incident, and ``truth`` counts only that type's incidents. Each
    ratio now stands next to its numerator and denominator, with a note under the table (the walkthrough's
    figures, from a stubbed evaluation: the real one runs in the test above)."""
    from analytics.correlation import evaluate

    per_type = {
        "anomaly": {"precision": 0.9931, "recall": 0.8611, "found_events": 145, "matched_events": 144,
                    "truth_events": 36, "covered_events": 31},
        "cost_impact": {"precision": None, "recall": None, "found_events": 0, "matched_events": 0,
                        "truth_events": 0, "covered_events": 0},
    }  # fmt: skip
    figures = {"per_type": per_type, "precision": 0.9931, "recall": 0.8611, "accuracy": 0.9224, "rca_top1": 1.0,
               "rca_top3": 1.0, "incidents": 4, "flush_p50_ms": 1.0, "flush_p95_ms": 2.0}  # fmt: skip
    monkeypatch.setattr(evaluate, "run_eval", lambda **_: dict(figures))
    assert main(["rca", "--seeds", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["type", "precision", "matched", "found", "recall", "covered", "truth"]
    assert lines[1].split() == ["anomaly", "0.993", "144", "145", "0.861", "31", "36"]
    assert lines[2].split() == ["cost_impact", "-", "0", "0", "-", "0", "0"]
    notes = " ".join(line.strip() for line in lines[3:] if not line.startswith(("overall", "RCA", "{")))
    assert notes == (
        "precision = matched / found: found = events the correlations of this type link; matched = those that "
        "belong to the injected incident each correlation overlaps most (an incident of any type) "
        "recall = covered / truth: truth = events of the injected incidents of this type; covered = those linked "
        "by a correlation of this type"
    )
    assert json.loads(lines[-1])["per_type"]["anomaly"]["matched_events"] == 144


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
