"""The compiled reference of ``proto/logproto.proto`` (for tests and tools; the exporter encodes by hand).

>>> from exporters.loki.protos import logproto_pb2
>>> logproto_pb2.PushRequest().streams
[]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporters.queue.protoc import load_compiled

logproto_pb2: Any = load_compiled(Path(__file__).resolve().parent, __package__ or "exporters.loki", "logproto_pb2")
