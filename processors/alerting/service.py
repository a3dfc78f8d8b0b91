"""The hub's own alerting: evaluate rules every ``interval``, keep the alert lifecycle, send to Alertmanager.

    svc = AlertingService(AlertingConfig(interval="30s"), store, metrics.registry, alertmanager_client)
    svc.start()                      # creates the tables, starts the evaluation thread (and the client)
    svc.list_alerts("acme", state="firing")
    svc.acknowledge("acme", alert_id, by="alice", comment="looking")
    svc.shutdown()                   # idempotent; safe without start

Lifecycle of a rule's alert (per tenant, rule and label set — the *fingerprint*):

* the condition holds → *pending*; held for ``for`` → an alert is stored ``firing`` and sent;
* pending timers survive a restart: an entry's start (``since``) is stored in ``alert_pending`` when the
  condition is first seen holding and deleted when it stops holding (or its rule is deleted). On start the
  entries are loaded back with their original ``since`` (the remainder of ``for`` is left), unless more than
  ``pending_restore_grace`` passed between the last evaluation before the restart and the first one after
  it: the condition was not observed meanwhile, so those timers start again. Entries of rules that no
  longer exist are dropped. Only changes are written (plus one ``alert_pending_seen`` update per round while
  entries exist); rules with ``for: 0`` store nothing;
* ``acknowledge`` → ``acknowledged``; ``resolve`` (API) or the condition clearing (auto) → ``resolved``
  with ``ends_at``; Alertmanager gets ``endsAt``;
* duplicate suppression: no new alert for a fingerprint while one is open, nor within ``repeat_suppress``
  after it was resolved (counted in the resolved alert's ``suppressed``);
* escalation: still ``firing`` (not acknowledged) ``escalate_after`` after it started (or after its last
  inhibition ended) → severity one level up and label ``escalated="true"`` (Alertmanager: the old label
  set is resolved, the new one fires);
* inhibition (``inhibit``, Alertmanager's ``inhibit_rules`` for source ``severity="critical"``, target
  ``severity="warning"``, every other label equal): an open warning whose critical — same tenant, alertname
  and labels apart from ``severity``/``escalated``, of any source — is open gets ``inhibited_by`` (the
  critical's fingerprint), ``inhibited_by_id`` and ``inhibited_at``; it is not sent to Alertmanager
  (withdrawn if it was), not escalated, and hidden by the API's default list. When no such critical is open
  any more it is *released* (``released_at``) and sent again. Applied after every evaluation, API resolve,
  rule deletion and webhook; an alert that resolves while inhibited keeps its ``inhibited_by``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from processors.alerting.config import AlertingConfig
from processors.alerting.errors import AlertConflict, AlertNotFound
from processors.alerting.evaluator import Evaluator, Instance, StoreLike
from processors.alerting.operations import AlertOperationsMixin
from processors.alerting.repository import AlertRepository, iso
from processors.alerting.rules import Rule, builtin_rules, parse_rule
from processors.alerting.transitions import SOURCE, AlertmanagerLike, TransitionsMixin

# AlertConflict, AlertNotFound (errors), SOURCE and AlertmanagerLike (transitions) were
# defined here: still importable from this module
__all__ = ["SOURCE", "AlertConflict", "AlertNotFound", "AlertingService", "AlertmanagerLike", "fingerprint", "render"]

log = logging.getLogger(__name__)
_TEMPLATE = re.compile(r"\{\{\s*\$(value|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}")


def fingerprint(rule_id: str, tenant_id: str, labels: Mapping[str, str]) -> str:
    """Identity of a rule's alert: the rule, the tenant and the labels minus severity/escalation."""
    ident = {k: v for k, v in labels.items() if k not in ("severity", "escalated")}
    return hashlib.sha256(json.dumps([rule_id, tenant_id, ident], sort_keys=True).encode()).hexdigest()[:16]


def _not_deletable(rule: Rule) -> str:
    """Why a built-in or configured rule cannot be deleted through the API, and the key that removes it."""
    if rule.id.startswith("config-"):
        return (f"rule {rule.id!r} is configured: remove it from processors.alerting.rules (the entry named "
                f"{rule.name}) and restart the hub")  # fmt: skip
    return (f"rule {rule.id!r} is built in: processors.alerting.builtin_rules: false turns off every built-in "
            "rule (for every tenant); a rule of your own can replace it")  # fmt: skip


