"""The OTLP receiver: OTLP/gRPC and OTLP/HTTP (protobuf and JSON) for metrics, logs and traces.

Decodes, resolves the tenant, translates to the embedded store's rows (:mod:`receivers.otlp.translate`)
and hands them to a :class:`hubcore.contracts.SignalsConsumer`; see ``README.md`` in this folder.

    >>> from receivers.otlp import factory
    >>> factory.TYPE
    'otlp'
"""

from receivers.otlp.config import OtlpReceiverConfig
from receivers.otlp.grpc_service import add_otlp_servicers
from receivers.otlp.http_app import create_otlp_http_app
from receivers.otlp.translate import logs_to_rows, metrics_to_rows, traces_to_rows

__all__ = [
    "OtlpReceiverConfig",
    "add_otlp_servicers",
    "create_otlp_http_app",
    "logs_to_rows",
    "metrics_to_rows",
    "traces_to_rows",
]
