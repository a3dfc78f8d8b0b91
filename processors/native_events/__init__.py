"""The native-event processor: decode, validate, normalise, enrich and de-duplicate a batch.

>>> from processors.native_events import NativeEventsConfig, NativeEventsProcessor
>>> proc = NativeEventsProcessor(NativeEventsConfig())
>>> res = proc.process([b'{"bad": 1}'], tenant_id="t1", now_us=1_700_000_000_000_000)
>>> res.accepted, res.rejected[0].reason.split(":")[0]
(0, 'invalid event')
"""

from processors.native_events.config import NativeEventsConfig
from processors.native_events.processor import NativeEventsProcessor, ProcessResult, Rejection

__all__ = ["NativeEventsConfig", "NativeEventsProcessor", "ProcessResult", "Rejection"]