def render(template: str, labels: Mapping[str, str], value: float | None) -> str:
    """``{{ $value }}`` and ``{{ $labels.name }}`` (Prometheus' notation) in annotations."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) == "value":
            return "" if value is None else f"{value:.4g}"
        return labels.get(m.group(2), "")

    return _TEMPLATE.sub(sub, template)


class _Metrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        def make(kind: type[Any], name: str, doc: str, labels: list[str]) -> Any:
            try:
                return kind(name, doc, labels, registry=registry)
            except ValueError:  # already registered on this registry (a second service): keep it private
                return kind(name, doc, labels, registry=None)

        self.evaluations = make(Counter, "hub_alerting_evaluations", "Rule evaluations by health", ["health"])
        self.transitions = make(Counter, "hub_alerting_transitions", "Alert lifecycle transitions", ["to"])
        self.open = make(Gauge, "hub_alerting_open_alerts", "Open hub alerts (firing or acknowledged)", ["state"])
        self.webhook = make(Counter, "hub_alerting_webhook_alerts", "Alerts from Alertmanager webhooks", ["outcome"])
        self.inhibited = make(Gauge, "hub_alerting_inhibited_alerts",
                              "Open alerts (warnings) inhibited by the open critical alert of the same labels", [])  # fmt: skip


class AlertingService(TransitionsMixin, AlertOperationsMixin):
    """Rules → alerts in the embedded store (table ``alerts``), with an optional Alertmanager client.

    ``clock`` (seconds) decides "now" for evaluations and transitions; tests pass a fake one.
    With ``manage_client`` (the default) :meth:`start` starts the client and :meth:`shutdown` shuts it
    down; the hub passes ``False`` for its own ``exporters.alertmanager``, which it starts and stops.
    """

    def __init__(
        self,
        config: AlertingConfig,
        store: StoreLike,
        metrics_registry: CollectorRegistry | None = None,
        alertmanager_client: AlertmanagerLike | None = None,
        *,
        default_tenant: str = "default",
        clock: Callable[[], float] = time.time,
        manage_client: bool = True,
    ) -> None:
        self.config = config.validate()
        self.repo = AlertRepository(store)
        self.evaluator = Evaluator(store)
        self.alertmanager = alertmanager_client
        self.manage_client = manage_client
        self.default_tenant = default_tenant
        self.clock = clock
        self.metrics = _Metrics(metrics_registry)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: dict[tuple[str, str, str], float] = {}  # (rule, tenant, fingerprint) -> since
        self._persisted: set[tuple[str, str, str]] = set()  # the keys that have an alert_pending row
        self._restored_seen: float | None = None  # entries were restored: when they were last current
        self._health: dict[str, dict[str, Any]] = {}
        self._rules: list[Rule] = []
        self._schema = False
        self.webhook_totals: dict[str, int] = {}
        self._started = False
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Create the tables, load the rules, start the client and (if enabled) the evaluation thread."""
        with self._lock:
            if self._started or self._closed:
                return
            self._ensure_ready()
            if self.alertmanager is not None and self.manage_client:
                self.alertmanager.start()
            if self.config.enabled:
                self._thread = threading.Thread(target=self._run, name="hub-alerting", daemon=True)
                self._thread.start()
            self._started = True

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop evaluating and shut the client down. Idempotent; safe without start."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.alertmanager is not None and self.manage_client and self._started:
            self.alertmanager.shutdown(timeout)

    def _ensure_ready(self) -> None:
        if not self._schema:
            self.repo.ensure_schema()
            self._schema = True
            self._load_rules()
            self._restore_pending()

    def _restore_pending(self) -> None:
        """Load the stored pending timers; those of rules that no longer exist are deleted.

        Whether the hub was down too long is decided at the first evaluation (its ``now``).
        """
        known = {r.id for r in self._rules}
        last = self.repo.pending_seen()
        stale: list[tuple[str, str, str]] = []
        for rule_id, tenant_id, fp, _labels, since in self.repo.pending():
            key = (rule_id, tenant_id, fp)
            if rule_id not in known:
                stale.append(key)
                continue
            self._pending[key] = since
            self._persisted.add(key)
            last = since if last is None else max(last, since)
        self.repo.remove_pending(stale)
        self._restored_seen = last if self._pending else None

    def _check_restored(self, now: float) -> None:
        """First evaluation after restoring: drop the timers if evaluation paused longer than the grace."""
        if self._restored_seen is None:
            return
        gap, grace = now - self._restored_seen, self.config.pending_restore_grace_s
        if grace <= 0 or gap > grace:
            log.info("pending alert timers not restored: evaluation paused longer than pending_restore_grace",
                     extra={"entries": len(self._pending), "gap_s": gap, "grace_s": grace})  # fmt: skip
            self._pending.clear()
            self._persisted.clear()
            self.repo.clear_pending()
        else:
            log.info("pending alert timers restored", extra={"entries": len(self._pending), "gap_s": gap})
        self._restored_seen = None

    def _run(self) -> None:
        interval = self.config.interval_s
        while not self._stop.is_set():
            if not getattr(self.repo.store, "ready", True):
                log.info("the store closed; alert evaluation stops")
                return
            try:
                self.evaluate_once()
            except Exception:  # keep evaluating; the store may be shutting down
                log.exception("alert rule evaluation failed")
            if self._stop.wait(interval):
                return

    # -- rules ------------------------------------------------------------------------------------
    def _load_rules(self) -> None:
        rules = builtin_rules() if self.config.builtin_rules else []
        for i, data in enumerate(self.config.rules):
            rules.append(parse_rule(data, tenant_id=data.get("tenant_id"), rule_id=f"config-{i}", builtin=True))
        for rule_id, tenant, spec in self.repo.custom_rules():
            try:
                rules.append(parse_rule(spec, tenant_id=tenant, rule_id=rule_id))
            except ValueError as exc:
                log.warning(
                    "skipping a stored alert rule that no longer validates", extra={"rule": rule_id, "error": str(exc)}
                )
        self._rules = rules

    def rules(self, tenant_id: str) -> list[dict[str, Any]]:
        """Rules that apply to ``tenant_id`` (built-in, configured and its own), with their health."""
        with self._lock:
            self._ensure_ready()
            return [
                {**r.to_dict(), "health": self._health.get(r.id, {"health": "unknown"})}
                for r in self._rules
                if r.tenant_id is None or r.tenant_id == tenant_id or tenant_id == "*"
            ]

    def create_rule(self, tenant_id: str, data: Any, by: str | None = None) -> dict[str, Any]:
        """Validate (raises :class:`~processors.alerting.rules.RuleError`) and store a tenant's rule."""
        rule = parse_rule(data, tenant_id=tenant_id, rule_id="r-" + uuid.uuid4().hex[:16])
        with self._lock:
            self._ensure_ready()
            self.repo.insert_rule(rule.id, tenant_id, rule.spec, self.clock(), by)
            self._rules.append(rule)
        return {**rule.to_dict(), "health": {"health": "unknown"}}

    def delete_rule(self, tenant_id: str, rule_id: str) -> None:
        """Delete a tenant's rule and resolve its open alerts. Built-in/config rules: :class:`AlertConflict`."""
        with self._lock:
            self._ensure_ready()
            known = next((r for r in self._rules if r.id == rule_id), None)
            if known is not None and known.builtin and known.tenant_id in (None, tenant_id):
                raise AlertConflict(_not_deletable(known))
            if not self.repo.delete_rule(tenant_id, rule_id):
                raise AlertNotFound(f"no alert rule {rule_id!r} for tenant {tenant_id!r}")
            self._rules = [r for r in self._rules if r.id != rule_id]
            gone = [k for k in self._pending if k[0] == rule_id and k[1] == tenant_id]
            for key in gone:
                del self._pending[key]
            self.repo.remove_rule_pending(rule_id, tenant_id)
            self._persisted.difference_update(gone)
            now = self.clock()
            for alert in self.repo.open_alerts(SOURCE):
                if alert["rule_id"] == rule_id and alert["tenant_id"] == tenant_id:
                    self._resolve(alert, now, "rule deleted")
            self._inhibit(now)

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate_once(self, now: float | None = None) -> dict[str, int]:
        """Evaluate every rule at ``now`` (default: the clock), apply transitions, send to Alertmanager."""
        now = self.clock() if now is None else now
        with self._lock:
            self._ensure_ready()
            self._check_restored(now)
            open_by_rule: dict[str, list[dict[str, Any]]] = {}
            for alert in self.repo.open_alerts(SOURCE):
                open_by_rule.setdefault(alert["rule_id"], []).append(alert)
            for rule in list(self._rules):
                try:
                    instances, health = self.evaluator.evaluate(rule.condition, rule.tenant_id, now)
                except Exception as exc:  # a broken rule must not stop the others
                    log.warning("alert rule failed", extra={"rule": rule.id, "error": str(exc)})
                    self._health[rule.id] = {"health": "error", "last_error": str(exc), "last_evaluation": iso(now)}
                    self.metrics.evaluations.labels(health="error").inc()
                    continue
                self.metrics.evaluations.labels(health=health).inc()
                self._health[rule.id] = {"health": health, "last_error": None, "last_evaluation": iso(now),
                                         "matching": len(instances)}  # fmt: skip
                self._apply(rule, instances, open_by_rule.get(rule.id, []), now)
            known = {r.id for r in self._rules}
            for rule_id, orphans in open_by_rule.items():
                if rule_id not in known:  # its rule was removed from the config (or disabled)
                    for alert in orphans:
                        self._resolve(alert, now, "rule removed")
            if self._persisted:  # the stored timers are current as of this round (one row, not one per entry)
                self.repo.set_pending_seen(now)
            self._inhibit(now)
            if self._escalate(now):  # a new severity: a new source or target of inhibition
                self._inhibit(now)
            open_alerts = self.repo.open_alerts(SOURCE)
            self._send(open_alerts)
            for state in ("firing", "acknowledged"):
                self.metrics.open.labels(state=state).set(sum(1 for a in open_alerts if a["state"] == state))
            return {"rules": len(self._rules), "open": len(open_alerts), "pending": len(self._pending)}

    def _labels(self, rule: Rule, inst: Instance) -> dict[str, str]:
        labels = {"team": "llm-platform", **rule.labels, **{k: v for k, v in inst.labels.items() if v}}
        labels.update(alertname=rule.name, severity=rule.severity, tenant_id=inst.tenant_id)
        return labels

    def _apply(self, rule: Rule, instances: list[Instance], open_alerts: list[dict[str, Any]], now: float) -> None:
        active: set[tuple[str, str]] = set()
        added: list[tuple[str, str, str, dict[str, str], float]] = []
        for inst in instances:
            labels = self._labels(rule, inst)
            fp = fingerprint(rule.id, inst.tenant_id, labels)
            active.add((inst.tenant_id, fp))
            key = (rule.id, inst.tenant_id, fp)
            since = self._pending.get(key)
            if since is None:  # newly pending: stored (a `for: 0` rule fires at once, nothing to restore)
                since = self._pending[key] = now
                if rule.for_s > 0:
                    added.append((*key, labels, now))
            if now - since >= rule.for_s:
                self._fire(rule, inst, labels, fp, now)
        gone = [k for k in self._pending if k[0] == rule.id and (k[1], k[2]) not in active]
        for key in gone:
            del self._pending[key]
        self.repo.remove_pending([k for k in gone if k in self._persisted])
        self._persisted.difference_update(gone)
        self.repo.add_pending(added)
        self._persisted.update((r, t, f) for r, t, f, _labels, _since in added)
        for alert in open_alerts:
            if (alert["tenant_id"], alert["fingerprint"]) not in active:
                self._resolve(alert, now, "auto")

    def _fire(self, rule: Rule, inst: Instance, labels: dict[str, str], fp: str, now: float) -> None:
        open_ = self.repo.find_open(inst.tenant_id, SOURCE, fp)
        annotations = {k: render(v, labels, inst.value) for k, v in rule.annotations.items()}
        if open_ is not None:  # re-rendered at each evaluation, as Prometheus does: "score 19.76" follows the value
            self.repo.update(open_["id"], value=inst.value, annotations=annotations, updated_at=now)
            return
        last = self.repo.last_resolved(inst.tenant_id, SOURCE, fp)
        suppress = self.config.repeat_suppress_s
        if last is not None and suppress > 0 and now - (last["ends_at"] or 0) < suppress:
            self.repo.update(last["id"], suppressed=int(last["suppressed"] or 0) + 1)
            self.metrics.transitions.labels(to="suppressed").inc()
            return
        self.repo.insert({
            "id": uuid.uuid4().hex, "tenant_id": inst.tenant_id, "source": SOURCE, "rule_id": rule.id,
            "alertname": rule.name, "fingerprint": fp, "state": "firing", "severity": rule.severity,
            "labels": labels, "annotations": annotations, "value": inst.value, "starts_at": now, "updated_at": now,
            "escalated": False, "suppressed": 0,
            "generator_url": f"{self.config.external_url.rstrip('/')}/api/v1/alerts/rules/{rule.id}",
        })  # fmt: skip
        self.metrics.transitions.labels(to="firing").inc()
        # the severity and labels tell apart the alerts of one evaluation (an anomaly's warning and critical
        # rules fire together, one alert per series): without them the log read as the same alert repeated
        log.info("alert firing", extra={"alertname": rule.name, "tenant_id": inst.tenant_id, "severity": rule.severity,
                                        "value": inst.value, "fingerprint": fp, "labels": labels})  # fmt: skip
