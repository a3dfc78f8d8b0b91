"""``benchmarks/budget_eval.py`` runs end to end and its three methods differ only where they should."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import budget_eval

from analytics.forecast import EnsembleConfig


def test_prints_one_json_line_last(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget_eval, "DATA", Path("/nonexistent"))  # simulated series only
    assert budget_eval.main(["--simulated", "2", "--horizon", "48"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert "no M4 data" in captured.err
    assert report["benchmark"] == "budget_eval" and set(report) >= {"stationary", "daily", "gamma"}
    for kind in ("stationary", "daily", "gamma"):
        assert report[kind]["series"] == 2
        for method in budget_eval.METHODS:
            assert 0.0 <= report[kind][method]["coverage"] <= 1.0 and report[kind][method]["median_width"] > 0


def test_independent_steps_only_remove_the_shared_level() -> None:
    y = budget_eval.simulated_series(1)["stationary"][0]
    hub = budget_eval.interval(y, 48, EnsembleConfig.totals())
    with budget_eval.independent_steps():
        independent = budget_eval.interval(y, 48, EnsembleConfig.totals())
    # the same fit and centre; a shared level only widens the interval of the total
    assert np.mean(hub) == pytest.approx(np.mean(independent), rel=0.05)
    assert hub[1] - hub[0] > independent[1] - independent[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--horizon", "0"], "argument --horizon: must be a positive integer, got '0'"),
        (["--m4", "0"], "argument --m4: must be a positive integer"),  # was a ZeroDivisionError
        (["--simulated", "x"], "argument --simulated: must be a positive integer, got 'x'"),
        (["--horizon", "500"], "--horizon must be at most 168, got 500"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        budget_eval.main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
