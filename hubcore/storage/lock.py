"""Whether another process holds the embedded store's database, asked without opening it (no DuckDB import).

DuckDB takes a POSIX record lock (``fcntl`` ``F_SETLK``, a write lock over the whole file) on ``hub.duckdb``
while a hub, or a DuckDB shell, has it open. ``hub run`` asks here, with ``F_GETLK`` (which takes and
changes nothing), before it imports the service, so that a second hub on the same data directory is
refused at once instead of after the seconds of loading the service; ``EmbeddedStore.start`` still
refuses a hub that loses the race (the lock is only taken there).

    >>> import tempfile, pathlib
    >>> database_holder(pathlib.Path(tempfile.mkdtemp()) / "hub.duckdb") is None   # no file: nobody holds it
    True
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

__all__ = ["UNKNOWN_PID", "database_holder", "in_use_message"]

#: ``database_holder``'s answer when the file is locked by a process whose pid the system does not say.
UNKNOWN_PID = 0
#: ``struct flock`` on Linux (x86-64, arm64): l_type, l_whence, l_start, l_len, l_pid, padding to 32 bytes.
_FLOCK = "hhqqi4x"


def database_holder(path: Path) -> int | None:
    """The pid of a process holding a lock on ``path`` that a hub's write lock would conflict with
    (:data:`UNKNOWN_PID` when the system does not say whose it is), or ``None`` when no process holds one, the
    file does not exist or cannot be opened, or the system is not Linux (the store's own refusal then stands).

    Only for a process that does not have the database open itself: its own lock conflicts with nothing, and
    closing the file asked about would release it (POSIX record locks belong to the process)."""
    if not sys.platform.startswith("linux"):
        return None
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return None
    finally:
        os.close(fd)  # closing a file releases the record locks THIS process holds on it: see the docstring
    kind, _, _, _, pid = struct.unpack(_FLOCK, answer)
    if kind == fcntl.F_UNLCK:
        return None
    return pid if pid > 0 else UNKNOWN_PID


def in_use_message(data_dir: Path | str, pid: int | None) -> str:
    """The one line that refuses a hub whose data directory another process has open (as the store says it).

    >>> in_use_message("data", 4242)
    'the data directory data is in use by another process (PID 4242); stop it, or give this hub another --data-dir'
    """
    holder = f" (PID {pid})" if pid else ""
    return (f"the data directory {data_dir} is in use by another process{holder}; stop it, or give this hub "
            "another --data-dir")  # fmt: skip
