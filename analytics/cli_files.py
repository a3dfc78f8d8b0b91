"""What ``hub detect`` and ``hub forecast`` check about their files before they import an engine.

Both commands read the input's header line here (the ``csv`` module, no pandas) and check the output path,
so that a missing column, a ``--related`` column that is not in the file, or an output that cannot be
written is reported at once, not after pandas, the detectors or statsforecast were imported and the model
fitted (2-5 s). The full read (pandas) checks the same columns again, with the same messages.

    >>> describe_columns(["ds", "y"])
    'ds, y'
    >>> describe_columns([f"V{i}" for i in range(1, 962)])
    '961 columns: V1, V2, V3, V4, V5, ..., V961'
    >>> find_layout(["DS", " y ", "note"], [("ds", "y"), ("timestamp", "value")], fold=True)
    ('DS', ' y ')
    >>> find_layout(["timestamp", "value"], [("ds", "y"), ("timestamp", "value")], fold=False)
    ('timestamp', 'value')
    >>> find_layout(["V1", "V2"], [("ds", "y")], fold=True) is None
    True
"""

from __future__ import annotations

import csv
import errno
import io
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["FileCheckError", "check_output", "describe_columns", "find_layout", "missing_columns", "read_header"]

#: How much of the input is read to find its header line (a header longer than this is left to the full read).
HEADER_BYTES = 1 << 20
#: Column names listed in full up to this many; beyond, the first few, ``...`` and the last, with the count.
SHOWN_COLUMNS = 8
#: A header with more columns than this and none of the wanted ones is called a wide file in the message.
WIDE_COLUMNS = 20


class FileCheckError(ValueError):
    """An input's columns or an output path rule the command out; the message says why (exit status 2)."""


def read_header(path: Path, delimiters: str = ",") -> list[str] | None:
    """The column names of CSV ``path`` (blank lines before the header skipped, as pandas does), or ``None``
    when they cannot be told from the file's first :data:`HEADER_BYTES` (an empty file, a longer header,
    text the ``csv`` module cannot parse): the full read then says what is wrong.

    ``delimiters``: one character, or several to sniff among (as ``hub forecast`` does: ``",;\\t|"``).
    Text that is not UTF-8 is read as Latin-1."""
    with path.open("rb") as f:
        raw = f.read(HEADER_BYTES)
    complete = len(raw) < HEADER_BYTES
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if not complete and exc.start >= len(raw) - 3:  # a character cut by the prefix's end
            text = raw[: exc.start].decode("utf-8-sig", errors="replace")
        else:
            text = raw.decode("latin-1")
    delimiter = delimiters
    if len(delimiters) > 1:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=delimiters).delimiter
        except csv.Error:
            delimiter = ","
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(row for row in rows if row)
        if not complete:
            next(rows)  # a row follows: the header ended inside the prefix
    except (StopIteration, csv.Error):
        return None
    return header


def describe_columns(columns: Sequence[str]) -> str:
    """The column names for a message: all of them, or for a wide file the first few, the last and the count."""
    names = [str(c) for c in columns]
    if len(names) <= SHOWN_COLUMNS:
        return ", ".join(names) or "none"
    return f"{len(names)} columns: {', '.join(names[:5])}, ..., {names[-1]}"


def _fold(name: str) -> str:
    return name.strip().lower()


def find_layout(columns: Sequence[str], layouts: Sequence[tuple[str, str]], *, fold: bool) -> tuple[str, str] | None:
    """The file's names of the first ``(time, value)`` pair of ``layouts`` that ``columns`` holds both of (with
    ``fold``: whatever their case and surrounding spaces, an exact name first), else ``None``."""
    for time_col, value_col in layouts:
        found = []
        for wanted in (time_col, value_col):
            if wanted in columns:
                found.append(wanted)
            elif fold:
                match = next((c for c in columns if _fold(str(c)) == _fold(wanted)), None)
                if match is not None:
                    found.append(str(match))
        if len(found) == 2:
            return found[0], found[1]
    return None


def missing_columns(path: Path | str, columns: Sequence[str], layouts: Sequence[tuple[str, str]], *,
                    fold: bool, hint: str = "") -> str:  # fmt: skip
    """The message for a file that holds none of ``layouts``: what is missing of the first, what was found
    (shortened for a wide file) and what layout is expected (``hint`` is added to the layouts' list)."""
    first = layouts[0]
    folded = {_fold(str(c)) for c in columns} if fold else set()
    missing = [c for c in first if c not in columns and _fold(c) not in folded]
    expected = " or ".join(",".join(pair) for pair in layouts)
    message = (f"missing column(s) {', '.join(missing)} in {path}; found {describe_columns(columns)}. Expected one "
               f"row per time step with a time column and a value column ({expected}{hint})")  # fmt: skip
    if len(columns) > WIDE_COLUMNS:
        message += ("; this looks like a wide file (many series side by side, or one per row): write the series "
                    "to forecast or score as two columns")
    return message


def check_output(output: Path, source: Path, *, create_parents: bool) -> None:
    """Raise :class:`FileCheckError` unless ``output`` can be written: not the input file, not a directory, its
    directory present (or, with ``create_parents``, creatable) and writable. An existing output is opened
    for writing without being changed; a new one is created and removed again."""
    if output.exists() and source.exists() and os.path.samefile(output, source):
        raise FileCheckError(f"--output {output} is the input file; write the result to another file")
    if output.is_dir():
        raise FileCheckError(f"--output {output} is a directory; give a file name")
    parent = output.parent
    if not parent.exists():
        if not create_parents:
            raise FileCheckError(f"cannot write {output}: directory {parent} does not exist")
        ancestor = next(p for p in parent.parents if p.exists())  # the root exists
        if not ancestor.is_dir():
            raise FileCheckError(f"cannot write {output}: {ancestor} is not a directory")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise FileCheckError(f"cannot write {output}: cannot create directories in {ancestor}")
        return
    if not parent.is_dir():
        raise FileCheckError(f"cannot write {output}: {parent} is not a directory")
    created = not output.exists()
    try:
        fd = os.open(output, os.O_WRONLY | (os.O_CREAT | os.O_EXCL if created else 0), 0o666)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.ENOENT:  # e.g. under /proc: the directory takes no new file
            reason = "the directory takes no new file"
        raise FileCheckError(f"cannot write {output}: {reason}") from None
    os.close(fd)
    if created:
        output.unlink()
