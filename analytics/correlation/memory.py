"""What the correlation engine remembers between windows: correlations seen again, incidents continued.

A correlation found again in a later window keeps its id and what earlier windows saw (:meth:`_merge`), an
incident found again keeps its id and its earlier correlations (:meth:`_continue_incidents`), correlations
lost by a restart are recalled from the store (:meth:`_recall`), and the rows of correlated events evicted
from the window are kept for the root-cause ranking (:meth:`_with_remembered`). All bounded (:meth:`_trim`).

Usage (it is a mixin of :class:`analytics.correlation.CorrelationEngine`, which holds the state)::

    engine = CorrelationEngine(store)
    merged = engine._merge(correlation)            # the same id as the earlier one it continues
    incidents, kept = engine._continue_incidents("tenant-a", group_incidents([merged]), [merged])

``MAX_RECALLED_ROWS`` and ``ADJACENT_US`` are re-exported by :mod:`analytics.correlation.engine`.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, OrderedDict
from typing import Any

import pandas as pd

from analytics.correlation.frame import build_frame, rows_from_sql
from analytics.correlation.model import Correlation, Incident, stable_id
from analytics.correlation.persist import CorrelationRepository
from analytics.correlation.rca import build_incident, shares_dimension

#: At most this many forgotten events of the current correlations are read back from the store per analysis
MAX_RECALLED_ROWS = 2_000
#: An incident found in a later window continues an earlier one this close in time (and on common ground)
ADJACENT_US = 30_000_000
#: At most this many remembered incidents are scanned for one a new incident continues
_MAX_SCAN = 500


class CorrelationMemory:
    """The memory of correlations, incidents and correlated events' rows (state set by the engine's
    ``__init__``; the methods that take ``self._lock`` themselves say so, the others are called locked)."""

    repo: CorrelationRepository | None
    _lock: threading.Lock
    _recent: OrderedDict[str, Correlation]
    max_recent: int
    _stored_sig: dict[str, tuple[int, int, float]]
    _by_event: dict[tuple[str, str, str], str]
    _by_dims: dict[tuple[str, str, tuple[tuple[str, str], ...]], str]
    _incidents: OrderedDict[tuple[str, str], Incident]
    _incident_of: dict[tuple[str, str], str]
    _rows: OrderedDict[tuple[str, str], dict[str, Any]]
    max_rows: int

    def _merge(self, c: Correlation) -> Correlation:
        """A correlation seen again in a later window continues the earlier one (same id), keeping what
        earlier windows saw: windows slide, so its first events may have been evicted since. "Again"
        means the same id, or the same type sharing an event, or the same type and dimensions adjacent
        in time."""
        with self._lock:
            prev_id = c.id if c.id in self._recent else None
            if prev_id is None:
                for e in c.event_ids:
                    prev_id = self._by_event.get((c.tenant_id, c.type, e))
                    if prev_id in self._recent:
                        break
                    prev_id = None
            if prev_id is None:
                dim_key = (c.tenant_id, c.type, tuple(sorted(c.dimensions.items())))
                cand = self._by_dims.get(dim_key)
                if cand is not None and cand in self._recent and c.start_us <= self._recent[cand].end_us + 30_000_000:
                    prev_id = cand
            old = self._recent.pop(prev_id, None) if prev_id is not None else None
            if old is not None:
                c.id = old.id
                ids = list(dict.fromkeys([*old.event_ids, *c.event_ids]))
                c.modules = sorted(set(old.modules) | set(c.modules))
                c.start_us, c.end_us = min(old.start_us, c.start_us), max(old.end_us, c.end_us)
                c.confidence = max(old.confidence, c.confidence)
                c.evidence = c.evidence or old.evidence
                if old.start_us <= c.start_us and old.root_event_id:
                    c.root_event_id = old.root_event_id
                if c.root_event_id in ids:
                    ids.remove(c.root_event_id)
                    ids.insert(0, c.root_event_id)
                c.event_ids = ids
            self._recent[c.id] = c
            self._by_dims[(c.tenant_id, c.type, tuple(sorted(c.dimensions.items())))] = c.id
            for e in c.event_ids:
                self._by_event[(c.tenant_id, c.type, e)] = c.id
            self._trim()
        return c

    def _continue_incidents(self, tenant: str, incidents: list[Incident], corrs: list[Correlation],
                            ) -> tuple[list[Incident], list[Correlation]]:  # fmt: skip
        """An incident found again in a later window keeps its id and its earlier correlations.

        A window groups only the correlations it found, and an incident's id follows its earliest root: when
        a correlation with an earlier root joined (a latency anomaly first, the temporal correlation of the
        same degradation a flush later), or when the first correlations left the window, the same
        degradation had been reported as a second incident. "Again" means: it holds a correlation of the
        earlier incident, or has the earlier one's id (same root), or shares an event with it, or one of its
        correlations shares a dimension value (model, project, user, asset, component, request) with one of
        the earlier incident's within ``ADJACENT_US`` — the rule that groups correlations within a window.
        Returns the incidents (ids continued, earlier correlations not found now added back) and those
        correlations added back."""
        current = {c.id for c in corrs}
        taken: set[str] = set()
        out: list[Incident] = []
        kept: dict[str, Correlation] = {}
        with self._lock:
            by_id = {c.id: c for c in corrs}
            for inc in sorted(incidents, key=lambda i: (i.start_us, i.id)):
                members = [by_id[cid] for cid in inc.correlation_ids]
                prev = self._earlier_incidents(tenant, inc, members, taken)
                if not prev:
                    # its root's id may be held already by the incident that continued the earlier one
                    out.append(build_incident(members, stable_id(inc.id, "split")) if inc.id in taken else inc)
                    taken.add(out[-1].id)
                    continue
                taken.update(prev)
                extra = [self._recent[cid] for p in prev for cid in self._incidents[(tenant, p)].correlation_ids
                         if cid not in current and cid not in kept and cid in self._recent]  # fmt: skip
                kept.update((c.id, c) for c in extra)
                out.append(build_incident([*members, *extra], prev[0]))
            for inc in out:
                self._incidents[(tenant, inc.id)] = inc
                self._incidents.move_to_end((tenant, inc.id))
                for cid in inc.correlation_ids:
                    self._incident_of[(tenant, cid)] = inc.id
            self._trim()
        return out, list(kept.values())

    def _earlier_incidents(self, tenant: str, inc: Incident, members: list[Correlation], taken: set[str]) -> list[str]:
        """Ids of the remembered incidents ``inc`` continues (see :meth:`_continue_incidents`), the one it
        continues most first (most shared correlations, then earliest); empty when it is new. Call locked."""
        held = Counter(self._incident_of.get((tenant, c.id)) for c in members)
        ids = [i for i, _ in held.most_common() if i is not None and i not in taken and (tenant, i) in self._incidents]
        if (tenant, inc.id) in self._incidents and inc.id not in taken and inc.id not in ids:
            ids.append(inc.id)  # the same root
        if ids:
            return sorted(ids, key=lambda i: (-held.get(i, 0), self._incidents[(tenant, i)].start_us))
        events = set(inc.event_ids)
        for (t, old_id), old in itertools.islice(reversed(self._incidents.items()), _MAX_SCAN):
            if t != tenant or old_id in taken:
                continue
            if old.start_us > inc.end_us + ADJACENT_US or inc.start_us > old.end_us + ADJACENT_US:
                continue
            if events.intersection(old.event_ids) or any(
                shares_dimension(a, b) and a.start_us <= b.end_us + ADJACENT_US and b.start_us <= a.end_us + ADJACENT_US
                for a in members for b in (self._recent.get(c) for c in old.correlation_ids) if b is not None
            ):  # fmt: skip
                return [old_id]  # the most recent one it continues
        return []

    def _recall(self, tenant: str, found: list[Correlation]) -> tuple[set[str], set[str]]:
        """Remember the stored correlations among ``found`` that memory has lost (a restart, or more than
        ``max_recent`` since): :meth:`_merge` then continues them as it does in-memory ones. Without this, a
        correlation seen again after a restart (same id: a causal chain's request, say) was stored with only
        the events seen since, its earlier events and root dropped, and its incident replaced by one rooted
        at a later event. Returns the ids recalled and the ids of their stored incidents."""
        if self.repo is None:
            return set(), set()
        with self._lock:
            lost = [c.id for c in found if c.id not in self._recent]
        if not lost:
            return set(), set()
        stored = self.repo.load_correlations_owned(tenant, lost)
        with self._lock:
            for old, _ in stored:
                self._recent.setdefault(old.id, old)
        return {old.id for old, _ in stored}, {inc for _, inc in stored if inc is not None}

    def _trim(self) -> None:
        """Keep the memory of correlations and incidents within its bounds (call locked)."""
        bounds: list[tuple[dict[Any, Any], int]] = [
            (self._recent, self.max_recent), (self._incidents, self.max_recent), (self._incident_of, self.max_recent),
            (self._by_dims, self.max_recent), (self._by_event, 10 * self.max_recent)]  # fmt: skip
        for held, cap in bounds:
            while len(held) > cap:
                held.pop(next(iter(held)))

    def _changed(self, c: Correlation) -> bool:
        """True when ``c`` differs from what was last stored (so unchanged rows are not rewritten)."""
        sig = (len(c.event_ids), c.end_us, c.confidence)
        if self._stored_sig.get(c.id) == sig:
            return False
        self._stored_sig[c.id] = sig
        while len(self._stored_sig) > self.max_recent:
            self._stored_sig.pop(next(iter(self._stored_sig)))
        return True

    def _with_remembered(self, df: pd.DataFrame, tenant: str, corrs: list[Correlation],
                         recalled: set[str] | None = None) -> pd.DataFrame:  # fmt: skip
        """``df`` plus the remembered rows of correlated events already evicted from the window (so RCA
        still sees an incident's first events); remembers the rows of this window's correlated events.
        The events of correlations ``recalled`` from the store that memory lacks are read back from it."""
        wanted = {e for c in corrs for e in c.event_ids}
        if not wanted:
            return df
        present = df["event_id"].isin(wanted).to_numpy()
        with self._lock:
            for rec in df[present].to_dict("records"):
                key = (tenant, str(rec["event_id"]))
                self._rows[key] = rec
                self._rows.move_to_end(key)
            while len(self._rows) > self.max_rows:
                self._rows.popitem(last=False)
            missing = wanted - set(df["event_id"][present])
            extra = [self._rows[(tenant, e)] for e in missing if (tenant, e) in self._rows]
            missing -= {e for e in missing if (tenant, e) in self._rows}
        frames = [pd.DataFrame(extra)] if extra else []
        # forgotten by a restart: read back from the store (once: the rows are remembered from then on)
        missing &= {e for c in corrs if c.id in (recalled or ()) for e in c.event_ids}
        if missing and self.repo is not None:
            spans = [(c.start_us, c.end_us) for c in corrs if missing.intersection(c.event_ids)]
            ids = sorted(missing)[:MAX_RECALLED_ROWS]
            rows = self.repo.load_events(tenant, ids, min(a for a, _ in spans), max(b for _, b in spans))
            if rows:
                stored = build_frame(rows_from_sql(rows))
                frames.append(stored)
                with self._lock:
                    for rec in stored.to_dict("records"):
                        self._rows[(tenant, str(rec["event_id"]))] = rec
                    while len(self._rows) > self.max_rows:
                        self._rows.popitem(last=False)
        if not frames:
            return df
        return pd.concat([*frames, df], ignore_index=True)
