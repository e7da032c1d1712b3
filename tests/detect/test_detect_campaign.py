"""Roll-ups of signals. Campaign correlation: k accounts raising signals under one key fire only
when that many is improbable given the key's share of the other accounts' logins (a binomial
tail). Risk: ``min_signals`` different rules must contribute."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from rempart.detect.engine import Engine
from rempart.detect.loader import load_pack
from rempart.detect.rollup import CampaignCorrelator, RiskRollup, binomial_tail
from rempart.events import Event

T0 = 1_700_000_000.0


@given(st.integers(0, 40), st.integers(0, 40), st.floats(0, 1))
def test_binomial_tail_is_the_sum_of_the_exact_terms(k: int, n: int, p: float) -> None:
    exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(max(k, 0), n + 1))
    assert math.isclose(binomial_tail(k, n, p), min(1.0, exact), rel_tol=1e-9, abs_tol=1e-12)


#: TP-SLOW-002: by client string, 5 accounts within a day, alpha 1e-3.
SPEC = next(s for s in load_pack("tiers-payant") if s.id == "TP-SLOW-002")


def login(user: str, ua: str, ts: float) -> Event:
    return Event(ts, "10.0.0.1", "auth.login", "success", user_name=user, user_agent=ua)


def signals(corr: CampaignCorrelator, ua: str, n: int, ts: float) -> list[bool]:
    """``n`` accounts raising a signal with ``ua``; whether each fired the campaign."""
    fired = []
    for i in range(n):
        ev = Event(ts + i, "10.0.0.2", "beneficiary.read", "success", user_name=f"S{i}",
                   user_agent=ua)  # fmt: skip
        fired.append(corr.add(f"S{i}", ev) is not None)
    return fired


def test_accounts_sharing_the_common_browser_are_no_campaign_but_a_rare_client_is() -> None:
    for ua, quiet_share, expected in (("common", 30, False), ("rare", 0, True)):
        corr = CampaignCorrelator(SPEC)
        for i in range(40):
            corr.login(login(f"Q{i}", "common" if i < 30 else "other", T0 + i))
        fired = signals(corr, ua, 6, T0 + 3600)
        assert any(fired) is expected, (ua, quiet_share)
        if expected:  # the fifth account fires: chance 0 with no quiet account on that client
            assert fired.index(True) == 4


def test_the_base_rate_counts_logins_of_the_window_only_and_without_signals() -> None:
    corr = CampaignCorrelator(SPEC)
    for i in range(30):  # a day and more before: out of the window
        corr.login(login(f"Q{i}", "common", T0 + i))
    for i in range(10):
        corr.login(login(f"R{i}", "other", T0 + 2 * 86400 + i))
    # The signalling accounts logged in with "common" too: they do not make it usual.
    for i in range(6):
        corr.login(login(f"S{i}", "common", T0 + 2 * 86400 + 100 + i))
    assert any(signals(corr, "common", 6, T0 + 2 * 86400 + 3600))


def test_without_logins_the_count_alone_decides() -> None:
    fired = signals(CampaignCorrelator(SPEC), "common", 6, T0)
    assert fired == [False] * 4 + [True] * 2


def test_state_survives_a_dump_and_load_and_an_old_checkpoint_loads() -> None:
    corr = CampaignCorrelator(SPEC)
    for i in range(40):
        corr.login(login(f"Q{i}", "common", T0 + i))
    signals(corr, "common", 4, T0 + 3600)  # four: below min_accounts, no test yet
    again = CampaignCorrelator(SPEC)
    again.load(corr.dump())
    assert again.dump() == corr.dump()  # members, accounts with signals and logins
    # With the 40 quiet "common" logins restored, the fifth and sixth are still no campaign.
    assert not any(signals(again, "common", 6, T0 + 3600))
    fresh = CampaignCorrelator(SPEC)
    fresh.load({"common": {"S0": T0, "S1": T0, "S2": T0, "S3": T0}})  # before base rates
    assert fresh.members["common"] == {"S0": T0, "S1": T0, "S2": T0, "S3": T0}
    assert fresh.logins.times == {}


def test_logins_before_the_window_do_not_dilute_the_base_rate() -> None:
    corr = CampaignCorrelator(SPEC)
    for i in range(1000):  # two days before, on another client
        corr.login(login(f"OLD{i}", "other", T0 + i))
    for i in range(10):  # today, every other account on the common browser
        corr.login(login(f"Q{i}", "common", T0 + 2 * 86400 + i))
    assert not any(signals(corr, "common", 6, T0 + 2 * 86400 + 3600))


def test_the_base_rate_is_the_share_among_accounts_without_signals() -> None:
    corr = CampaignCorrelator(SPEC)
    for i in range(4):  # every quiet account of the day uses the common browser
        corr.login(login(f"Q{i}", "common", T0 + i))
    for i in range(8):  # the accounts that will raise signals logged in elsewhere
        corr.login(login(f"S{i}", "elsewhere", T0 + 10 + i))
    assert not any(signals(corr, "common", 8, T0 + 3600))


def test_logins_are_kept_for_the_base_rates_even_with_no_login_rule() -> None:
    pack = {s.id: s for s in load_pack("tiers-payant")}
    engine = Engine([pack["TP-SLOW-001"], pack["TP-SLOW-002"]])
    keep = engine.relevant_actions()
    assert keep is not None and "auth.login" in keep


def test_a_risk_roll_up_with_min_signals_needs_that_many_different_rules() -> None:
    risk = next(s for s in load_pack("tiers-payant") if s.id == "TP-RISK-001")
    assert risk.min_signals == 2 and risk.threshold == 70
    roll = RiskRollup(risk)
    # One signal twice within an hour: 100 points, one rule: no alert.
    assert roll.add("PH1", "Strangers", 50, T0) is None
    assert roll.add("PH1", "Strangers", 50, T0 + 3600) is None
    # A second, different signal: two rules, the threshold passed.
    fire = roll.add("PH1", "New network", 25, T0 + 7200)
    assert fire is not None and fire.metrics["signals"] == 2
