"""The series the converter forgot, kept across restarts: ``forgotten.bin`` in the exporter's queue directory.

A series that :class:`~exporters.victoriametrics.convert.PointsConverter` forgot (idle past ``series_ttl``,
or over ``max_series``) and that comes back gets a 0 sample before its first one (see
``PointsConverter.finish``); a brand-new series must not. The converter tells them apart by a 64-bit digest
of each forgotten series' labels (:func:`series_digest`: the same in every process, unlike ``hash()``, which
Python salts per process), at most :data:`FORGOTTEN_LIMIT` of them, oldest first. The exporter saves them
with each new state base (:func:`save`, atomically) and loads them at start (:func:`load`). An unreadable
file costs only those 0 samples, so it is a warning and an empty set, not a failed start.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / FILE_NAME
    >>> save(path, [series_digest((("__name__", "a_total"),)), 7], fsync=False)
    >>> load(path) == [series_digest((("__name__", "a_total"),)), 7]
    True
"""

from __future__ import annotations

import hashlib
import logging
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable
from pathlib import Path

import msgspec

from hubcore.files import write_atomic

log = logging.getLogger(__name__)

#: At most this many forgotten series are remembered (8 bytes each: the file stays under 8 MB).
FORGOTTEN_LIMIT = 1_000_000
FILE_NAME = "forgotten.bin"
_MAGIC = b"HUBFGT01"
_HEADER = struct.Struct("<8sII")  # magic, count, crc32 of the digests


def series_digest(key: tuple[tuple[str, str], ...]) -> int:
    """A 64-bit digest of a series' sorted labels, stable across processes and restarts."""
    return int.from_bytes(hashlib.blake2b(msgspec.msgpack.encode(key), digest_size=8).digest(), "little")


def encode(digests: Iterable[int]) -> bytes:
    """``digests`` (oldest first; the newest :data:`FORGOTTEN_LIMIT` kept) as the file's bytes."""
    packed = array("Q", digests)
    if len(packed) > FORGOTTEN_LIMIT:
        packed = packed[len(packed) - FORGOTTEN_LIMIT :]
    if sys.byteorder != "little":
        packed.byteswap()
    body = packed.tobytes()
    return _HEADER.pack(_MAGIC, len(packed), zlib.crc32(body)) + body


def decode(data: bytes) -> list[int]:
    """The digests of :func:`encode`'s bytes; ``ValueError`` when they are not such bytes (or damaged)."""
    if len(data) < _HEADER.size:
        raise ValueError(f"{len(data)} bytes, shorter than the header")
    magic, count, crc = _HEADER.unpack_from(data)
    body = data[_HEADER.size :]
    if magic != _MAGIC:
        raise ValueError("not a forgotten-series file (wrong magic)")
    if count > FORGOTTEN_LIMIT or len(body) != 8 * count:
        raise ValueError(f"{len(body)} bytes of digests for a count of {count}")
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    packed = array("Q")
    packed.frombytes(body)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()


def save(path: Path, digests: Iterable[int], *, fsync: bool) -> None:
    """Write ``digests`` to ``path`` atomically: a temporary file (fsynced when ``fsync``), renamed over."""
    write_atomic(path, encode(digests), fsync=fsync)


def load(path: Path) -> list[int]:
    """The digests saved at ``path``, oldest first: [] when there is no file, and [] with a warning when it
    cannot be read or is damaged (forgotten series that come back then start like new ones)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("victoriametrics: cannot read %s (%s): forgotten series that come back get no 0 sample",
                    path, exc)  # fmt: skip
        return []
    try:
        return decode(data)
    except ValueError as exc:
        log.warning("victoriametrics: %s is damaged (%s), ignored: forgotten series that come back get no 0 "
                    "sample", path, exc)  # fmt: skip
        return []
