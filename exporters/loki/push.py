"""Loki push bodies: JSON and snappy-compressed protobuf (``logproto.PushRequest``, hand-encoded).

An entry is ``(labels, ts_ns, line)`` with ``labels`` already rendered (``{a="1", b="2"}``). Entries are
grouped into streams by labels; each stream's entries are sorted by time and streams are ordered by
their first entry.

    >>> e = [('{a="1"}', 2_000_000_001, "two"), ('{a="1"}', 1_000_000_000, "one")]
    >>> encode_json(e)
    b'{"streams":[{"stream":{"a":"1"},"values":[["1000000000","one"],["2000000001","two"]]}]}'
    >>> from exporters.loki.protos import logproto_pb2
    >>> req = logproto_pb2.PushRequest.FromString(bytes(cramjam.snappy.decompress_raw(encode_protobuf(e))))
    >>> [(x.timestamp.seconds, x.timestamp.nanos, x.line) for x in req.streams[0].entries]
    [(1, 0, 'one'), (2, 1, 'two')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import cramjam
import msgspec

from exporters._common import len_delimited, varint

Entry = tuple[str, int, str]  # (rendered labels, ns, line)

JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": "llm-analytics-hub"}
PROTOBUF_HEADERS = {"Content-Type": "application/x-protobuf", "User-Agent": "llm-analytics-hub"}


def render_labels(labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """``{name="value", ...}`` in the given order, values escaped as Go's strconv.Quote does."""
    items = labels.items() if isinstance(labels, Mapping) else labels
    parts = []
    for k, v in items:
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{k}="{esc}"')
    return "{" + ", ".join(parts) + "}"


def parse_labels(rendered: str) -> dict[str, str]:
    """The inverse of :func:`render_labels` (for the JSON encoding)."""
    out: dict[str, str] = {}
    i, s = 1, rendered
    while i < len(s) - 1:
        eq = s.index("=", i)
        key = s[i:eq].strip(" ,")
        j = eq + 2
        val = []
        while s[j] != '"':
            if s[j] == "\\":
                j += 1
                val.append({"n": "\n"}.get(s[j], s[j]))
            else:
                val.append(s[j])
            j += 1
        out[key] = "".join(val)
        i = j + 1
    return out


def group_streams(entries: Sequence[Entry]) -> list[tuple[str, list[tuple[int, str]]]]:
    streams: dict[str, list[tuple[int, str]]] = {}
    for labels, ts, line in entries:
        streams.setdefault(labels, []).append((ts, line))
    for values in streams.values():
        values.sort(key=lambda v: v[0])
    return sorted(streams.items(), key=lambda kv: kv[1][0][0])


def encode_json(entries: Sequence[Entry]) -> bytes:
    return msgspec.json.encode(
        {
            "streams": [
                {"stream": parse_labels(labels), "values": [[str(ts), line] for ts, line in values]}
                for labels, values in group_streams(entries)
            ]
        }
    )


def encode_protobuf(entries: Sequence[Entry]) -> bytes:
    """Snappy(block)-compressed PushRequest."""
    out = bytearray()
    for labels, values in group_streams(entries):
        stream = bytearray(len_delimited(0x0A, labels.encode()))
        for ts, line in values:
            seconds, nanos = divmod(ts, 1_000_000_000)
            stamp = b""
            if seconds:
                stamp += b"\x08" + varint(seconds)
            if nanos:
                stamp += b"\x10" + varint(nanos)
            entry = len_delimited(0x0A, stamp) + len_delimited(0x12, line.encode())
            stream += len_delimited(0x12, entry)
        out += len_delimited(0x0A, bytes(stream))
    return bytes(cramjam.snappy.compress_raw(bytes(out)))
