"""Configuration of the hub's own alerting: ``processors.alerting``.

processors:
  alerting:
    interval: 30s              # evaluate every rule this often
    repeat_suppress: 10m       # the same rule + labels does not open a new alert this long after a resolve
    escalate_after: 30m        # unacknowledged this long: severity up one level, label escalated="true"
    pending_restore_grace: 10m # pending `for` timers survive a restart unless evaluation paused longer than this
    external_url: http://hub.example:8080   # generatorURL of the alerts sent to Alertmanager
    builtin_rules: true        # the default rules (error rate, p95 latency, prompt-injection burst, anomalies, budgets)
    inhibit: true              # a warning is inhibited while the critical of the same alert and labels is open
    rules:                     # extra rules, every tenant (or one: tenant_id)
      - name: GPT4oSlow
        condition: {type: threshold, metric: gen_ai.client.operation.duration, filters: {model: gpt-4o},
                    aggregation: p95, window: 5m, op: ">", value: 2000}
        for: 5m
        severity: warning
        labels: {team: search}

>>> AlertingConfig(interval="1m").validate().interval_s
60.0
"""

from __future__ import annotations

from typing import Any

import msgspec

from hubcore.errors import ConfigError
from processors.alerting.rules import RuleError, parse_duration, parse_rule


class AlertingConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Keys (durations are seconds or strings such as ``30s``, ``5m``, ``2h``, ``1d``):

    * ``enabled``: evaluate rules at all (the API and the Alertmanager webhook work either way).
    * ``interval``: how often every rule is evaluated.
    * ``repeat_suppress``: duplicate suppression after a resolve (same rule, same labels).
    * ``escalate_after``: an alert still ``firing`` (not acknowledged) this long is escalated; ``0`` = never.
    * ``pending_restore_grace``: pending ``for`` timers are stored (table ``alert_pending``) and restored
      with their original start when the hub restarts, unless more than this passed between the last
      evaluation before the restart and the first one after it (the condition was not observed meanwhile);
      then the timers start again. ``0`` = never restore. Keep it well above ``interval``.
    * ``external_url``: the hub's URL as Alertmanager users reach it (``generatorURL``).
    * ``builtin_rules``: evaluate :data:`processors.alerting.rules.BUILTIN_RULES`.
    * ``inhibit``: like Alertmanager's ``inhibit_rules`` (source ``severity="critical"``, target
      ``severity="warning"``, every other label equal): while a critical alert is open, the warning of the
      same alertname, tenant and labels is marked inhibited (``inhibited_by``), hidden from the default
      alert list, not sent to Alertmanager and not escalated. ``false``: never.
    * ``rules``: extra rules in the API's JSON shape (see ``docs/alerting.md``).

    Alerts go to Alertmanager through the hub's ``exporters.alertmanager`` client (passed to the service).
    """

    enabled: bool = True
    interval: str | float = 30.0
    repeat_suppress: str | float = 600.0
    escalate_after: str | float = 1800.0
    pending_restore_grace: str | float = 600.0
    external_url: str = "http://127.0.0.1:8080"
    builtin_rules: bool = True
    inhibit: bool = True
    rules: list[dict[str, Any]] = []

    def validate(self, key: str = "processors.alerting") -> AlertingConfig:
        """Check durations and rules; errors name the YAML key."""
        for name in ("interval", "repeat_suppress", "escalate_after", "pending_restore_grace"):
            try:
                parse_duration(getattr(self, name), name, allow_zero=name != "interval")
            except RuleError as exc:
                raise ConfigError(f"{key}.{exc.field}", exc.message) from None
        for i, data in enumerate(self.rules):
            try:
                parse_rule(data, tenant_id=data.get("tenant_id"), rule_id=f"config-{i}")
            except RuleError as exc:
                raise ConfigError(f"{key}.rules.{i}.{exc.field}".rstrip("."), exc.message) from None
        return self

    @property
    def interval_s(self) -> float:
        return parse_duration(self.interval, "interval")

    @property
    def repeat_suppress_s(self) -> float:
        return parse_duration(self.repeat_suppress, "repeat_suppress", allow_zero=True)

    @property
    def escalate_after_s(self) -> float:
        return parse_duration(self.escalate_after, "escalate_after", allow_zero=True)

    @property
    def pending_restore_grace_s(self) -> float:
        return parse_duration(self.pending_restore_grace, "pending_restore_grace", allow_zero=True)
