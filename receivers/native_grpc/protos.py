"""The generated protobuf/gRPC modules, compiled on first import when ``_gen/`` is missing or stale.

``make proto`` (``scripts/compile_protos.py``) normally builds ``_gen/``; a developer who forgot it, or
edited ``proto/`` since, still gets working modules: this helper runs the same compiler once, under a
lock, before importing them::

    >>> from receivers.native_grpc.protos import events_pb2
    >>> events_pb2.Ack(status=events_pb2.Ack.RETRY, retry_after_seconds=2.0).status == events_pb2.Ack.RETRY
    True

An installed copy without ``proto/`` next to it uses the ``_gen/`` it was built with.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

PACKAGE_DIR = Path(__file__).resolve().parent
GEN_DIR = PACKAGE_DIR / "_gen"
GEN_PACKAGE = f"{__package__}._gen"
REPO_ROOT = PACKAGE_DIR.parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
COMPILE_SCRIPT = REPO_ROOT / "scripts" / "compile_protos.py"
EVENTS_MODULE = f"{GEN_PACKAGE}.llm_analytics_hub.v1.events_pb2"

_lock = threading.Lock()


def _load_compiler(script: Path) -> Any:
    spec = importlib.util.spec_from_file_location("_hub_compile_protos", script)
    if spec is None or spec.loader is None:  # pragma: no cover - the file exists (checked by the caller)
        raise ImportError(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recorded_digest(gen_dir: Path) -> str | None:
    init = gen_dir / "__init__.py"
    if not init.is_file():
        return None
    for line in init.read_text().splitlines():
        if line.startswith("SOURCES_SHA256 = "):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def ensure_compiled(
    *,
    gen_dir: Path = GEN_DIR,
    proto_root: Path = PROTO_ROOT,
    package: str = GEN_PACKAGE,
    compile_script: Path = COMPILE_SCRIPT,
) -> bool:
    """Compile ``proto_root`` into ``gen_dir`` if it is missing or older than the sources.

    Returns True when it compiled. Raises ImportError (with the fix in the message) when ``gen_dir`` is
    missing and cannot be built.
    """
    with _lock:
        have_sources = proto_root.is_dir() and compile_script.is_file()
        recorded = _recorded_digest(gen_dir)
        if not have_sources:
            if recorded is None and not (gen_dir / "__init__.py").is_file():
                raise ImportError(
                    f"the generated gRPC modules are missing ({gen_dir}) and the proto sources are not "
                    f"available to build them: run `make proto` in a checkout of the hub"
                )
            return False
        compiler = _load_compiler(compile_script)
        if recorded is not None and recorded == compiler.sources_digest(proto_root):
            return False
        try:
            compiler.compile_protos(proto_root, gen_dir, package)
        except compiler.ProtoCompileError as exc:
            if recorded is not None:  # stale but usable: keep going with what is there
                return False
            raise ImportError(f"cannot build the gRPC modules: {exc}") from exc
        importlib.invalidate_caches()
        return True


def load() -> tuple[ModuleType, ModuleType]:
    """``(events_pb2, events_pb2_grpc)``, compiling first when needed."""
    if EVENTS_MODULE not in sys.modules:
        ensure_compiled()
    pb2 = importlib.import_module(EVENTS_MODULE)
    pb2_grpc = importlib.import_module(EVENTS_MODULE + "_grpc")
    return pb2, pb2_grpc


if TYPE_CHECKING:
    from receivers.native_grpc._gen.llm_analytics_hub.v1 import events_pb2 as events_pb2

    events_pb2_grpc: Any
else:
    events_pb2, events_pb2_grpc = load()

__all__ = ["ensure_compiled", "events_pb2", "events_pb2_grpc", "load"]
