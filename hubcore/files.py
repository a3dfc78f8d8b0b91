"""Durable file writes shared by the stores and exporters.

:func:`write_atomic` replaces a file all at once (a temporary file ``<name>.tmp`` beside it, renamed over
it); with ``fsync`` the new content survives a power loss. Readers read ``<name>`` only, so a ``.tmp`` left
by a crash before the rename is never read; :func:`discard_tmp` removes it when its owner starts.

>>> import tempfile
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> write_atomic(d / "state.bin", b"abc", fsync=True)
>>> write_atomic(d / "lines.jsonl", [b"a\\n", b"b\\n"], fsync=False)  # chunks: nothing joined in memory
>>> (d / "state.bin").read_bytes(), (d / "lines.jsonl").read_bytes(), sorted(p.name for p in d.iterdir())
(b'abc', b'a\\nb\\n', ['lines.jsonl', 'state.bin'])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["discard_tmp", "fsync_dir", "tmp_path", "write_atomic"]


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (a directory that cannot be opened is skipped)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path(path: Path) -> Path:
    """The temporary file :func:`write_atomic` writes before renaming it over ``path``: ``<name>.tmp``."""
    return path.with_name(path.name + ".tmp")


def write_atomic(path: Path, data: bytes | Iterable[bytes], *, fsync: bool) -> None:
    """Replace ``path`` with ``data`` (bytes, or chunks of bytes written in order) all at once: a temporary
    file beside it (:func:`tmp_path`), renamed over it. With ``fsync`` the file and then its directory are
    synced, so the new content survives a power loss; a crash at any point leaves the old content or the
    new, never a mix. A write that fails (disk full) removes its temporary file and raises; ``path`` is
    left as it was. Callers serialise their writes of one ``path`` (one temporary name per path)."""
    tmp = tmp_path(path)
    try:
        with open(tmp, "wb") as fh:
            if isinstance(data, bytes | bytearray | memoryview):
                fh.write(data)
            else:
                for chunk in data:
                    fh.write(chunk)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        fsync_dir(path.parent)


def discard_tmp(path: Path, *legacy: Path) -> bool:
    """Remove what a crash before the rename of :func:`write_atomic` left of ``path`` (its ``.tmp``), and
    the ``legacy`` temporary names earlier releases used; for the owner of ``path`` at start. Whether
    something was removed."""
    removed = False
    for stale in (tmp_path(path), *legacy):
        with contextlib.suppress(OSError):  # none there (the usual case), or not ours to remove
            stale.unlink()
            removed = True
    return removed
