"""Parsing and normalisation of the reference portal's log lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.ingest import Quarantine, load_profile, read_events
from rempart.ingest.parsers import REASONS, CombinedParser, JsonParser, Reject
from rempart.ingest.pipeline import LineDecoder, make_normalizer
from rempart.protect.tokens import Tokenizer, TokenKey
from tests.ingest.conftest import NIR_A, line


def _events(tmp_path: Path, text: str, tokenizer: Tokenizer, **kw: object):
    p = tmp_path / "access.log"
    p.write_text(text)
    q = Quarantine(tmp_path / "q")
    return list(read_events([p], tokenizer=tokenizer, quarantine=q, **kw)), q


def test_rights_check_becomes_a_disclosure_with_a_token_not_the_nir(tmp_path, tokenizer):
    events, _ = _events(tmp_path, line() + "\n", tokenizer)
    (ev,) = events
    assert ev.action == "beneficiary.read"
    assert ev.outcome == "success"
    assert ev.user_name == "PH0042"
    assert ev.account_kind == "pharmacie"
    assert ev.session_id == "s-1"
    assert ev.beneficiary_token == tokenizer(NIR_A)
    assert NIR_A not in ev.path and ev.path == "/api/v1/beneficiaires/{beneficiary}/droits"
    assert "nir" in ev.categories and ev.discloses
    assert ev.timestamp.isoformat() == "2026-11-29T08:03:22+00:00"
    assert (ev.source, ev.line) == (str(tmp_path / "access.log"), 1)


def test_unknown_beneficiary_is_a_failed_read_that_discloses_nothing(tmp_path, tokenizer):
    events, _ = _events(tmp_path, line(status=404) + "\n", tokenizer)
    assert events[0].outcome == "failure"
    assert events[0].categories == ()
    assert events[0].beneficiary_token is not None  # probing is still countable


@pytest.mark.parametrize(
    ("request_line", "status", "action", "outcome"),
    [
        ("POST /auth/login HTTP/1.1", 200, "auth.login", "success"),
        ("POST /auth/login HTTP/1.1", 401, "auth.login", "failure"),
        ("POST /auth/logout HTTP/1.1", 200, "auth.logout", "success"),
        ("GET /api/v1/actes?page=2 HTTP/1.1", 200, "claim.list", "success"),
        ("POST /api/v1/actes HTTP/1.1", 201, "claim.create", "success"),
        ("GET /api/v1/paiements?du=2026-11-01 HTTP/1.1", 200, "payment.list", "success"),
        ("GET /api/v1/me HTTP/1.1", 200, "page", "success"),
        ("GET /app/ HTTP/1.1", 200, "page", "success"),
        ("GET /static/js/app.js HTTP/2.0", 304, "static", "success"),
        ("DELETE /nothing HTTP/1.1", 405, "other", "failure"),
    ],
)
def test_routes_of_the_tiers_payant_profile(
    tmp_path, tokenizer, request_line, status, action, outcome
):
    events, _ = _events(tmp_path, line(request=request_line, status=status) + "\n", tokenizer)
    assert (events[0].action, events[0].outcome) == (action, outcome)


def test_anonymous_request_has_no_account(tmp_path, tokenizer):
    events, _ = _events(tmp_path, line(user="-", request="GET /app/ HTTP/1.1") + "\n", tokenizer)
    assert events[0].user_name is None and events[0].account_kind is None


def test_plain_combined_without_trailing_fields_is_read(tmp_path, tokenizer):
    text = '198.51.100.1 - MD0001 [29/Nov/2026:10:00:00 +0100] "GET /api/v1/me HTTP/1.1" 200 10 "-" "curl/8"\n'
    events, _ = _events(tmp_path, text, tokenizer)
    assert events[0].user_agent == "curl/8" and events[0].session_id is None


def test_nir_in_an_unknown_route_or_query_is_tokenised(tmp_path, tokenizer):
    text = line(request=f"GET /api/v2/patients/{NIR_A}?nir={NIR_A[:13]} HTTP/1.1") + "\n"
    events, _ = _events(tmp_path, text, tokenizer)
    dumped = json.dumps(events[0].to_ecs())
    assert NIR_A not in dumped and NIR_A[:13] not in dumped


def test_ecs_json_lines_nested_and_dotted(tmp_path, tokenizer):
    nested = {
        "@timestamp": "2026-11-29T09:03:22+01:00",
        "source": {"ip": "203.0.113.7"},
        "user": {"name": "LB0007"},
        "http": {
            "request": {"method": "GET"},
            "response": {"status_code": 200, "body": {"bytes": 3}},
        },
        "url": {"path": f"/api/v1/beneficiaires/{NIR_A}/droits"},
    }
    dotted = {
        "@timestamp": "2026-11-29T08:03:23Z",
        "source.ip": "203.0.113.8",
        "user.name": "LB0007",
        "http.request.method": "POST",
        "url.path": "/auth/login",
        "http.response.status_code": 401,
    }
    events, _ = _events(tmp_path, json.dumps(nested) + "\n" + json.dumps(dotted) + "\n", tokenizer)
    assert [e.action for e in events] == ["beneficiary.read", "auth.login"]
    assert events[0].account_kind == "laboratoire"
    assert events[0].beneficiary_token == tokenizer(NIR_A)
    assert events[1].outcome == "failure"
    assert events[1].ts - events[0].ts == 1.0


def test_custom_json_layout_through_a_field_mapping(tmp_path, tokenizer):
    rec = {
        "t": 1795939402000,
        "who": "PH0001",
        "c": {"ip": "192.0.2.1"},
        "p": "/api/v1/me",
        "s": 200,
    }
    mapping = {
        "@timestamp": "t",
        "user.name": "who",
        "source.ip": "c.ip",
        "url.path": "p",
        "http.response.status_code": "s",
    }
    events, _ = _events(
        tmp_path, json.dumps(rec) + "\n", tokenizer, json_mapping=mapping, time_format="epoch_ms"
    )
    assert events[0].user_name == "PH0001" and events[0].ts == 1795939402.0


def test_custom_profile_from_a_yaml_file(tmp_path, tokenizer):
    prof = tmp_path / "my.yaml"
    prof.write_text(
        "name: my-portal\n"
        "accounts: {kind_pattern: '^(?P<kind>[a-z]+)-', kinds: {doc: medecin}}\n"
        "routes:\n"
        "  - {name: view, method: GET, path: '^/patients/(?P<beneficiary>[0-9]{15})$',\n"
        "     action: beneficiary.read, discloses: [identite, nir]}\n"
    )
    text = line(user="doc-12", request=f"GET /patients/{NIR_A} HTTP/1.1") + "\n"
    events, _ = _events(tmp_path, text, tokenizer, profile=str(prof))
    assert events[0].action == "beneficiary.read" and events[0].account_kind == "medecin"
    assert events[0].categories == ("identite", "nir")


def test_route_matching_exact_first_then_patterns_in_order(tmp_path):
    prof = tmp_path / "routes.yaml"
    prof.write_text(
        "name: order\n"
        "routes:\n"
        "  - {name: first, method: GET, path: /a, action: static}\n"
        "  - {name: second, method: GET, path: /a, action: beneficiary.search}\n"
        "  - {name: posted, method: POST, path: /a, action: claim.create}\n"
        "  - {name: read, method: GET, path: '^/p/(?P<beneficiary>[0-9]+)?/x$',\n"
        "     action: beneficiary.read, discloses: [identite]}\n"
        "  - {name: any-p, method: GET, path: '^/p/', action: static}\n"
        "  - {name: query, method: GET, path: '^/q$', action: beneficiary.read,\n"
        "     beneficiary_param: nir, discloses: [identite]}\n"
    )
    match = load_profile(prof).match
    assert [(r.name, bid) for r, bid in [match("GET", "/a"), match("POST", "/a")]] == [
        ("first", None),  # the first of two exact routes wins
        ("posted", None),
    ]
    assert (match("GET", "/p/123/x")[0].name, match("GET", "/p/123/x")[1]) == ("read", "123")
    assert match("GET", "/p//x")[0].name == "read" and match("GET", "/p//x")[1] is None
    assert match("GET", "/p/abc/x")[0].name == "any-p"  # the next pattern in order
    assert match("GET", "/q")[0].name == "query" and match("GET", "/q")[1] is None
    assert match("DELETE", "/a")[0].name == "other"
    assert match("GET", "/p/123/x")[0].outcome(404) == "failure"


# --- property-based: the fast path and the reference parser agree, and never crash -----------

_PROFILE = load_profile("tiers-payant")
_field = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    ip=st.from_regex(r"[0-9a-f.:]{1,20}", fullmatch=True),
    user=st.one_of(st.just("-"), st.from_regex(r"[A-Z]{2}[0-9]{4}", fullmatch=True)),
    path=st.one_of(
        st.just(f"/api/v1/beneficiaires/{NIR_A}/droits"),
        st.just("/auth/login"),
        st.from_regex(r"/[a-z0-9/?=&%.-]{0,40}", fullmatch=True),
    ),
    method=st.sampled_from(["GET", "POST", "HEAD", "PUT"]),
    status=st.integers(100, 599),
    ua=_field,
    tail=st.one_of(st.just(""), st.just(' "0.1" "s-9"'), st.just(" 0.1 s-9"), _field),
    garbage=_field,
)
def test_fast_path_equals_reference_parser(ip, user, path, method, status, ua, tail, garbage):
    raw = [
        f'{ip} - {user} [29/Nov/2026:09:03:22 +0100] "{method} {path} HTTP/1.1" {status} 1 "-" "{ua}"{tail}',
        garbage,
    ]
    lines = [r.encode() for r in raw]
    tokenizer = Tokenizer(TokenKey("t1", b"k" * 32))
    q1, q2 = Quarantine(None), Quarantine(None)
    fast = LineDecoder(make_normalizer(_PROFILE, tokenizer), q1)
    ref = LineDecoder(make_normalizer(_PROFILE, tokenizer), q2)
    got = fast.decode("s", 1, lines, "combined")
    want = ref._decode_each("s", 1, lines, "combined", complete=True)
    assert got == want
    assert q1.counts == q2.counts
    assert len(got) + q1.total == sum(1 for r in raw if r.strip("\r"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parsers_reject_with_a_known_reason_and_never_crash(text):
    for parser in (CombinedParser(("request_time", "session_id")), JsonParser()):
        try:
            parser.parse(text)
        except Reject as rej:
            assert rej.reason in REASONS


def test_the_id_is_replaced_where_the_route_found_it_not_where_it_first_appears(
    tmp_path, tokenizer
):
    """An id that also appears earlier in the path ("1" in "/v1/") is replaced where the
    pattern matched it: the stored path is the route's template, with no id left in it."""
    prof = tmp_path / "short-ids.yaml"
    prof.write_text(
        "name: short-ids\n"
        "routes:\n"
        "  - {name: view, method: GET, path: '^/v1/p/(?P<beneficiary>[0-9]+)/x1$',\n"
        "     action: beneficiary.read, discloses: [identite]}\n"
    )
    for bid in ("1", "11", "2"):
        lines = [f"GET /v1/p/{bid}/x1 HTTP/1.1"]
        # the columnar decode's batch path and the line-by-line path
        many = make_normalizer(str(prof), tokenizer).request_infos(lines)[0]
        one = make_normalizer(str(prof), tokenizer).request_info("GET", f"/v1/p/{bid}/x1")
        for info in (many, one):
            assert info is not None
            assert (info.route.name, info.path) == ("view", "/v1/p/{beneficiary}/x1")
            assert info.token == tokenizer(bid)
