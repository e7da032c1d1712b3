"""``baseline`` rules: today's quantity for an entity against its own history and its peers.

Quantities (per entity per local calendar day):

- ``distinct_beneficiaries``: distinct beneficiaries disclosed today;
- ``new_beneficiaries``: of those, the ones this account had never read before;
- ``novelty_share``: new / distinct, once at least ``min_reads`` distinct were read today;
- ``reads_without_claim``: disclosures not followed by a claim (``claim.create``) from the same
  account within ``claim_window`` (a claim pairs with the latest pending read: in the portal a
  claim follows its rights check within minutes);
- ``new_without_claim``: of those, the beneficiaries the account had never read before (no care
  relationship before, none after: the insider's signature).

With ``span_days: N`` (count quantities only) the value is a rolling sum over the current day
and the N - 1 days before it, judged against the history of such sums, leaving out the last
N - 1 of them (they overlap the current span, so a slow attack would raise its own bar).

Threshold for an entity on a given day (fires while today's value exceeds it)::

    own  = own_factor  * max(p95(own days), median + 3 * 1.4826 * MAD)   if >= min_history days
    peer = peer_factor * quantile(peer_quantile, peers' days)             if >= 30 peer days
        (the peers' days above max(3 * their p90, min_value) left out: see ``peer_bar``)
    threshold = max(min_value, own, peer)

With neither own nor peer history the rule is still learning and does not fire. Own history
holds the last ``history_days`` active days (days with at least one read); peers' history holds
the last 20,000 account-days of the peer group within ``history_days``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from statistics import median
from typing import Any, Final

from rempart.detect.baseline_days import _NO_BAR, _SPLIT, _Day, _Hist, _ReadDays, _View
from rempart.detect.expr import resolve_field, utc_offset
from rempart.detect.spec import RuleSpec
from rempart.detect.windows import CompiledRule, EventContext, Fire
from rempart.events import Event

__all__ = [
    "BaselineRule",
    "_Day",
    "_ReadDays",
    "dated",
    "local_day",
    "peer_bar",
    "share_read_days",
]

PEER_MIN_DAYS: Final = 30
#: ``float("inf")`` once (compiled, the call parses the string each time).
_INF: Final = float("inf")
PEER_CAP: Final = 20000
#: Peers' days above this multiple of the group's 90th percentile (and above the rule's
#: ``min_value``) are outliers, left out of the peers' quantile (see ``peer_bar``).
PEER_FENCE: Final = 3.0


def local_day(ts: float) -> int:
    """Local calendar day number (days since 1970-01-01 in the portal's time zone)."""
    t = int(ts)
    return (t + utc_offset(t)) // 86400


def dated(text: str, day: int, ts: float) -> str:
    """A day's explanation, read at ``ts``: its "today" names the day when ``ts`` is later.

    A day's last reads are settled at the account's next event (a read pending a claim is an
    orphan only once its claim window has passed), often the next morning: "18 beneficiaries
    ... read today" at 08:41 would be wrong, "read on 27 Nov" is right."""
    if day == local_day(ts):
        return text
    date = datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%d %b")
    return text.replace("today's", f"{date}'s").replace(" today", f" on {date}")


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.1f}"


def _quantile(values: Sequence[float], q: float) -> float:
    return _sorted_quantile(sorted(values), q)


def _sorted_quantile(s: Sequence[float], q: float) -> float:
    """The ``q`` quantile (linear interpolation) of ``s``, sorted ascending."""
    if not s:
        return 0.0
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def peer_bar(values: Sequence[float], q: float, floor: float) -> float:
    """The ``q`` quantile of the peers' days, outliers left out.

    A day above ``PEER_FENCE`` times the days' 90th percentile, and above ``floor`` (the
    rule's ``min_value``: a day under it would not be accused on its own), is no peer's usual
    day. Harvesting accounts of a campaign, say 3% of the pharmacies reading 150 strangers a
    day where the 99th percentile is 13, would otherwise make that percentile theirs and blind
    the rule to every other pharmacy. So the bar rises at most to the fence while fewer than
    a tenth of the group's days are outliers (the 90th percentile is then a clean day).
    Attack-free groups keep their quantile: in the peers benchmark's attack-free log (1M
    lines), no group's highest day above ``floor`` passes 2.4 times its 90th percentile, for
    any of the pack's baseline rules (2.33 at most: opticians, 7 strangers against 3).
    """
    s = sorted(values)
    fence = max(PEER_FENCE * _sorted_quantile(s, 0.9), floor)
    return _sorted_quantile(s[: bisect_right(s, fence)], q)


