"""The policy engine: alerts in, decisions (stored and enforced) and notifications out.

Order of checks for each action a matching policy rule asks for:

1. targets: the alert's entity when its type is the action's scope, else the accounts / IPs the
   alert names (range scope: the IPs' enclosing ``prefix`` networks);
2. protections: a protected account/organisation gets ``step_up`` instead of ``block``; an IP or
   range inside a protected range moves to the alert's accounts (account scope preferred) and
   ``block`` becomes ``step_up``;
3. deduplication: an alert updated by the engine does not create the decision again, and an
   entity already under an equal or stronger live decision gets no new one;
4. escalation: duration x ``factor`` per earlier automatic decision on the same entity within
   ``window``, capped at ``max_duration``;
5. simulation: recorded as ``simulated``, never enforced;
6. ceiling: beyond ``max_auto_account_blocks_per_hour`` automatic account blocks, new ones are
   ``pending`` (an analyst approves or rejects) and a high-severity alert says why.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from rempart.alerts import Alert, EntityType, Severity, alert_id
from rempart.errors import ConfigError, InputError
from rempart.respond.decisions import (
    Decision,
    DecisionState,
    DecisionType,
    Scope,
    new_decision_id,
    normalise_value,
)
from rempart.respond.policy_spec import ActionSpec, PolicyRule, PolicySpec
from rempart.respond.settings import ProtectedEntity, ResponseSettings, SafetyCaps
from rempart.respond.store import DecisionStore

CEILING_RULE_ID = "response.block_ceiling"
_SEEN_MAX = 200_000


@dataclass(slots=True)
class Notification:
    """What to tell the channels about one alert (and the decisions it led to)."""

    alert: Alert
    decisions: list[Decision]
    channels: list[str]


@dataclass(slots=True)
class PolicyOutcome:
    decisions: list[Decision] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    #: Alerts raised by the response layer itself (e.g. the block ceiling).
    alerts: list[Alert] = field(default_factory=list)


class Protections:
    def __init__(self, entities: list[ProtectedEntity]):
        self.networks = [(e.name, n) for e in entities for n in e.ranges]
        self.accounts = {a: e.name for e in entities for a in e.accounts}
        self.organizations = {o: e.name for e in entities for o in e.organizations}

    def network_of(self, scope: Scope, value: str) -> str | None:
        """Name of the protected entity whose ranges contain (or overlap) this IP / range."""
        if scope is Scope.IP:
            addr = ipaddress.ip_address(value)
            for name, net in self.networks:
                if addr.version == net.version and addr in net:
                    return name
        elif scope is Scope.RANGE:
            target = ipaddress.ip_network(value, strict=False)
            for name, net in self.networks:
                if target.version == net.version and target.overlaps(net):
                    return name
        return None

    def identity_of(self, scope: Scope, value: str) -> str | None:
        if scope is Scope.ACCOUNT:
            return self.accounts.get(value)
        if scope is Scope.ORGANIZATION:
            return self.organizations.get(value)
        return None


def _targets(action: ActionSpec, alert: Alert) -> list[str]:
    entity = alert.entity_type.value
    if action.scope.value == entity and action.scope is not Scope.RANGE:
        return [alert.entity]
    if action.scope is Scope.ACCOUNT:
        return list(dict.fromkeys(alert.accounts))
    if action.scope is Scope.IP:
        return [alert.entity] if entity == "ip" else list(dict.fromkeys(alert.ips))
    if action.scope is Scope.RANGE:
        ips = [alert.entity] if entity == "ip" else alert.ips
        nets: list[str] = []
        for ip in ips:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                continue
            plen = min(action.prefix, addr.max_prefixlen)
            nets.append(str(ipaddress.ip_network(f"{addr}/{plen}", strict=False)))
        return list(dict.fromkeys(nets))
    return []


class PolicyEngine:
    def __init__(
        self,
        spec: PolicySpec,
        store: DecisionStore,
        settings: ResponseSettings | None = None,
        *,
        channels: list[str] | None = None,
        on_ceiling: Callable[[Alert], None] | None = None,
    ):
        settings = settings or ResponseSettings()
        self.spec = spec
        self.store = store
        self.simulation = settings.simulation or spec.simulation
        self.protections = Protections([*settings.protected, *spec.protected])
        caps = [settings.caps, *([spec.caps] if spec.caps else [])]
        self.caps = SafetyCaps(
            max_auto_account_blocks_per_hour=min(c.max_auto_account_blocks_per_hour for c in caps)
        )
        self.channels = list(channels or [])
        known = set(self.channels)
        for rule in spec.rules:
            unknown = [c for c in rule.notify if c not in known]
            if unknown:
                raise ConfigError(
                    f"policy rule {rule.name!r} notifies unknown channel(s) {unknown}",
                    where=f"policy {spec.name}",
                    hint="channels are declared in response.notifications.channels",
                )
        self._seen: OrderedDict[tuple[str, str, int, str], None] = OrderedDict()
        self._ceiling_alert: Alert | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _remember(self, key: tuple[str, str, int, str]) -> bool:
        """True the first time ``key`` is seen."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        return True

    def _already_covered(self, scope: Scope, value: str, dtype: DecisionType, now: float) -> bool:
        if self.simulation:
            existing = self.store.query(scope=scope, value=value, state=DecisionState.SIMULATED)
            return any(
                d.type.strength >= dtype.strength and d.created <= now < d.expires for d in existing
            )
        for d in self.store.index.live_for(scope, value, now):
            if d.type.strength >= dtype.strength:
                return True
        return any(
            d.type.strength >= dtype.strength and d.expires > now
            for d in self.store.query(scope=scope, value=value, state=DecisionState.PENDING)
        )

    def _protect(
        self, scope: Scope, value: str, dtype: DecisionType, alert: Alert
    ) -> list[tuple[Scope, str, DecisionType, str | None]]:
        """Apply protected entities; returns the (scope, value, type, why) to decide on."""
        soft = DecisionType.STEP_UP if dtype is DecisionType.BLOCK else dtype
        name = self.protections.identity_of(scope, value)
        if name is not None:
            return [(scope, value, soft, f"protected entity {name!r}")]
        name = self.protections.network_of(scope, value)
        if name is not None:
            why = f"{value} is in protected range {name!r}"
            if alert.accounts:
                out: list[tuple[Scope, str, DecisionType, str | None]] = []
                for account in dict.fromkeys(alert.accounts):
                    acc_name = self.protections.identity_of(Scope.ACCOUNT, account)
                    acc_type = soft if acc_name else dtype
                    out.append((Scope.ACCOUNT, account, acc_type, why + "; account scope instead"))
                return out
            return [(scope, value, soft, why)]
        return [(scope, value, dtype, None)]

    def _ceiling_reached(self, now: float, planned: int) -> bool:
        limit = self.caps.max_auto_account_blocks_per_hour
        return self.store.count_automatic_blocks_since(now - 3600.0) + planned >= limit

    def _raise_ceiling_alert(self, now: float, pending: Decision, outcome: PolicyOutcome) -> None:
        limit = self.caps.max_auto_account_blocks_per_hour
        current = self._ceiling_alert
        if current is not None and now - current.detected_at < 3600.0:
            current.updates += 1
            current.last_seen = now
            current.accounts.append(pending.value)
            current.events += 1
            current.metrics["pending"] = current.metrics.get("pending", 0.0) + 1
            outcome.alerts.append(current)
            return
        alert = Alert(
            id=alert_id(CEILING_RULE_ID, EntityType.CAMPAIGN.value, "response", now),
            rule_id=CEILING_RULE_ID,
            rule_version=1,
            severity=Severity.HIGH,
            title="Automatic block ceiling reached: new account blocks wait for an analyst",
            entity_type=EntityType.CAMPAIGN,
            entity="response",
            first_seen=now,
            detected_at=now,
            last_seen=now,
            accounts=[pending.value],
            events=1,
            explanation=(
                f"{limit} automatic account blocks were already made in the last hour (the "
                f"ceiling). Block {pending.id} on account {pending.value} is pending: approve "
                f"or reject it. Many blocks at once may be a wide attack, or a rule misfiring, "
                f"or an attempt to lock out legitimate practitioners."
            ),
            tags=["rempart.response", "safety-cap"],
            metrics={"ceiling": float(limit), "pending": 1.0},
        )
        self._ceiling_alert = alert
        outcome.alerts.append(alert)

    # -- the work --------------------------------------------------------------------------
    def handle(self, alert: Alert) -> PolicyOutcome:
        """Decisions and notifications for one new or updated alert (stored before returning)."""
        outcome = PolicyOutcome()
        now = self.store.clock()
        channels: dict[str, None] = {}
        matched = False
        earlier: set[tuple[Scope, str]] | None = None
        for rule in self.spec.rules:
            if not rule.when.matches(alert):
                continue
            matched = True
            if earlier is None:
                # decisions this alert already led to (before a restart, or since revoked by an
                # analyst) are not made again
                earlier = self.store.decided_for_alert(alert.id)
            self._apply_rule(rule, alert, now, outcome, earlier)
            channels.update(dict.fromkeys(rule.notify or self.channels))
        if outcome.decisions:
            self.store.add_many(outcome.decisions)
        # Notify once per alert, and again when an update led to new decisions.
        first_time = self._remember((alert.id, "", -1, "notify"))
        if matched and channels and (first_time or outcome.decisions):
            outcome.notifications.append(Notification(alert, outcome.decisions, list(channels)))
        return outcome

    def _apply_rule(
        self,
        rule: PolicyRule,
        alert: Alert,
        now: float,
        outcome: PolicyOutcome,
        earlier: set[tuple[Scope, str]],
    ) -> list[Decision]:
        made: list[Decision] = []
        for idx, action in enumerate(rule.then):
            for raw in _targets(action, alert):
                try:
                    value = normalise_value(action.scope, raw)
                except InputError:
                    continue  # a malformed value in an alert: no decision on it
                if not self._remember((alert.id, rule.name, idx, value)):
                    continue
                targets = self._protect(action.scope, value, action.type, alert)
                for scope, val, dtype, why in targets:
                    if (scope, val) in earlier or any(
                        d.scope is scope and d.value == val for d in made + outcome.decisions
                    ):
                        continue
                    if self._already_covered(scope, val, dtype, now):
                        continue
                    decision = self._decide(rule, action, alert, scope, val, dtype, why, now)
                    if (
                        decision.state is DecisionState.ACTIVE
                        and dtype is DecisionType.BLOCK
                        and scope is Scope.ACCOUNT
                        and self._ceiling_reached(now, _blocks(outcome.decisions))
                    ):
                        decision = decision.with_state(DecisionState.PENDING)
                        self._raise_ceiling_alert(now, decision, outcome)
                    made.append(decision)
                    outcome.decisions.append(decision)
        return made

    def _decide(
        self,
        rule: PolicyRule,
        action: ActionSpec,
        alert: Alert,
        scope: Scope,
        value: str,
        dtype: DecisionType,
        why: str | None,
        now: float,
    ) -> Decision:
        esc = self.spec.escalation
        level = self.store.offences_since(scope, value, now - esc.window)
        duration = min(action.duration * esc.factor**level, max(esc.max_duration, action.duration))
        reason = f"{alert.title or alert.rule_id} (policy {rule.name})"
        if level:
            reason += f"; repeat offence #{level + 1}"
        if why:
            reason += f"; {why}"
        return Decision(
            id=new_decision_id(),
            scope=scope,
            value=value,
            type=dtype,
            created=now,
            expires=now + duration,
            reason=reason,
            origin=f"rule:{alert.rule_id}",
            alert_id=alert.id,
            state=DecisionState.SIMULATED if self.simulation else DecisionState.ACTIVE,
            rate=action.parsed_rate(),
            level=level,
        )


def _blocks(decisions: list[Decision]) -> int:
    return sum(
        1
        for d in decisions
        if d.state is DecisionState.ACTIVE
        and d.type is DecisionType.BLOCK
        and d.scope is Scope.ACCOUNT
    )
