"""Configuration of the native-event processor (YAML key ``processors.native_events``).

The model lives in :mod:`hubcore.config` with the rest of the file's schema; it is re-exported here so
the component folder reads like every other one.
"""

from hubcore.config import DEFAULT_EXCHANGE_RATES, NativeEventsConfig

__all__ = ["DEFAULT_EXCHANGE_RATES", "NativeEventsConfig"]
