"""``hub/service.py`` is split by purpose (servers, startup replay, shutdown, exporter hooks, security set-up):
every name it defined is still importable from ``hub.service`` and is the very object of its new module, and
``HubService`` gets the moved methods from the mixins unchanged."""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path

import pytest

import hub.service as service

#: Where each name ``hub/service.py`` used to define lives now.
MOVED = {
    "hub.servers": ("MAX_CONCURRENT_REQUESTS", "_Server", "ServersMixin", "_grpc_registrations"),
    "hub.startup_replay": ("STARTUP_REPLAY_TIMEOUT", "REPLAY_PROGRESS_SECONDS", "_REPLAY_POLL_SECONDS",
                           "StartupReplayMixin"),
    "hub.shutdown": ("UNSERVED_STORE_TIMEOUT", "ShutdownMixin"),
    "hub.exporter_hooks": ("_audit_to_loki", "_derived_to_points", "_ts_us", "_depth_reader", "_stats_reader",
                           "_series_reader"),
    "hub.security_setup": ("build_security", "_storage_quotas"),
}  # fmt: skip

#: The mixin each moved ``HubService`` method comes from.
METHODS = {
    "ServersMixin": ("_start_http", "_start_grpc", "_start_otlp_http"),
    "StartupReplayMixin": ("_wait_for_replay", "_replay_progress", "_database_errors", "_rebuild_state"),
    "ShutdownMixin": ("request_stop", "shutdown"),
}

#: Every module-level name of the old ``hub/service.py`` (before the split), bar its imports.
OLD_NAMES = ("log", "MAX_CONCURRENT_REQUESTS", "CORRELATION_DUTY", "STARTUP_REPLAY_TIMEOUT", "REPLAY_PROGRESS_SECONDS",
             "_REPLAY_POLL_SECONDS", "UNSERVED_STORE_TIMEOUT", "_loop_kind", "_Server", "HubService", "_warm_api",
             "_audit_to_loki", "_derived_to_points", "_ts_us", "_storage_quotas", "_depth_reader", "_stats_reader",
             "_series_reader", "build_security", "_grpc_registrations")  # fmt: skip

#: The split modules; STYLE asks modules under about 500 lines.
SPLIT = ("hub.service", *MOVED)


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, names in MOVED.items() for n in names])
def test_a_moved_name_is_the_same_object_from_hub_service(module: str, name: str) -> None:
    new = importlib.import_module(module)
    assert getattr(service, name) is getattr(new, name)
    assert name in service.__all__


@pytest.mark.parametrize("name", OLD_NAMES)
def test_every_name_the_old_module_defined_is_still_importable(name: str) -> None:
    assert hasattr(service, name)
    exec(f"from hub.service import {name}", {})  # the import statement other code and the docs use


@pytest.mark.parametrize(("mixin", "method"), [(c, m) for c, names in METHODS.items() for m in names])
def test_hub_service_inherits_the_moved_methods_unchanged(mixin: str, method: str) -> None:
    cls = getattr(service, mixin)
    assert issubclass(service.HubService, cls)
    assert method in vars(cls) and method not in vars(service.HubService)
    assert getattr(service.HubService, method) is vars(cls)[method]


def test_the_mixins_do_not_shadow_each_other_or_the_service() -> None:
    own = set(vars(service.HubService))
    seen: set[str] = set()
    for mixin in METHODS:
        methods = {n for n, v in vars(getattr(service, mixin)).items() if inspect.isfunction(v)}
        assert not methods & seen and not methods & own, mixin
        seen |= methods


@pytest.mark.parametrize("module", SPLIT)
def test_the_split_modules_log_as_hub_and_stay_small(module: str) -> None:
    mod = importlib.import_module(module)
    if module != "hub.security_setup":  # (which logs nothing)
        assert mod.log is logging.getLogger("hub")  # tests and operators filter the service's lines on "hub"
    assert mod.__doc__ and ">>>" in mod.__doc__  # a usage example (run by tests/test_doctests.py)
    source = Path(inspect.getfile(mod)).read_text()
    assert len(source.splitlines()) < 450


def test_the_replay_reads_its_constants_from_its_own_module() -> None:
    """A test that slows or speeds the replay's progress lines patches ``hub.startup_replay`` (not ``hub.service``,
    whose copies of the names are re-exports the replay does not read)."""
    import hub.startup_replay as replay

    code = replay.StartupReplayMixin._wait_for_replay.__code__
    assert {"REPLAY_PROGRESS_SECONDS", "STARTUP_REPLAY_TIMEOUT", "_REPLAY_POLL_SECONDS"} <= set(code.co_names)
    assert replay.StartupReplayMixin._wait_for_replay.__globals__ is vars(replay)
