"""Readers of the stack backends: PromQL against VictoriaMetrics/Prometheus, LogQL against Loki.

>>> from hubcore.storage.readers import PromReader, LokiReader, ReaderError
"""

from hubcore.storage.readers._http import BackendUnavailable, QueryError, ReaderError, ResponseParseError
from hubcore.storage.readers.loki import LokiReader
from hubcore.storage.readers.prometheus import PromReader

__all__ = ["BackendUnavailable", "LokiReader", "PromReader", "QueryError", "ReaderError", "ResponseParseError"]
