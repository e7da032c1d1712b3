"""``surprise`` rules: reads with no care relationship, judged by a statistical test.

An insider browses a few strangers' records a day from their own workstation: each read looks
like a new patient's rights check, except that no claim follows. Legitimate traffic has such
reads too (a patient who then pays without tiers payant, a first visit of a patient already on
the books), in a proportion that is steady for an account. So, per account:

- a *novel read* is a disclosure of a beneficiary the account had never read before;
- an *orphan* is a novel read that no claim (``claim.create``) of the same session followed
  within ``claim_window`` (a claim pairs with the latest pending read of its session, falling
  back to the account when events carry no session);
- the account's orphan share ``p`` is learned from its own days before the tested span, shrunk
  toward the share of the other accounts of its peer group over ``history_days`` (empirical
  Bayes: a Beta prior worth ``prior_weight`` novel reads at the peers' share), so a new or
  small account is judged mostly by its peers; past days that are themselves improbable
  (``P < ODD_DAY_P`` against the account's other days) are left out of that share, so a slow
  insider's first days do not raise the bar for the next ones;
- over each span of ``spans`` days ending on the orphan's day (e.g. 1, 3 and 7 days), with ``n``
  novel reads and ``x`` orphans in the span, the rule fires when ``x >= min_value`` and
  ``P(X >= x) < alpha / len(spans)`` for ``X ~ BetaBinomial(n, a, b)``, the posterior
  predictive count of orphans (Bonferroni correction across spans). The Beta-binomial accounts
  for the uncertainty of ``p`` itself: a short history gives a wide predictive and no alert.

Conditioning on novel reads (not on days) makes the test indifferent to volume: a busy Monday,
the first days of a deployment (everything is novel) and a holiday are all the same share.

State per account: pending reads of the last ``claim_window``, per-day counters (novel reads,
orphans) for ``history_days`` days and the orphans' beneficiary hashes for the longest span
(capped); per peer group: per-day totals. Days covered by an alert are *explained*: later tests
leave them out of both the span and the history, so one episode raises one alert (not another
each time the 7-day span still holds it) and is never learned as the account's usual. Everything
is dumped for checkpoints; accounts idle for longer than ``history_days`` are evicted.
"""

from __future__ import annotations

from typing import Any, Final

from rempart.detect.care_state import DayCounts, Episode, Orphans, beta_binomial_tail
from rempart.detect.expr import local_day_span, resolve_field
from rempart.detect.spec import RuleSpec
from rempart.detect.windows import CompiledRule, EventContext, Fire
from rempart.events import Event

#: Peer pools need this many novel reads before their share is used as a prior.
PEER_MIN_READS: Final = 30
#: A past day this improbable against the account's other days is not learned as usual.
ODD_DAY_P: Final = 0.01
#: Orphan hashes kept per account at most (those of the longest span; evidence of an alert).
ORPHAN_CAP: Final = 2000
_NONE: frozenset[int] = frozenset()
_NO_ROW: list[int] = []  # ``_Account.prow`` while ``today`` is None: never written
_INF: Final = float("inf")


class _Read:
    """A read awaiting a claim. A native object rather than a tuple: compiled code reads one
    field of it, where a typed tuple taken from the list has every item's type checked and its
    time unboxed, which touches the time's float object too (an hour old, out of cache)."""

    __slots__ = ("bh", "day", "novel", "session", "ts")

    def __init__(self, ts: float, novel: bool, session: str, bh: Any, day: Any) -> None:
        self.ts = ts
        self.novel = novel
        self.session = session
        #: The two ints are typed ``Any`` so that compiled code stores the objects it is given
        #: (the engine's hash, the rule's day) instead of boxing new ones.
        self.bh = bh
        self.day = day


