"""What an anomaly run needs of the runs before it, kept across a restart of the hub.

:class:`RunStateStore` keeps the newest input points of each series a run scored (``AnalyticsService._inputs``:
a written bucket among them whose value changed by the next run, late data, is scored and written again)
in ``<data_dir>/analytics/state/<tenant>/<model>/<query>.json``, one file per (tenant, model, query):
``{"version": 1, "tenant", "model", "query", "series": {key: [times, values]}}``, each array the base64 of
its little-endian float64s (exact, NaN kept, and ten times faster to write than JSON numbers), replaced
atomically after each run (:func:`hubcore.files.write_atomic`; not synced: a power loss costs at
most the late-data check of the first run after it). A file that cannot be read is logged and taken as
empty: the hub starts, and that run scores only its new buckets, as before a restart kept this state.

:func:`last_alerts` reads which series' ``anomaly_alert`` is up, and when each was last written, back from
the stored rows themselves (the newest ``anomaly_alert`` row per series), so those need no file.

    >>> import tempfile
    >>> import numpy as np
    >>> rs = RunStateStore(tempfile.mkdtemp())
    >>> rs.save("acme", "anomaly", "latency_p95", {'{"model":"m"}': (np.array([0.0, 60.0]), np.array([1.0, np.nan]))})
    >>> {k: (t.tolist(), v.tolist()) for k, (t, v) in rs.load("acme", "anomaly", "latency_p95").items()}
    {'{"model":"m"}': ([0.0, 60.0], [1.0, nan])}
    >>> rs.save("acme", "anomaly", "latency_p95", {}); rs.load("acme", "anomaly", "latency_p95")
    {}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from analytics.service.derived import DerivedRepository
from hubcore.files import write_atomic

__all__ = ["STATE_VERSION", "RunStateStore", "SeriesInputs", "last_alerts"]

log = logging.getLogger("hub.analytics")

#: The layout of a state file (another version is taken as unreadable: logged, started empty).
STATE_VERSION = 1
#: (times, values) of a series' newest points, as a run saw them.
SeriesInputs = tuple[np.ndarray, np.ndarray]
StateKey = tuple[str, str, str]  # (tenant, model alias, query alias)

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_F64 = np.dtype("<f8")


class StateFileError(ValueError):
    """A state file whose content is not a state this release wrote."""


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=_F64).tobytes()).decode("ascii")


def _decode_array(text: object) -> np.ndarray:
    if not isinstance(text, str):
        raise StateFileError(f"an array is {type(text).__name__}, not base64")
    return np.frombuffer(base64.b64decode(text, validate=True), dtype=_F64).astype(float)


def _part(name: str) -> str:
    """A file or directory name for ``name``: itself when it is safe, else a cleaned name plus a hash."""
    cleaned = _SAFE.sub("_", name)
    if cleaned == name and name not in ("", ".", ".."):
        return name
    return f"{cleaned}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"


def _decode(data: bytes, key: StateKey | None) -> tuple[StateKey, dict[str, SeriesInputs]]:
    obj = json.loads(data)
    if not isinstance(obj, dict) or obj.get("version") != STATE_VERSION:
        raise StateFileError(f"not a version {STATE_VERSION} state")
    tenant, model, query = obj.get("tenant"), obj.get("model"), obj.get("query")
    if not (isinstance(tenant, str) and isinstance(model, str) and isinstance(query, str)):
        raise StateFileError("no tenant, model or query")
    found = (tenant, model, query)
    if key is not None and found != key:
        raise StateFileError(f"holds the state of {found!r}")
    series = obj.get("series")
    if not isinstance(series, dict):
        raise StateFileError("no series")
    out: dict[str, SeriesInputs] = {}
    for name, pair in series.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise StateFileError(f"series {name!r}: not a [times, values] pair")
        ts, values = _decode_array(pair[0]), _decode_array(pair[1])
        if ts.shape != values.shape:
            raise StateFileError(f"series {name!r}: {ts.size} times, {values.size} values")
        out[name] = (ts, values)
    return found, out


class RunStateStore:
    """The per-series input points of the anomaly runs, one JSON file per (tenant, model, query); thread-safe."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir) / "analytics" / "state"
        self._lock = threading.Lock()

    def path(self, tenant: str, model: str, query: str) -> Path:
        return self.root / _part(tenant) / _part(model) / f"{_part(query)}.json"

    def load(self, tenant: str, model: str, query: str) -> dict[str, SeriesInputs]:
        """The saved points by series key; {} when there is no file or it cannot be read (logged)."""
        p = self.path(tenant, model, query)
        with self._lock:
            return self._read(p, (tenant, model, query))[1]

    def _read(self, p: Path, key: StateKey | None) -> tuple[StateKey | None, dict[str, SeriesInputs]]:
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None, {}
        except OSError as err:
            log.warning("analytics state %s unreadable (%s): its late-data check starts empty", p, err)
            return None, {}
        try:
            return _decode(data, key)
        except (ValueError, binascii.Error) as err:  # (json's, UTF-8's and frombuffer's errors are ValueErrors)
            log.warning("analytics state %s unreadable (%s): its late-data check starts empty", p, err)
            return None, {}

    def save(self, tenant: str, model: str, query: str, seen: Mapping[str, SeriesInputs]) -> None:
        """Replace the saved points of (tenant, model, query) with ``seen`` (none: the file is removed). A
        write that fails (disk full) is logged: the run it follows has written its rows."""
        p = self.path(tenant, model, query)
        with self._lock:
            self._write(p, (tenant, model, query), seen)

    def _write(self, p: Path, key: StateKey, seen: Mapping[str, SeriesInputs]) -> None:
        try:
            if not seen:
                p.unlink(missing_ok=True)
                return
            body = {"version": STATE_VERSION, "tenant": key[0], "model": key[1], "query": key[2],
                    "series": {k: [_encode(ts), _encode(values)] for k, (ts, values) in seen.items()}}  # fmt: skip
            p.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(p, json.dumps(body, separators=(",", ":")).encode(), fsync=False)
        except OSError as err:
            log.warning("analytics state %s not written (%s): a restart before the next write loses it", p, err)

    def prune(self, now: float, keep_s: Callable[[str, str], float], skip: Collection[StateKey]) -> None:
        """Drop, from the files of the keys not in ``skip`` (those a run of this process loaded and keeps
        saving), the series whose newest point is older than ``keep_s(model, query)`` seconds, and remove
        the files left without series, those that cannot be read (logged) and those holding another key's
        state (which :meth:`load` would not take either)."""
        if not self.root.is_dir():
            return
        skipped = {self.path(*key) for key in skip}
        for p in sorted(self.root.rglob("*.json")):
            if p in skipped:
                continue
            with self._lock:
                key, seen = self._read(p, None)
                if key is not None and p != self.path(*key):
                    log.warning("analytics state %s holds the state of %r: removed", p, key)
                    key, seen = None, {}
                kept = {} if key is None else {
                    k: v for k, v in seen.items() if v[0].size and now - float(v[0][-1]) <= keep_s(key[1], key[2])
                }  # fmt: skip
                if key is not None and len(kept) != len(seen):
                    self._write(p, key, kept)  # (none kept: removed)
                elif key is None:
                    try:
                        p.unlink(missing_ok=True)
                    except OSError as err:
                        log.warning("analytics state %s not removed (%s)", p, err)


def last_alerts(
    repo: DerivedRepository, tenant: str, model: str, query: str, since_s: float
) -> list[tuple[dict[str, str], float, float]]:
    """``(labels, value, time)`` of the newest stored ``anomaly_alert`` row of each series of (tenant, model,
    query) written since ``since_s``: the rows a run wrote, from which a restarted service knows which
    series' alert is up and when each was last written."""
    repo.ensure()
    rows: list[Any] = repo.store.read(
        "SELECT labels, arg_max(value, ts), max(epoch_us(ts)) FROM derived_series WHERE tenant_id = ? "
        "AND name = 'anomaly_alert' AND ts >= make_timestamp(CAST(? AS BIGINT)) "
        "AND json_extract_string(labels, '$.for') = ? AND json_extract_string(labels, '$.model_alias') = ? "
        "GROUP BY labels",
        [tenant, round(since_s * 1e6), query, model],
    ).fetchall()
    return [(json.loads(labels), float(value), ts_us / 1e6) for labels, value, ts_us in rows]
