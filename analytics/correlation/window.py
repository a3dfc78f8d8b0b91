"""One tenant's streaming window of events, held column-wise (see :class:`EventWindow`).

Events are kept in arrival order as a few blocks of columns (a list per column, an ``int64`` array of
timestamps), not one tuple per event: appending a batch is a handful of list copies, and the garbage
collector tracks a few dozen lists instead of every event held.

    >>> win = EventWindow()
    >>> win.append({"event_id": ["a", "b"], "correlation_id": ["k", "k"]}, array("q", [5, 9]), range(2), 1, now_us=9)
    1
    >>> len(win), win.keys(), win.dropped
    (1, 1, 1)
    >>> win.evict(horizon=6, max_rows=10)
    >>> len(win), win.columns(0)["event_id"]
    (0, [])
"""

from __future__ import annotations

import itertools
from array import array
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from analytics.correlation.frame import COLUMNS, Baselines

#: The columns held as lists (``ts`` is held as an ``int64`` array).
LIST_COLUMNS: Final = tuple(c for c in COLUMNS if c != "ts")
_CID: Final = LIST_COLUMNS.index("correlation_id")
_EID: Final = LIST_COLUMNS.index("event_id")
#: A batch of fewer rows than this is appended to the last block while that one holds fewer than
#: ``BLOCK_ROWS``, so that a stream of small batches does not hold a block (a list per column) per event.
SMALL_BATCH: Final = 256
BLOCK_ROWS: Final = 4096


def as_ts(values: Sequence[Any] | None, n: int) -> array[int]:
    """Timestamps (µs) as an ``array('q')``: ``int(v or 0)`` of each value."""
    if values is None:
        return array("q", bytes(8 * n))
    try:
        return array("q", values)
    except TypeError:  # None or floats among them
        return array("q", [int(v or 0) for v in values])


def _take(col: Sequence[Any], ranges: Sequence[range]) -> list[Any]:
    if len(ranges) == 1:
        r = ranges[0]
        return list(col[r.start : r.stop])
    return list(itertools.chain.from_iterable(col[r.start : r.stop] for r in ranges))


def _view(ts: array[int]) -> np.ndarray:
    """A numpy view of ``ts``; drop it before resizing ``ts`` (the array refuses while it is exported)."""
    return np.frombuffer(ts, dtype=np.int64) if len(ts) else np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class _Block:
    cols: list[list[Any]]
    ts: array[int]


