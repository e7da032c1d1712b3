"""What open alerts watch: the reads that count as exposure, and compromised targets.

An alert's ``records_exposed`` counts the distinct beneficiaries disclosed, while it is open, to
the accounts it accuses (an account alert's entity, a campaign's accounts, a compromised
target) and, for an IP alert, to that address. An alert with ``targets`` (accounts tried by an
address or a client string) also watches its addresses: a tried account that then logs in
successfully from one of them (with the campaign's client, for a client campaign) is
compromised and becomes accused.

The indexes are plain dicts mutated in place (never rebound), so the engine's hot path can
hold direct references to ``accounts``, ``ips`` and ``targets``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

from rempart.alerts import Alert, EntityType
from rempart.detect.spec import RuleSpec
from rempart.events import Event

#: Accounts and targets kept per alert.
MAX_NAMES: Final = 200
#: An alert stops counting exposure after this long without firing (or its dedupe, if longer).
MIN_OPEN: Final = 86400.0


class ExposureWatch:
    """Indexes from accounts and addresses to the open alerts that watch them."""

    __slots__ = ("accounts", "alerts", "exposure", "ips", "specs", "targets")

    def __init__(self, specs: Mapping[str, RuleSpec], alerts: dict[str, Alert]):
        self.specs = specs
        #: Every alert by id (the engine's dict; rebind with ``load``).
        self.alerts = alerts
        #: Alert id -> beneficiary hashes disclosed so far (open alerts only).
        self.exposure: dict[str, set[int]] = {}
        #: Account -> ids of alerts counting its reads.
        self.accounts: dict[str, list[str]] = {}
        #: Address -> ids of IP alerts counting the reads made from it.
        self.ips: dict[str, list[str]] = {}
        #: Address -> ids of open alerts with targets tried from it.
        self.targets: dict[str, list[str]] = {}

    def _stale(self, alert: Alert, ts: float) -> bool:
        return ts - alert.last_seen > max(self.specs[alert.rule_id].dedupe, MIN_OPEN)

    # -- alerts ---------------------------------------------------------------------------
    def start(self, alert: Alert, exposed: set[int]) -> None:
        """A new alert: count from what its firing already saw, watch what it accuses."""
        aid = alert.id
        self.exposure[aid] = exposed
        if alert.entity_type == EntityType.IP:
            self.ips.setdefault(alert.entity, []).append(aid)
        elif alert.entity_type == EntityType.ACCOUNT or "=" in alert.entity:
            for acc in alert.accounts:
                self.accounts.setdefault(acc, []).append(aid)
        self.watch_tried(alert)

    def add_accounts(self, alert: Alert, accounts: Collection[str], tried: bool) -> None:
        """Accounts tried by the entity go to ``targets`` (victims, not watched); accused ones
        to ``accounts``, and a campaign's accused accounts are watched for exposure.

        Names already listed are skipped and new ones added in sorted order, up to
        ``MAX_NAMES``; once the list is full ``accounts`` is not read at all, so an update
        costs the same however many names the rule counted (thousands in a stuffing attack).
        """
        listed = alert.targets if tried else alert.accounts
        room = MAX_NAMES - len(listed)
        if room > 0:
            present = set(listed)
            new = sorted(a for a in accounts if a not in present)[:room]
            listed.extend(new)
            if not tried and alert.entity_type == EntityType.CAMPAIGN and "=" in alert.entity:
                for acc in new:
                    self.accounts.setdefault(acc, []).append(alert.id)
        if tried:
            self.watch_tried(alert)

    def watch_tried(self, alert: Alert) -> None:
        """Watch the addresses an alert with targets came from for successful logins."""
        if not alert.targets:
            return
        ips = [alert.entity] if alert.entity_type == EntityType.IP else alert.ips
        for ip in ips:
            ids = self.targets.setdefault(ip, [])
            if alert.id not in ids:
                ids.append(alert.id)

    def close(self, aid: str) -> None:
        self.exposure.pop(aid, None)

    # -- events ---------------------------------------------------------------------------
    def expose(self, ev: Event, bh: int) -> None:
        """A disclosure by a watched account or from a watched address."""
        for index, key in ((self.accounts, ev.user_name), (self.ips, ev.source_ip)):
            ids = index.get(key) if key is not None else None
            if not ids:
                continue
            for aid in list(ids):
                alert = self.alerts[aid]
                if self._stale(alert, ev.ts):
                    ids.remove(aid)
                    self.exposure.pop(aid, None)
                    continue
                exposed = self.exposure.setdefault(aid, set())
                exposed.add(bh)
                alert.records_exposed = len(exposed)

    def compromised(self, ev: Event) -> list[str]:
        """A successful login from a watched address: ids of the alerts it compromised a
        target of (that account is now accused and its reads count)."""
        user = ev.user_name
        ids = self.targets.get(ev.source_ip)
        if not ids or user is None:
            return []
        grown: list[str] = []
        for aid in list(ids):
            alert = self.alerts[aid]
            if self._stale(alert, ev.ts):
                ids.remove(aid)
                continue
            if user not in alert.targets or user in alert.accounts:
                continue
            if alert.entity_type == EntityType.CAMPAIGN and "=" in alert.entity:
                name, value = alert.entity.split("=", 1)
                if str(getattr(ev, name, None)) != value:
                    continue
            alert.accounts.append(user)
            alert.metrics = {**alert.metrics, "compromised": float(len(alert.accounts))}
            self.exposure.setdefault(aid, set())
            self.accounts.setdefault(user, []).append(aid)
            grown.append(aid)
        return grown

    # -- housekeeping ---------------------------------------------------------------------
    def evict(self, open_ids: set[str]) -> None:
        """Forget closed alerts (exposure is dropped by ``close`` when an alert closes)."""
        for index, live_ids in (
            (self.accounts, self.exposure),
            (self.ips, self.exposure),
            (self.targets, open_ids),
        ):
            for k, ids in list(index.items()):
                live = [i for i in ids if i in live_ids]
                if live:
                    index[k] = live
                else:
                    del index[k]

    def dump(self) -> dict[str, list[int]]:
        return {aid: sorted(s) for aid, s in self.exposure.items()}

    def load(
        self, exposure: Mapping[str, Any], alerts: dict[str, Alert], open_alerts: Iterable[Alert]
    ) -> None:
        self.alerts = alerts
        self.exposure = {aid: set(v) for aid, v in exposure.items()}
        for index in (self.accounts, self.ips, self.targets):
            index.clear()
        for aid in self.exposure:
            alert = alerts.get(aid)
            if alert is None:
                continue
            if alert.entity_type == EntityType.IP:
                self.ips.setdefault(alert.entity, []).append(aid)
            # An IP alert's accounts are the compromised ones (its tried ones are targets).
            if alert.entity_type != EntityType.CAMPAIGN or "=" in alert.entity:
                for acc in alert.accounts:
                    self.accounts.setdefault(acc, []).append(aid)
        for alert in open_alerts:
            self.watch_tried(alert)