class _Account:
    __slots__ = (
        "days",
        "episode",
        "explained",
        "group",
        "last",
        "late",
        "odd",
        "oldest",
        "orphans",
        "pending",
        "prow",
        "ring",
        "tn",
        "today",
    )

    def __init__(self, group: str | None, history_days: int):
        self.group = group
        #: Reads awaiting a claim: ``pending``, oldest first, then ``late``, the latest one
        #: (None: none, or it is in ``pending``). A claim most often pairs with the latest
        #: read, and most reads are claimed before the next one: that read and claim then
        #: touch neither the list nor its items (see :meth:`reads`).
        self.pending: list[_Read] = []
        self.late: _Read | None = None
        #: The time of the oldest read awaiting a claim (inf when none): the per-event expiry
        #: check reads this field, not the oldest read's object, an hour old and out of cache.
        self.oldest = _INF
        #: day -> [novel reads, orphans]
        self.days = DayCounts(history_days + 1)
        #: (day, time, beneficiary hash) of recent orphans (longest span, capped).
        self.orphans = Orphans()
        #: Days already covered by an alert: neither evidence again later nor learned as usual.
        self.explained: set[int] | frozenset[int] = _NONE
        #: (day, days before it left out of the history as odd), computed once a day.
        self.odd: tuple[int, frozenset[int]] = (-1, frozenset())
        #: The alert being fed today, once the test fired: later orphans of the same day extend
        #: it without a new test (the day is accused already).
        self.episode: Episode | None = None
        self.last = 0.0
        #: A cache for counting novel reads (never dumped): while ``today`` is the newest day
        #: of ``days``, not explained, with a peer group, a novel read of that day is counted
        #: at ``days.n[ring]`` and in ``prow``, the peers' row of the day.
        self.today: int | None = None
        self.ring = 0
        self.prow = _NO_ROW
        #: ``days.n`` itself (the list never changes): the count needs no read of ``days``.
        self.tn = self.days.n

    def reads(self) -> list[_Read]:
        """Every read awaiting a claim, oldest first."""
        late = self.late
        return list(self.pending) if late is None else [*self.pending, late]


