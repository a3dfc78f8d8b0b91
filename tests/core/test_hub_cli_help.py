"""``hub --help`` and every subcommand's ``--help`` print their usage and exit 0 (a ``%`` in a help
string once made ``hub --help`` crash: argparse formats help strings with ``%``)."""

from __future__ import annotations

import importlib

import pytest

from hub.cli import DELEGATED, main


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("run", *DELEGATED):
        assert name in out
    assert "95% intervals" in out


@pytest.mark.parametrize("command", sorted(DELEGATED))
def test_every_subcommand_help_exits_0(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    entry = importlib.import_module(DELEGATED[command][0]).main
    try:
        code = entry(["--help"])
    except SystemExit as exc:  # some subcommands let argparse exit
        code = exc.code
    assert code == 0
    assert "usage:" in capsys.readouterr().out


def test_run_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    assert "--data-dir" in capsys.readouterr().out


def test_run_help_says_a_non_loopback_host_needs_auth_on(capsys: pytest.CaptureFixture[str]) -> None:
    # it used to say "on for non-loopback", as if auth turned itself on: the hub refuses to start instead (exit 2)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps help lines
    assert "a non-loopback --host needs it on" in out
    assert "on for non-loopback" not in out
