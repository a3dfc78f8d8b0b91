"""The hub's own alerting over the embedded store: rules, alert lifecycle, Alertmanager. See ``README.md``."""

from processors.alerting.config import AlertingConfig
from processors.alerting.rules import BUILTIN_RULE_SPECS, Rule, RuleError, parse_rule
from processors.alerting.service import AlertConflict, AlertingService, AlertNotFound

__all__ = [
    "BUILTIN_RULE_SPECS",
    "AlertConflict",
    "AlertNotFound",
    "AlertingConfig",
    "AlertingService",
    "Rule",
    "RuleError",
    "parse_rule",
]
