"""``--dry-run --output FILE.jsonl``: the events as JSON Lines; everything written counts as accepted.

>>> import pathlib
>>> import tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "events.jsonl"
>>> sink = FileSink(path)
>>> sink.send([{"event_id": "e1"}, {"event_id": "e2"}])
>>> sink.close()
>>> sink.stats.accepted, path.read_text().count("\\n")
(2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from hub.simulate.events import Event, encode_lines
from hub.simulate.senders.base import SendStats


class FileSink:
    """Writes events as JSON Lines; everything written counts as accepted."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[bytes] = self.path.open("wb")
        self.stats = SendStats()

    def send(self, events: Sequence[Event]) -> None:
        data = encode_lines(events)
        self._fh.write(data)
        st = self.stats
        st.batches += 1
        st.sent += len(events)
        st.accepted += len(events)
        st.bytes_sent += len(data)

    def close(self) -> None:
        self._fh.close()