class SurpriseRule(CompiledRule):
    """Runtime of ``type: surprise`` (see the module docstring)."""

    reads_first_seen = True

    __slots__ = (
        "alpha",
        "claim_window",
        "day",
        "day_box",
        "day_from",
        "day_to",
        "group_of",
        "history_days",
        "novel_words",
        "peers",
        "span_max",
    )

    def __init__(self, spec: RuleSpec):
        super().__init__(spec)
        self.offer_also("claim.create")  # claims pair with pending reads
        resolved = resolve_field(spec.peer_group) if spec.peer_group else None
        self.group_of = resolved[1] if resolved else None
        #: group -> day -> [novel reads, orphans]
        self.peers: dict[str, dict[int, list[int]]] = {}
        self.span_max = max(spec.spans)
        self.claim_window = spec.claim_window
        self.history_days = spec.history_days
        #: The false-alarm probability per test (see :meth:`use_care_history`).
        self.alpha = spec.alpha
        #: What a novel read is, in the alert's words.
        self.novel_words = "never read before"
        #: Local day of the timestamps in [day_from, day_to): one hour at most, the same UTC
        #: offset throughout (see ``_local_day``); empty until the first read.
        self.day = 0
        #: ``day`` as an int object, made once per span: each pending read holds this one.
        self.day_box: Any = 0
        self.day_from = 0.0
        self.day_to = 0.0

    def use_care_history(self) -> None:
        """The deployment loaded care relationships into the first-seen history: a novel read
        is then of a beneficiary with no claim on record, so the rule tests at ``care_alpha``."""
        if self.spec.care_alpha is not None:
            self.alpha = self.spec.care_alpha
        self.novel_words = "with no claim on record nor read before"

    def _local_day(self, ts: float) -> int:
        """``local_day(ts)``, and the span of timestamps sharing it within the hour."""
        day, self.day_from, self.day_to = local_day_span(ts)
        self.day = day
        self.day_box = day
        return day

    # -- events ---------------------------------------------------------------------------
    def observe(self, ev: Event, ctx: EventContext) -> Fire | None:
        key = self.key(ev)
        if key is None:
            return None
        st: _Account | None = self.state.get(key)
        if st is None:
            group = self.group_of(ev) if self.group_of is not None else None
            st = self.state[key] = _Account(
                None if group is None else str(group), self.history_days
            )
        ts = ev.ts
        st.last = ts
        pending = st.pending
        if ev.action == "claim.create":
            if st.oldest == _INF:
                return None  # nothing awaits a claim: nothing to expire nor to pair
            fire = self._expire(key, st, ts) if st.oldest < ts - self.claim_window else None
            # A claim follows its rights check: it pairs with the latest read of its session.
            session = ev.session_id or ""
            late = st.late
            if late is not None and late.session == session:
                st.late = None
                if not pending:
                    st.oldest = _INF
                return fire
            for i in range(len(pending) - 1, -1, -1):
                if pending[i].session == session:
                    del pending[i]
                    if i == 0:
                        st.oldest = pending[0].ts if pending else _INF if late is None else late.ts
                    break
            return fire
        fire = self._expire(key, st, ts) if st.oldest < ts - self.claim_window else None
        bh: Any = ctx.bh  # the engine's int object: stored as it is, not a new one
        if bh is None or not ev.categories:
            return fire
        day = self.day if self.day_from <= ts < self.day_to else self._local_day(ts)
        ctx.day = day  # the memo later rules share
        ctx.day_ts = ts
        novel = ctx.novel
        if novel:
            today = st.today  # (an ``int | None`` compared as is is a generic comparison)
            if today is not None and day == today:  # _count(st, day, 0), inlined
                # ``a[i] = a[i] + 1``: mypyc compiles ``a[i] += 1`` on a list to a generic call.
                counts = st.tn
                counts[st.ring] = counts[st.ring] + 1
                prow = st.prow
                prow[0] = prow[0] + 1
            else:
                self._count_novel(st, day)
        late = st.late
        if late is not None:
            pending.append(late)
        elif not pending:
            st.oldest = ts
        st.late = _Read(ts, novel, ev.session_id or "", bh, self.day_box)
        return fire

    def _count(self, st: _Account, day: int, index: int) -> None:
        days = st.days
        if day > days.last:
            st.today = None  # a new newest day: the cache must be set up again
            if st.explained:
                oldest = day - self.history_days
                st.explained = {d for d in st.explained if d >= oldest} or _NONE
        days.add(day, index)
        if st.group is not None and day not in st.explained:
            self._count_peers(st.group, day, index)

    def _count_novel(self, st: _Account, day: int) -> None:
        """Count a novel read, and set up ``st.today`` when the day allows it."""
        self._count(st, day, 0)
        days = st.days
        if day == days.last and st.group is not None and day not in st.explained:
            st.today = day
            st.ring = day % len(days.n)
            st.prow = self.peers[st.group][day]

    def _count_peers(self, group: str, day: int, index: int) -> None:
        pool = self.peers.get(group)
        if pool is None:
            pool = self.peers[group] = {}
        prow = pool.get(day)
        if prow is None:
            prow = pool[day] = [0, 0]
            oldest = day - self.history_days
            gone = [d for d in pool if d < oldest]
            if gone:
                for d in gone:
                    del pool[d]
                for st in self.state.values():  # no cached row may outlive its pool entry
                    if st.today is not None and st.today < oldest:
                        st.today = None
        prow[index] = prow[index] + 1

    def _expire(self, key: str, st: _Account, now: float) -> Fire | None:
        pending = st.pending
        late = st.late
        if late is not None:  # (in order: the latest read goes last)
            pending.append(late)
            st.late = None
        limit = now - self.claim_window
        fire: Fire | None = None
        expired = 0
        while expired < len(pending):
            read = pending[expired]
            if read.ts >= limit:
                break
            expired += 1
            if not read.novel:
                continue
            day: int = read.day
            bh: Any = read.bh
            self._count(st, day, 1)
            st.orphans.append(day, read.ts, bh)
            ep = st.episode
            if ep is not None and ep.day == day:
                ep.exposed.add(bh)
                f: Fire | None = self._episode_fire(key, st, ep)
            else:
                f = self._judge(key, st, day)
            if f is not None:
                fire = f
        if expired:
            del pending[:expired]
            st.oldest = pending[0].ts if pending else _INF
            orphans = st.orphans
            if orphans:
                # Only the longest span's orphans can be evidence of a new alert.
                orphans.trim(orphans.days[-1] - self.span_max, ORPHAN_CAP)
        return fire

    # -- the test -------------------------------------------------------------------------
    def _peer_share(self, st: _Account, day: int) -> float | None:
        """The peers' orphan share over the history, the account's own counts left out (an
        insider's days must not raise the bar it is judged against)."""
        if st.group is None:
            return None
        pool = self.peers.get(st.group)
        if not pool:
            return None
        oldest = day - self.history_days
        n = x = 0
        for d, (dn, dx) in pool.items():
            if d >= oldest:
                n += dn
                x += dx
        explained = st.explained
        for d, dn, dx in st.days.rows():
            if d >= oldest and d not in explained:
                n -= dn
                x -= dx
        return x / n if n >= PEER_MIN_READS else None

    def _prior(self, peer: float | None) -> tuple[float, float]:
        """Beta pseudo-counts (orphans, claimed) of the peer prior, plus Jeffreys' half."""
        if peer is None:
            return 0.5, 0.5
        w = self.spec.prior_weight
        return w * peer + 0.5, w * (1.0 - peer) + 0.5

    def _odd_days(self, st: _Account, day: int, peer: float | None) -> frozenset[int]:
        """Past days whose orphan count is itself improbable (``P < ODD_DAY_P``) against the
        account's other days: they are left out of its usual share, so the first days of a
        slow insider do not raise the bar for the next ones. Computed once per day."""
        if st.odd[0] == day:
            return st.odd[1]
        oldest = day - self.history_days
        explained = st.explained
        hist = [
            (d, n, x)
            for d, n, x in st.days.rows()
            if oldest <= d < day and d not in explained and n > 0
        ]
        total_n = sum(n for _, n, _ in hist)
        total_x = sum(x for _, _, x in hist)
        pa, pb = self._prior(peer)
        odd = set()
        for d, n, x in hist:
            a = total_x - x + pa
            b = (total_n - n) - (total_x - x) + pb
            if x > n * a / (a + b) and beta_binomial_tail(x, n, a, b, ODD_DAY_P) < ODD_DAY_P:
                odd.add(d)
        st.odd = (day, frozenset(odd))
        return st.odd[1]

    def _judge(self, key: str, st: _Account, day: int) -> Fire | None:
        spec = self.spec
        odd_day, odd = st.odd
        if odd_day == day:
            peer_known = False  # computed below only if a span passes the cheap tests
            peer = None
        else:
            peer_known = True
            peer = self._peer_share(st, day)
            odd = self._odd_days(st, day, peer)
        oldest = day - self.history_days
        explained = st.explained
        min_value, min_reads = spec.min_value, spec.min_reads
        # The days held (``DayCounts.rows``, read in place: no tuple or int object per day),
        # leaving out explained days other than ``day``.
        days = st.days
        ring_n, ring_x = days.n, days.x
        size = len(ring_n)
        start = days.first_held()
        end = days.last + 1
        # The spans that reach ``min_value`` orphans over ``min_reads`` reads of history (most
        # do not: then neither the peers' share nor the test is needed).
        tested = []
        for span in spec.spans:
            first = day - span + 1
            nw = xw = nh = xh = 0
            for d in range(start, end):
                i = d % size
                dn = ring_n[i]
                dx = ring_x[i]
                if (dn == 0 and dx == 0) or (explained and d != day and d in explained):
                    continue
                if first <= d <= day:
                    nw += dn
                    xw += dx
                elif oldest <= d < first and not (odd and d in odd):
                    nh += dn
                    xh += dx
            if xw >= min_value and nh >= min_reads:
                tested.append((span, nw, xw, nh, xh))
        if not tested:
            return None
        if not peer_known:
            peer = self._peer_share(st, day)
        pa, pb = self._prior(peer)
        per_test = self.alpha / len(spec.spans)
        for span, nw, xw, nh, xh in tested:
            a = xh + pa
            b = (nh - xh) + pb
            nw = max(nw, xw)
            mean = nw * a / (a + b)
            if xw <= mean:
                continue  # not above expectation: nothing to test
            # Normal approximation first: below 3 sd the exact tail is far above any usable
            # alpha (the right tail of these skewed counts is heavier than the normal one).
            var = mean * b / (a + b) * (a + b + nw) / (a + b + 1)
            if (xw - mean) ** 2 < 9.0 * var:
                continue
            p = beta_binomial_tail(xw, nw, a, b, per_test)
            if p < per_test:
                return self._fire(key, st, day, span, xw, nw, a / (a + b), peer, p)
        return None

    def _fire(
        self,
        key: str,
        st: _Account,
        day: int,
        span: int,
        x: int,
        n: int,
        share: float,
        peer: float | None,
        p: float,
    ) -> Fire:
        first = day - span + 1
        pool = self.peers.get(st.group) if st.group is not None else None
        st.today = None  # days become explained: the cache must be set up again
        for d in range(first, day + 1):
            if d in st.explained:
                continue
            if not isinstance(st.explained, set):
                st.explained = set()
            st.explained.add(d)
            row, prow = st.days.get(d), pool.get(d) if pool is not None else None
            if row is not None and prow is not None:  # an explained day is no peer usual
                prow[0] -= row[0]
                prow[1] -= row[1]
        recent = [(t, bh) for d, t, bh in st.orphans if first <= d <= day]
        first_seen = min((t for t, _ in recent), default=st.last)
        ep = st.episode = Episode(day, span, first_seen, {bh for _, bh in recent}, share, peer, p)
        return self._episode_fire(key, st, ep)

    def _episode_fire(self, key: str, st: _Account, ep: Episode) -> Fire:
        x = n = 0
        for d in range(ep.day - ep.span + 1, ep.day + 1):
            row = st.days.get(d)
            if row is not None:
                n += row[0]
                x += row[1]
        n = max(n, x)
        share, peer, p, span = ep.share, ep.peer, ep.p, ep.span
        when = "today" if span == 1 else f"over the last {span} days"
        novel = self.novel_words

        def text() -> str:
            parts = [
                f"{key}: {x:,} of {n:,} beneficiaries {novel} {when} had no claim "
                f"following (expected {n * share:.1f}: its usual share {share:.1%}"
            ]
            if peer is not None:
                parts.append(f", its peers' {peer:.1%}")
            parts.append(f"); probability by chance {p:.1e} when it was first tested")
            return "".join(parts)

        return Fire(
            key,
            ep.first_seen,
            text,
            {
                "value": float(x),
                "novel_reads": float(n),
                "expected": round(n * share, 2),
                "p_value": p,
                "span_days": float(span),
            },
            ep.exposed,
        )

    # -- state ----------------------------------------------------------------------------
    def evict(self, now: float) -> int:
        idle = self.spec.history_days * 86400.0
        gone: list[str] = []
        for k, value in self.state.items():
            st: _Account = value  # typed: compiled attribute reads (``state`` holds Any)
            if now - st.last > idle and st.oldest == _INF:
                gone.append(k)
        for k in gone:
            del self.state[k]
        return len(gone)

    def dump(self) -> dict[str, Any]:
        keys = {
            k: [
                st.group,
                st.last,
                [[p.ts, p.novel, p.session, p.bh, p.day] for p in st.reads()],
                [list(r) for r in st.days.rows()],
                [list(o) for o in st.orphans],
                sorted(st.explained),
                [st.odd[0], sorted(st.odd[1])],
                None if st.episode is None else st.episode.dump(),
            ]
            for k, st in self.state.items()
        }
        peers = {g: [[d, n, x] for d, (n, x) in pool.items()] for g, pool in self.peers.items()}
        return {"keys": keys, "peers": peers}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {}
        for k, item in data.get("keys", {}).items():
            group, last, pending, days, orphans = item[:5]
            st = _Account(group, self.spec.history_days)
            st.explained = {int(d) for d in (item[5] if len(item) > 5 else ())} or _NONE
            if len(item) > 6:
                st.odd = (int(item[6][0]), frozenset(int(d) for d in item[6][1]))
            if len(item) > 7 and item[7] is not None:
                st.episode = Episode.load(item[7])
            st.last = float(last)
            st.pending = [
                _Read(float(t), bool(nv), str(s), int(h), int(d)) for t, nv, s, h, d in pending
            ]
            st.oldest = st.pending[0].ts if st.pending else _INF
            for d, n, x in sorted(days):
                st.days.put(int(d), int(n), int(x))
            for d, t, h in orphans:
                st.orphans.append(int(d), float(t), int(h))
            self.state[k] = st
        self.peers = {
            g: {int(d): [int(n), int(x)] for d, n, x in pool}
            for g, pool in data.get("peers", {}).items()
        }
