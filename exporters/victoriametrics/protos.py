"""The compiled reference of ``proto/remote.proto`` (for tests and tools; the exporter encodes by hand).

>>> from exporters.victoriametrics.protos import remote_pb2
>>> remote_pb2.WriteRequest().timeseries
[]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporters.queue.protoc import load_compiled

remote_pb2: Any = load_compiled(
    Path(__file__).resolve().parent, __package__ or "exporters.victoriametrics", "remote_pb2"
)
