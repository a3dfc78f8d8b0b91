"""Durable file writes shared by the stores and exporters.

>>> import tempfile
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> write_atomic(d / "state.bin", b"abc", fsync=True)
>>> (d / "state.bin").read_bytes(), sorted(p.name for p in d.iterdir())
(b'abc', ['state.bin'])
"""

from __future__ import annotations

import os
from pathlib import Path


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


def write_atomic(path: Path, data: bytes, *, fsync: bool) -> None:
    """Replace ``path`` with ``data`` all at once: a temporary file beside it, renamed over it. With
    ``fsync`` the file and then its directory are synced, so the new content survives a power loss; a
    crash at any point leaves the old content or the new, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)
