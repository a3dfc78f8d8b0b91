"""The exporters' dead-letter file: requests a backend refused for good, with the reason.

One JSON object per line (``dead_letter.jsonl`` in the queue directory)::

    {"time": "...", "exporter": "loki", "reason": "HTTP 400: entry too far behind", "status": 400,
     "records": 120, "url": "...", "body_b64": "..."}

``body_b64`` is the request body as sent (compressed when the protocol compresses), so an operator can
inspect it and re-post it by hand after fixing the cause.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any


class DeadLetterFile:
    def __init__(self, path: str | Path, exporter: str) -> None:
        self.path = Path(path)
        self.exporter = exporter
        self.count = 0
        self._lock = threading.Lock()

    def write(self, reason: str, *, status: int | None, url: str, records: int, body: bytes) -> None:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "exporter": self.exporter,
            "reason": reason,
            "status": status,
            "url": url,
            "records": records,
            "body_b64": base64.b64encode(body).decode(),
        }
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
            self.count += 1

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