def share_read_days(rules: Sequence[CompiledRule]) -> None:
    """Group baseline rules that see the same reads so they share their per-key day state.

    Rules with the same filter, group-by and peer group share it; claim-pairing ones (of one
    claim window) join the others as a second side when the others' filter never takes claims.
    """
    sides: dict[tuple[Any, ...], list[BaselineRule]] = {}
    for rule in rules:
        if isinstance(rule, BaselineRule):
            s = rule.spec
            window = s.claim_window if rule.pairs_claims else None
            sig = (s.filter, tuple(s.group_by), s.peer_group, rule.pairs_claims, window)
            sides.setdefault(sig, []).append(rule)
    partner: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for sig, members in sides.items():
        plain = members[0].actions
        if sig[3] or plain is None:
            continue
        for other, pairing in sides.items():
            claim = pairing[0].also
            if (
                other[:3] == sig[:3]
                and other[3]
                and other not in partner.values()
                and claim is not None
                and claim not in plain
            ):
                partner[sig] = other
                break
    joined = set(partner.values())
    groups = [
        members + (sides[partner[sig]] if sig in partner else [])
        for sig, members in sides.items()
        if sig not in joined
    ]
    position = {id(r): i for i, r in enumerate(rules)}
    for members in groups:
        members.sort(key=lambda r: position[id(r)])
        tracker = _ReadDays(members[0])
        for rule in members:
            tracker.add(rule)


