"""Prometheus remote write 1.0 bodies, encoded by hand (see ``proto/remote.proto``) and snappy-compressed.

A series' labels are encoded once and cached by the caller; samples are appended per request.

    >>> from exporters.victoriametrics.protos import remote_pb2
    >>> body = encode_write_request([encode_series(encode_labels([("__name__", "up"), ("job", "a")]), [(1000, 1.0)])])
    >>> req = remote_pb2.WriteRequest.FromString(body)
    >>> [(l.name, l.value) for l in req.timeseries[0].labels], req.timeseries[0].samples[0].timestamp
    ([('__name__', 'up'), ('job', 'a')], 1000)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import cramjam

from exporters._common import len_delimited, varint

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "llm-analytics-hub",
}

_double = struct.Struct("<d").pack


def encode_labels(labels: Iterable[tuple[str, str]]) -> bytes:
    """The ``labels`` field (1) of a TimeSeries; ``labels`` must be sorted by name (``__name__`` first)."""
    out = bytearray()
    for name, value in labels:
        n, v = name.encode(), value.encode()
        inner = b"\x0a" + varint(len(n)) + n + b"\x12" + varint(len(v)) + v
        out += b"\x0a" + varint(len(inner)) + inner
    return bytes(out)


#: ``Sample`` field tag + length + value tag, by the length of the timestamp's varint (1..10 bytes)
_SAMPLE_HEAD = [bytes((0x12, 10 + n, 0x09)) for n in range(11)]
_ts_varints: dict[int, bytes] = {}  # timestamps repeat across the series of a flush


def encode_series(label_bytes: bytes, samples: Sequence[tuple[int, float]]) -> bytes:
    """One ``timeseries`` entry (field 1 of WriteRequest), ready to concatenate. Samples: (ms, value)."""
    parts = [label_bytes]
    cache = _ts_varints
    if len(cache) > 200_000:
        cache.clear()
    for ts, value in samples:
        vts = cache.get(ts)
        if vts is None:
            vts = cache[ts] = varint(ts)
        parts.append(_SAMPLE_HEAD[len(vts)] + _double(value) + b"\x10" + vts)
    return len_delimited(0x0A, b"".join(parts))


def encode_write_request(series: Sequence[bytes]) -> bytes:
    """The uncompressed WriteRequest."""
    return b"".join(series)


def compress(body: bytes) -> bytes:
    """Snappy *block* format (not framed), as remote write requires."""
    return bytes(cramjam.snappy.compress_raw(body))
