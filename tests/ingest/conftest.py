from __future__ import annotations

import pytest

from rempart.protect.tokens import Tokenizer, TokenKey

NIR_A = "185057800608436"  # valid NIR (key 36)
NIR_B = "2850799351234" + f"{97 - 2850799351234 % 97:02d}"


def line(
    *,
    ip: str = "203.0.113.7",
    user: str = "PH0042",
    time: str = "29/Nov/2026:09:03:22 +0100",
    request: str = f"GET /api/v1/beneficiaires/{NIR_A}/droits HTTP/1.1",
    status: int = 200,
    size: int = 512,
    ua: str = "Mozilla/5.0 (X11; Linux x86_64)",
    rt: str = "0.012",
    sid: str = "s-1",
) -> str:
    return f'{ip} - {user} [{time}] "{request}" {status} {size} "-" "{ua}" "{rt}" "{sid}"'


@pytest.fixture
def tokenizer() -> Tokenizer:
    return Tokenizer(TokenKey("t1", b"k" * 32))


@pytest.fixture(autouse=True)
def _token_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMPART_TOKEN_KEY", "t1:" + (b"k" * 32).hex())