@dataclass
class EventWindow:
    """A tenant's window: blocks of columns in arrival order, counts per correlation id, learned baselines.

    ``per_key`` counts rows per correlation id (rows without one under ``None``: :meth:`keys` leaves it out).
    """

    blocks: deque[_Block] = field(default_factory=deque)
    per_key: Counter[Any] = field(default_factory=Counter)
    baselines: dict[str, Baselines] = field(default_factory=lambda: {"latency_baselines": {}, "cost_baselines": {}})
    max_ts: int = 0
    dirty: bool = False
    dropped: int = 0
    size: int = 0

    def __len__(self) -> int:
        return self.size

    def keys(self) -> int:
        """Distinct correlation ids held."""
        return len(self.per_key) - (None in self.per_key)

    def append(self, columns: Mapping[str, Sequence[Any]], ts: array[int], ranges: Sequence[range] | range,
               max_per_key: int, *, now_us: int) -> int:  # fmt: skip
        """Add the rows of ``columns`` / ``ts`` in ``ranges`` (in order), at most ``max_per_key`` rows per
        correlation id in the window (later rows over the cap are dropped and counted); returns rows kept.

        ``max_ts`` moves to the newest row kept, but no further than ``now_us`` (or where it already is)."""
        if isinstance(ranges, range):
            ranges = [ranges]
        cols = [_take(columns[c], ranges) if c in columns else [None] * sum(map(len, ranges)) for c in LIST_COLUMNS]
        stamps = ts if len(ranges) == 1 and len(ranges[0]) == len(ts) else array("q", _take(ts, ranges))
        keys = cols[_CID]
        n = len(keys)
        if n == 0:
            return 0
        per_key = self.per_key
        per_key.update(keys)
        distinct = set(keys)
        distinct.discard(None)
        if distinct and max(map(per_key.__getitem__, distinct)) > max_per_key:
            batch = Counter(keys)
            over = {k: per_key[k] for k in distinct if per_key[k] > max_per_key}
            allowed = {k: max_per_key - (total - batch[k]) for k, total in over.items()}
            seen: Counter[Any] = Counter()
            keep = []
            for i, k in enumerate(keys):
                if k in allowed:
                    seen[k] += 1
                    if seen[k] > allowed[k]:
                        continue
                keep.append(i)
            for k in over:
                per_key[k] = max_per_key
            self.dropped += n - len(keep)
            cols = [[col[i] for i in keep] for col in cols]
            stamps = array("q", [stamps[i] for i in keep])
            n = len(keep)
            if n == 0:
                return 0
        newest = int(_view(stamps).max())
        self.max_ts = max(self.max_ts, min(newest, max(now_us, self.max_ts)))
        last = self.blocks[-1] if self.blocks else None
        if last is not None and n < SMALL_BATCH and len(last.ts) < BLOCK_ROWS:
            for held, new in zip(last.cols, cols, strict=True):
                held.extend(new)
            last.ts.extend(stamps)
        else:
            self.blocks.append(_Block(cols, stamps))
        self.size += n
        self.dirty = True
        return n

    def prepend(self, columns: Mapping[str, Sequence[Any]], ts: array[int], max_rows: int, max_per_key: int, *,
                now_us: int) -> int:  # fmt: skip
        """Put older rows (``columns`` / ``ts`` in time order, e.g. read back from the store after a restart)
        in front of the rows held; returns rows kept.

        Rows whose ``event_id`` the window already holds are left out (an event streamed meanwhile is not
        counted twice), and so is what would take the window past ``max_rows`` rows or a correlation id past
        ``max_per_key``: the newest of ``columns`` are kept first."""
        n = len(ts)
        ids = columns.get("event_id") or [None] * n
        keys = columns.get("correlation_id") or [None] * n
        room = max_rows - self.size
        if n == 0 or room <= 0 or len(ids) != n or len(keys) != n:
            return 0
        held = set(itertools.chain.from_iterable(b.cols[_EID] for b in self.blocks))
        per_key = Counter(self.per_key)
        keep: list[int] = []
        for i in range(n - 1, -1, -1):
            if len(keep) >= room:
                break
            eid, key = ids[i], keys[i]
            if eid in held or (key is not None and per_key[key] >= max_per_key):
                continue
            held.add(eid)
            per_key[key] += 1
            keep.append(i)
        if not keep:
            return 0
        keep.reverse()
        if len(keep) == n:  # all of them (the usual case): the lists as they are
            cols = [list(columns[c]) if c in columns else [None] * n for c in LIST_COLUMNS]
            stamps = array("q", ts)
        else:
            cols = [[columns[c][i] for i in keep] if c in columns else [None] * len(keep) for c in LIST_COLUMNS]
            stamps = array("q", [ts[i] for i in keep])
        self.blocks.appendleft(_Block(cols, stamps))
        self.per_key = per_key
        self.size += len(keep)
        self.max_ts = max(self.max_ts, min(ts[keep[-1]], now_us))
        self.dirty = True
        return len(keep)

    def evict(self, horizon: int, max_rows: int) -> None:
        """Drop rows from the front while more than ``max_rows`` are held or the first is older than
        ``horizon`` (rows are in arrival order: a later row older than ``horizon`` stays, see :meth:`columns`)."""
        blocks = self.blocks
        while blocks:
            block = blocks[0]
            length = len(block.ts)
            start = max(0, self.size - max_rows)
            if start == 0 and block.ts[0] >= horizon:
                return
            if start < length:
                view = _view(block.ts)
                later = np.flatnonzero(view[start:] >= horizon)
                del view
                if len(later):
                    cut = start + int(later[0])
                    self._forget_keys(block.cols[_CID][:cut])
                    for col in block.cols:
                        del col[:cut]
                    del block.ts[:cut]
                    self.size -= cut
                    return
            blocks.popleft()
            self._forget_keys(block.cols[_CID])
            self.size -= length

    def _forget_keys(self, keys: list[Any]) -> None:
        per_key = self.per_key
        for k, c in Counter(keys).items():
            left = per_key[k] - c
            if left > 0:
                per_key[k] = left
            else:
                del per_key[k]

    def columns(self, horizon: int) -> dict[str, Any]:
        """The rows no older than ``horizon`` as columns (``ts`` an ``int64`` array); rows older than that
        held behind newer ones (a late event, or one behind an event stamped ahead) are dropped here."""
        stale = False
        for block in self.blocks:
            view = _view(block.ts)
            fresh = view >= horizon
            if fresh.all():
                continue
            stale = True
            block.cols = [list(itertools.compress(col, fresh)) for col in block.cols]
            block.ts = array("q", view[fresh].tobytes())
            del view
        if stale:
            self.blocks = deque(b for b in self.blocks if len(b.ts))
            self.size = sum(len(b.ts) for b in self.blocks)
            self.per_key = Counter(itertools.chain.from_iterable(b.cols[_CID] for b in self.blocks))
        out: dict[str, Any] = {
            c: list(itertools.chain.from_iterable(b.cols[i] for b in self.blocks)) for i, c in enumerate(LIST_COLUMNS)
        }
        out["ts"] = np.concatenate([_view(b.ts) for b in self.blocks]) if self.blocks else np.zeros(0, np.int64)
        return out
