"""``hub <command> --help``, ``hub --version`` and argument errors are answered before the engines are imported.

``hub detect --help`` had imported pandas and the detectors, ``hub forecast --help`` statsforecast (2-3 s),
``hub simulate --help`` the senders (httpx, gRPC) and numpy, and ``hub keys --help`` / ``hub run``'s
configuration checks the JWT client (httpx, PyJWT) through ``hubcore.security``. Each case runs ``hub.cli.main``
in a fresh interpreter (other tests' imports would hide a regression) and lists what it imported; no timings.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli_probe import heavy_modules, probe_hub

#: What a usage text or an argument error must not import: the engines and the clients (top-level names or
#: dotted modules; a name covers its submodules).
HEAVY = ("torch", "sklearn", "scipy", "statsforecast", "statsmodels", "numba", "pandas", "numpy", "pyarrow",
         "duckdb", "httpx", "grpc", "jwt", "fastapi", "uvicorn", "prometheus_client", "hub.service",
         "hub.simulate.generator", "hub.simulate.senders", "hub.simulate.traces", "analytics.anomaly.ensemble",
         "analytics.anomaly.registry", "analytics.forecast.ensemble", "analytics.forecast.frequency",
         "analytics.timestamps", "processors", "api", "hub.servers", "hub.startup_replay", "hub.shutdown",
         "hub.exporter_hooks", "hub.security_setup")  # fmt: skip


def _probe(*argv: str) -> tuple[int | str | None, str, str, list[str]]:
    """``hub ARGV`` in a fresh interpreter: (exit code, stdout before the probe's line, stderr, modules)."""
    probe = probe_hub(*argv)
    return probe.code, probe.stdout, probe.stderr, probe.modules


def _heavy(modules: list[str]) -> list[str]:
    return heavy_modules(modules, HEAVY)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli")
    daily = root / "daily.csv"
    daily.write_text("ds,y\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 32)))
    series = root / "series.csv"
    series.write_text("timestamp,value\n" + "".join(f"2024-01-01T00:{m:02d}:00Z,{m % 7}\n" for m in range(60)))
    wide = root / "wide.csv"  # M4's layout: one series per row, 961 columns V1..V961
    wide.write_text(",".join(f'"V{i}"' for i in range(1, 962)) + "\n" + ",".join(['"H1"'] + ["1"] * 960) + "\n")
    other = root / "other.csv"
    other.write_text("time,amount\n2024-01-01,1\n")
    return {"daily": str(daily), "series": str(series), "dir": str(root), "missing": str(root / "missing.csv"),
            "out": str(root / "out.csv"), "no_data_dir": str(root / "no-such-dir"), "wide": str(wide),
            "other": str(other)}  # fmt: skip


#: (argv with {placeholders} from ``files``, expected exit code, text expected on stdout (code 0) or stderr).
CASES: list[tuple[list[str], int, str]] = [
    (["--help"], 0, "usage: hub"),
    (["run", "--help"], 0, "--data-dir"),
    (["run", "--api-port", "x"], 2, "argument --api-port: invalid int value: 'x'"),
    (["run", "--config", "{missing}"], 2, "hub run: invalid configuration: config file"),
    (["run", "--host", "0.0.0.0", "--data-dir", "{dir}/data"], 2, "hub run: refusing to start: service.api.host"),
    (["simulate", "--help"], 0, "Scenarios: "),
    (["simulate", "--rate", "-1"], 2, "argument --rate: must be a positive number, got -1"),
    (["simulate", "--rate", "5"], 2, "give --duration S or --count N"),
    (["simulate", "--dry-run", "--output", "{out}", "--count", "5", "--scenario", "nope"], 2, "error: --scenario:"),
    (["detect", "--help"], 0, "--detectors NAME"),
    (["detect", "--bogus"], 2, "the following arguments are required: --input, --output"),
    (["detect", "--input", "{missing}", "--output", "{out}"], 2, "hub detect: error: input file not found:"),
    (["detect", "--input", "{dir}", "--output", "{out}"], 2, "hub detect: error: input is not a file:"),
    (["detect", "--input", "{series}", "--output", "{out}", "--detectors", "robust,nope"], 2,
     "hub detect: error: --detectors: unknown detector 'nope'; choose from robust, seasonal, iforest, "
     "autoencoder, lstm, zscore"),
    (["detect", "--input", "{series}", "--output", "{out}", "--detectors", "robust,robust"], 2,
     "hub detect: error: --detectors names a detector twice: robust,robust"),
    # the file's columns and the output path, from the header line alone (they came after the engine: 2-5 s)
    (["detect", "--input", "{other}", "--output", "{out}"], 2,
     "hub detect: error: missing column(s) timestamp, value in {other}; found time, amount. Expected one row per "
     "time step with a time column and a value column (timestamp,value or ds,y)\n"),
    (["detect", "--input", "{series}", "--output", "{out}", "--related", "tokens"], 2,
     "hub detect: error: --related column 'tokens' is not a related column of {series}; found: none"),
    (["detect", "--input", "{series}", "--output", "{series}"], 2,
     "hub detect: error: --output {series} is the input file; write the result to another file"),
    (["detect", "--input", "{series}", "--output", "{dir}"], 2, "hub detect: error: --output {dir} is a directory"),
    (["detect", "--input", "{series}", "--output", "{series}/x.csv"], 2,
     "hub detect: error: cannot write {series}/x.csv: {series} is not a directory"),
    (["forecast", "--help"], 0, "--horizon"),
    (["forecast", "--input", "{missing}", "--horizon", "7d", "--output", "{out}"], 2,
     "hub forecast: error: input file not found:"),
    (["forecast", "--input", "{daily}", "--horizon", "soon", "--output", "{out}"], 2,
     "hub forecast: error: horizon 'soon' is neither a number of steps nor a duration such as 7d or 168h"),
    (["forecast", "--input", "{daily}", "--horizon", "0d", "--output", "{out}"], 2,
     "hub forecast: error: horizon must be at least one step, got '0d'"),
    (["forecast", "--input", "{daily}", "--horizon", "7d", "--level", "200", "--output", "{out}"], 2,
     "hub forecast: error: level must be a percentage between 0 and 100 (exclusive), got 200"),
    (["forecast", "--input", "{wide}", "--horizon", "48", "--output", "{out}"], 2,
     "hub forecast: error: missing column(s) ds, y in {wide}; found 961 columns: V1, V2, V3, V4, V5, ..., V961. "
     "Expected one row per time step with a time column and a value column (ds,y or timestamp,value; --time-col "
     "and --target-col name others); this looks like a wide file"),
    (["forecast", "--input", "{daily}", "--horizon", "7d", "--output", "{daily}/x.csv"], 2,
     "hub forecast: error: cannot write {daily}/x.csv: {daily} is not a directory\n"),
    (["forecast", "--input", "{daily}", "--horizon", "7d", "--output", "{daily}"], 2,
     "hub forecast: error: --output {daily} is the input file"),
    (["keys", "--help"], 0, "usage: hub keys"),
    (["keys", "create", "--help"], 0, "--expires-in"),
    (["keys", "list", "--data-dir", "{no_data_dir}"], 2, "hub keys: data directory"),
    (["audit", "--help"], 0, "usage: hub audit"),
    (["audit", "verify", "--data-dir", "{no_data_dir}"], 2, "hub audit: data directory"),
    (["eval", "--help"], 0, "usage: hub eval"),
    (["eval", "rca", "--seeds", "0"], 2, "hub eval rca: --seeds must be at least 1, got 0"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "code", "text"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_usage_and_argument_errors_import_no_engine(argv: list[str], code: int, text: str,
                                                    files: dict[str, str]) -> None:  # fmt: skip
    got, out, err, modules = _probe(*(a.format(**files) for a in argv))
    assert got == code, err
    assert text.format(**files) in (out if code == 0 else err)
    assert _heavy(modules) == []
    assert not Path(files["out"]).exists()


def test_errors_are_one_line_before_the_input_is_read(files: dict[str, str]) -> None:
    # a bad horizon had been reported after reading the file and inferring its frequency (a progress line first)
    code, _, err, _ = _probe("forecast", "--input", files["daily"], "--horizon", "soon", "--output", files["out"])
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    code, out, _, modules = _probe("--version")
    assert code == 0
    assert out == f"hub {version('llm-analytics-hub')}"
    assert _heavy(modules) == []
    assert "msgspec" not in modules and "hubcore.config" not in modules


def test_python_dash_m_hub_is_the_hub_command() -> None:
    out = subprocess.run([sys.executable, "-m", "hub", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("hub ")


def test_a_good_command_still_imports_its_engine(files: dict[str, str], tmp_path: Path) -> None:
    """The probe sees imports: a command that runs imports what it needs (the checks above are not vacuous)."""
    out = tmp_path / "scored.csv"
    code, _, err, modules = _probe("detect", "--input", files["series"], "--output", str(out), "--detectors",
                                   "robust", "--quiet")  # fmt: skip
    assert code == 0, err
    assert "pandas" in modules and "analytics.anomaly.ensemble" in modules
    assert out.read_text().splitlines()[0] == "timestamp,value,anomaly_score,is_anomaly,severity,detected_by"


def test_an_unreadable_input_is_reported_before_the_detectors_are_imported(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opening it had raised a traceback from inside pandas (after the imports). Root reads a mode-000 file, so
    the refusal is simulated."""
    from analytics.anomaly import cli

    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if str(self) == files["series"]:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert cli.main(["--input", files["series"], "--output", files["out"]]) == 2
    assert (
        capsys.readouterr().err == f"hub detect: error: cannot read input file {files['series']}: Permission denied\n"
    )


LAZY_PACKAGES = ["hubcore.security", "analytics.anomaly", "analytics.forecast", "hub.simulate"]


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_lazy_packages_export_every_name_from_its_module(name: str) -> None:
    package = importlib.import_module(name)
    sources: dict[str, str] = package._SOURCES
    assert set(sources) == set(package.__all__)
    for attr, module in sources.items():
        assert getattr(package, attr) is getattr(importlib.import_module(f"{name}.{module}"), attr), attr
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = package.no_such_name
    namespace: dict[str, Any] = {}
    exec(f"from {name} import *", namespace)
    assert set(package.__all__) <= set(namespace)


def test_detector_names_match_the_registry() -> None:
    from analytics.anomaly.ensemble import default_detectors
    from analytics.anomaly.names import DEFAULT_DETECTORS, DETECTOR_NAMES
    from analytics.anomaly.registry import DETECTOR_CLASSES

    assert tuple(DETECTOR_CLASSES) == DETECTOR_NAMES
    assert tuple(d.name for d in default_detectors()) == DEFAULT_DETECTORS
    assert all(cls.name == n for n, cls in DETECTOR_CLASSES.items())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("48", (48, None)), (" 7d ", (7, "1D")), ("2W", (2, "7D")), ("90min", (90, "1min")), ("5m", (5, "1min"))],
)
def test_split_horizon(text: str, expected: tuple[int, str | None]) -> None:
    from analytics.forecast.arguments import split_horizon

    assert split_horizon(text) == expected


@pytest.mark.parametrize(("text", "message"), [("soon", "neither a number of steps"), ("-3", "neither"),
                                               ("0", "at least one step"), ("0h", "at least one step")])  # fmt: skip
def test_split_horizon_rejects_what_parse_horizon_rejects(text: str, message: str) -> None:
    from analytics.forecast.arguments import ForecastInputError, split_horizon
    from analytics.forecast.frequency import Frequency, parse_horizon

    with pytest.raises(ForecastInputError, match=message) as early:
        split_horizon(text)
    import pandas as pd

    with pytest.raises(ForecastInputError) as late:
        parse_horizon(text, Frequency(step=pd.Timedelta("1h"), alias="h"))
    assert str(late.value) == str(early.value)


def test_arguments_doctest() -> None:
    import doctest

    from analytics.forecast import arguments

    result = doctest.testmod(arguments)
    assert result.attempted and result.failed == 0
