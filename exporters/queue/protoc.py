"""Compile an exporter's hand-written ``proto/*.proto`` into a git-ignored ``_gen/`` next to it, once.

The exporters encode their wire formats by hand (fast paths); the compiled modules are the reference
the tests decode with (and what a reader of the code can check the encoders against). Same approach
as ``receivers/native_grpc/protos.py``: compiled at first import when missing or stale (a digest of the
sources is recorded in ``_gen/__init__.py``).

    >>> from exporters.loki.protos import logproto_pb2
    >>> logproto_pb2.PushRequest().streams
    []
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from types import ModuleType

_lock = threading.Lock()


def _digest(proto_dir: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(proto_dir.glob("*.proto")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def load_compiled(package_dir: Path, package: str, module: str) -> ModuleType:
    """Import ``<package>._gen.<module>`` (e.g. ``logproto_pb2``), compiling ``proto/`` first if needed."""
    proto_dir = package_dir / "proto"
    gen_dir = package_dir / "_gen"
    with _lock:
        digest = _digest(proto_dir)
        init = gen_dir / "__init__.py"
        recorded = None
        if init.is_file():
            m = re.search(r'SOURCES_SHA256 = "([0-9a-f]+)"', init.read_text())
            recorded = m.group(1) if m else None
        if recorded != digest:
            _compile(proto_dir, gen_dir, package, digest)
            importlib.invalidate_caches()
    return importlib.import_module(f"{package}._gen.{module}")


def _compile(proto_dir: Path, gen_dir: Path, package: str, digest: str) -> None:
    try:
        from grpc_tools import protoc
    except ImportError as exc:  # pragma: no cover - grpcio-tools is a dependency
        raise ImportError("grpc_tools is missing: `.venv/bin/pip install grpcio-tools`") from exc
    protos = sorted(proto_dir.glob("*.proto"))
    tmp = Path(tempfile.mkdtemp(prefix=".gen-", dir=gen_dir.parent))
    try:
        include = Path(protoc.__file__).resolve().parent / "_proto"
        args = ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={tmp}", *map(str, protos)]
        if protoc.main(args) != 0:
            raise ImportError(f"protoc failed on {[p.name for p in protos]}")
        for py in tmp.glob("*_pb2.py"):  # sibling imports → package imports
            text = re.sub(r"^import (\w+_pb2) as", rf"from {package}._gen import \1 as", py.read_text(), flags=re.M)
            py.write_text(text)
        (tmp / "__init__.py").write_text(f'"""Generated from ../proto: do not edit."""\nSOURCES_SHA256 = "{digest}"\n')
        old = gen_dir.with_name(f".old-{os.getpid()}-{threading.get_ident()}")
        if gen_dir.exists():
            gen_dir.rename(old)
        tmp.rename(gen_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