class BaselineRule(CompiledRule):
    reads_first_seen = True

    __slots__ = (
        "group_of",
        "index",
        "only_new",
        "pairs_claims",
        "peer_cache",
        "peers",
        "qcode",
        "quantity",
        "side",
        "tracker",
    )

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        self.quantity = spec.quantity or "distinct_beneficiaries"
        self.pairs_claims = self.quantity in ("reads_without_claim", "new_without_claim")
        self.only_new = self.quantity == "new_without_claim"
        #: Quantity as a small int for the per-read fast path (3: any other, computed).
        self.qcode = {"distinct_beneficiaries": 0, "new_beneficiaries": 1}.get(self.quantity, 3)
        if self.only_new:
            self.qcode = 2
        if self.pairs_claims:
            self.offer_also("claim.create")
        resolved = resolve_field(spec.peer_group) if spec.peer_group else None
        self.group_of = resolved[1] if resolved else None
        self.peers: dict[str, deque[tuple[int, float]]] = {}
        self.peer_cache: dict[tuple[str, int], float | None] = {}
        self.index = 0
        #: Side of its ``_ReadDays`` (claim-pairing rules and the others may share one).
        self.side = 0
        self.tracker = _ReadDays(self)
        self.tracker.add(self)

    # -- day handling ---------------------------------------------------------------------
    def _value(self, st: _View, h: _Hist) -> float:
        """Today's value, plus the previous days' inside ``span_days`` (a rolling sum)."""
        value = self._day_value(st)
        if h.recent:
            value += h.recent_sum
        return value

    def _day_value(self, st: _View) -> float:
        q = self.quantity
        if q == "distinct_beneficiaries":
            return float(len(st.today))
        if q == "new_beneficiaries":
            return float(st.new)
        if q == "new_without_claim":
            return float(st.orph_new)
        if q == "novelty_share":
            n = len(st.today)
            return st.new / n if n >= self.spec.min_reads else 0.0
        return float(st.orph_all)

    def _orphans(self, st: _View) -> int:
        if not self.pairs_claims:
            return 0
        return st.orph_new if self.only_new else st.orph_all

    def _roll(self, st: _View, h: _Hist, day: int) -> None:
        """Close ``st.day`` for this rule (the caller then resets the shared day state)."""
        if st.today or self._orphans(st):
            h.days += 1
            value = self._value(st, h)
            novelty = self.quantity in ("new_beneficiaries", "novelty_share", "new_without_claim")
            # Novelty: the first day sees everything as new. Spans: a partial span is no usual.
            warm_up = (novelty and h.days == 1) or h.days < self.spec.span_days
            if not warm_up and (
                self.quantity != "novelty_share" or len(st.today) >= self.spec.min_reads
            ):
                h.history.append(value)
                if len(h.history) > self.spec.history_days:
                    del h.history[0]
                if st.group is not None:
                    pool = self.peers.get(st.group)
                    if pool is None:
                        pool = self.peers[st.group] = deque(maxlen=PEER_CAP)
                    pool.append((st.day, value))
        if self.spec.span_days > 1:
            h.recent.append((st.day, self._day_value(st)))
            oldest = day - self.spec.span_days
            h.recent = [(d, v) for d, v in h.recent if d > oldest]
            h.recent_sum = sum(v for _d, v in h.recent)
        h.thr = None

    def _peer(self, group: str | None, day: int) -> float | None:
        if group is None:
            return None
        ck = (group, day)
        # One lookup: -inf is no quantile of finite values, so it stands for "not cached".
        cached = self.peer_cache.get(ck, -_INF)
        if cached is None or cached != -_INF:
            return cached
        pool = self.peers.get(group)
        value: float | None = None
        if pool is not None:
            oldest = day - self.spec.history_days
            vals = [v for d, v in pool if d >= oldest]
            if len(vals) >= PEER_MIN_DAYS:
                value = peer_bar(vals, self.spec.peer_quantile, self.spec.min_value)
        if len(self.peer_cache) > 4096:
            self.peer_cache.clear()
        self.peer_cache[ck] = value
        return value

    def _threshold(self, st: _View, h: _Hist) -> tuple[float, float | None, float | None]:
        if h.thr is None:
            own: float | None = None
            hist = h.history
            if self.spec.span_days > 1:
                # Rolling sums of the last span overlap today's: they would learn the attack.
                hist = hist[: max(0, len(hist) - (self.spec.span_days - 1))]
            if len(hist) >= self.spec.min_history:
                med = median(hist)
                mad = median(abs(x - med) for x in hist)
                own = max(_quantile(hist, 0.95), med + 3 * 1.4826 * mad)
            peer = self._peer(st.group, st.day)
            parts = [self.spec.min_value]
            if own is not None:
                parts.append(self.spec.own_factor * own)
            if peer is not None:
                parts.append(self.spec.peer_factor * peer)
            thr = max(parts) if (own is not None or peer is not None) else _INF
            h.thr = (thr, own, peer)
        return h.thr

    # -- events ---------------------------------------------------------------------------
    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        tracker = self.tracker
        if tracker.seq != ctx.seq:
            tracker.observe(ev, ctx)
        out = tracker.out
        return out[self.index] if out is not None else None

    def _judge(self, key: str, st: _View, h: _Hist, ts: float) -> Fire | None:
        value = self._value(st, h)
        thr, own, peer = h.thr if h.thr is not None else self._threshold(st, h)
        if value <= thr:
            return None
        history = list(h.history)
        today, new, day = len(st.today), st.new, st.day
        return Fire(
            key,
            ts,
            lambda: dated(self._explain(key, today, new, history, value, own, peer), day, ts),
            {
                "value": value,
                "threshold": thr,
                "distinct_today": float(today),
                "new_today": float(new),
            },
            st.today,
            period=day,
        )

    def _explain(
        self,
        key: str,
        n: int,
        new: int,
        history: list[float],
        value: float,
        own: float | None,
        peer: float | None,
    ) -> str:
        q = self.quantity
        if q == "distinct_beneficiaries":
            head = f"{key} read {n:,} distinct beneficiaries today"
        elif q == "new_beneficiaries":
            head = f"{key} read {new:,} beneficiaries it had never read before today"
        elif q == "novelty_share":
            head = f"{key}: {value:.0%} of today's {n:,} beneficiaries never seen before"
        elif q == "new_without_claim":
            head = (
                f"{key}: {int(value):,} beneficiaries never seen before read today "
                "with no claim following"
            )
        else:
            head = f"{key}: {int(value):,} reads today not followed by any claim"
        if self.spec.span_days > 1:
            head = head.replace(" today", f" over the last {self.spec.span_days} days")
        parts = [head]
        pct = round(100 * self.spec.peer_quantile)
        if own is not None:
            usual = (
                "week"
                if self.spec.span_days == 7
                else "day"
                if self.spec.span_days == 1
                else (f"{self.spec.span_days} days")
            )
            parts.append(f"its usual {usual} is {_num(median(history))}")
        if peer is not None:
            parts.append(f"its peers' {pct}th percentile {_num(peer)}")
        if q in ("distinct_beneficiaries", "reads_without_claim") and n:
            parts.append(f"{new / n:.0%} never seen before")
        return "; ".join(parts)

    def evict(self, now: float) -> int:
        return 0

    @property
    def state(self) -> dict[str, _Day]:
        return self.tracker.state

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        return  # the per-key state lives in the shared ``_ReadDays``

    def dump(self) -> dict[str, Any]:
        """Per key: [day, group, today, new, orphans, pending, history, days, recent]."""
        i, side, tracker = self.index, self.side, self.tracker
        state = tracker.state
        keys: dict[str, list[Any]] = {}
        for k in tracker.orders[side] if tracker.orders is not None else state:
            st = state[k]
            v = st if st.views is None else st.views[side]
            if v is None:
                continue
            h = st.hists[i]
            keys[k] = [
                v.day,
                v.group,
                sorted(v.today),
                v.new,
                self._orphans(v),
                [[t, n] for t, n in st.reads()] if self.pairs_claims else [],
                h.history.tolist(),
                h.days,
                [[d, x] for d, x in h.recent],
            ]
        peers = {g: [[d, v] for d, v in pool] for g, pool in self.peers.items()}
        # Peer thresholds are fixed when first needed on a day: a restart must not recompute
        # them from a pool that has grown since (it would move today's bar).
        cache = [[g, d, v] for (g, d), v in self.peer_cache.items()]
        return {"keys": keys, "peers": peers, "peer_cache": cache}

    def load(self, data: dict[str, Any]) -> None:
        """Restore this rule's keys (shared day state: the first member of a side loaded sets
        that side's view; with two sides the views stay apart until the key's next event)."""
        tracker = self.tracker
        side = self.side
        for k, item in data["keys"].items():
            day, group, today, new, orphans, pending, history, days = item[:8]
            st = tracker.state.get(k)
            first = st is None
            if st is None:
                st = tracker.state[k] = _Day(day, group, len(tracker.members))
                if tracker.orders is not None:
                    st.views = [None] * tracker.sides
                    st.day = _SPLIT
            v: _View | None = st if st.views is None else st.views[side]
            if v is None:
                assert st.views is not None and tracker.orders is not None
                v = st.views[side] = _View(day, group, set(), 0)
                tracker.orders[side][k] = None
                first = True
            if first:
                v.today = set(today)
                v.new = new
                if self.pairs_claims:
                    st.set_reads([(t, bool(n)) for t, n in pending])
            if self.pairs_claims:
                if self.only_new:
                    v.orph_new = orphans
                else:
                    v.orph_all = orphans
            h = st.hists[self.index]
            h.recent = [(d, x) for d, x in (item[8] if len(item) > 8 else [])]
            h.recent_sum = sum(x for _d, x in h.recent)
            h.days = days
            h.history = array("f", history)
            h.thr = None
            st.bar_n = _NO_BAR
        self.peers = {
            g: deque(((d, v) for d, v in pool), maxlen=PEER_CAP)
            for g, pool in data["peers"].items()
        }
        self.peer_cache = {(g, d): v for g, d, v in data.get("peer_cache", [])}
