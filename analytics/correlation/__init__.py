"""Cross-module correlation and root-cause analysis (issue 6).

    from analytics.correlation import CorrelationEngine, EngineConfig

    engine = CorrelationEngine(store, EngineConfig(window_s=60), registry=metrics.registry)
    engine.start()                      # creates the correlations / incidents tables (idempotent)
    engine.ingest(columns)              # after each accepted batch (the events table's column lists)
    engine.flush()                      # on a timer: analyse windows with new data, store, export
    engine.analyze(tenant, start_us, end_us)   # on demand, over stored events

See ``docs/correlation.md``.
"""

from analytics.correlation.detect import detect_all
from analytics.correlation.engine import AnalysisResult, CorrelationEngine
from analytics.correlation.feedback import (
    PushConfig,
    compliance_report,
    dependency_graph,
    push_compliance_report,
    push_recent_compliance,
    threat_intel,
)
from analytics.correlation.frame import build_frame
from analytics.correlation.model import (
    CORRELATION_TYPES,
    AnomalyRecord,
    Correlation,
    EngineConfig,
    Incident,
)

__all__ = [
    "CORRELATION_TYPES",
    "AnalysisResult",
    "AnomalyRecord",
    "Correlation",
    "CorrelationEngine",
    "EngineConfig",
    "Incident",
    "PushConfig",
    "build_frame",
    "compliance_report",
    "dependency_graph",
    "detect_all",
    "push_compliance_report",
    "push_recent_compliance",
    "threat_intel",
]
