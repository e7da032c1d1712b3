"""The reference portal: the ``tiers-payant`` profile's routes, HTTP Basic on every API call.

Passwords are kept as argon2 hashes; a successful verification is remembered (keyed by a
SHA-256 of the credentials, in memory only) so that a practitioner's hundreds of calls do not
each pay argon2's deliberate cost.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from datetime import date
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from rempart.sim.population import Population

_NIR_RE = re.compile(r"^[0-9][0-9AB][0-9]{11}[0-9]{2}$")
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


class _Accounts:
    def __init__(self, passwords: dict[str, str]):
        self._hashes = {user: _HASHER.hash(pw) for user, pw in passwords.items()}
        self._verified: set[str] = set()

    def check(self, user: str, password: str) -> bool:
        key = hashlib.sha256(f"{user}\x00{password}".encode()).hexdigest()
        if key in self._verified:
            return True
        stored = self._hashes.get(user)
        if stored is None:
            return False
        try:
            _HASHER.verify(stored, password)
        except VerificationError:
            return False
        self._verified.add(key)
        return True


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, sep, pw = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, pw) if sep else None


def create_portal(
    population: Population,
    passwords: dict[str, str],
    mfa_codes: dict[str, str] | None = None,
) -> FastAPI:
    """``mfa_codes``: the one code each account's second factor accepts (a stand-in for TOTP)."""
    accounts = _Accounts(passwords)
    codes = dict(mfa_codes or {})
    app = FastAPI(title="Portail tiers payant (référence Rempart)", docs_url=None, redoc_url=None)

    def practitioner(request: Request) -> str:
        creds = _basic(request)
        if creds is None or not accounts.check(*creds):
            raise HTTPException(
                401,
                "identifiants invalides",
                headers={"WWW-Authenticate": 'Basic realm="tiers-payant"'},
            )
        return creds[0]

    @app.post("/auth/login")
    def login(request: Request, response: Response) -> dict[str, str]:
        user = practitioner(request)
        sid = secrets.token_hex(12)
        response.set_cookie("sid", sid, httponly=True, samesite="strict")
        return {"compte": user, "session": "ouverte"}

    @app.post("/auth/mfa")
    async def mfa(request: Request) -> dict[str, str]:
        user = practitioner(request)
        try:
            body = await request.json()
        except ValueError:
            body = {}
        code = body.get("code") if isinstance(body, dict) else None
        expected = codes.get(user)
        if (
            expected is None
            or not isinstance(code, str)
            or not secrets.compare_digest(code, expected)
        ):
            raise HTTPException(401, "code invalide")
        return {"compte": user, "authentification": "forte"}

    @app.post("/auth/logout")
    def logout(request: Request) -> dict[str, str]:
        practitioner(request)
        return {"session": "fermee"}

    @app.get("/api/v1/me")
    def me(request: Request) -> dict[str, str]:
        return {"compte": practitioner(request)}

    @app.get("/api/v1/beneficiaires/{nir}/droits")
    def droits(nir: str, request: Request) -> dict[str, Any]:
        practitioner(request)
        if not _NIR_RE.match(nir):
            raise HTTPException(404, "beneficiaire inconnu")
        person = population.get(nir)
        if person is None:
            raise HTTPException(404, "beneficiaire inconnu")
        return person.to_dict()

    @app.get("/api/v1/actes")
    def actes(request: Request) -> dict[str, Any]:
        practitioner(request)
        return {"actes": [], "date": date.today().isoformat()}

    @app.post("/api/v1/actes", status_code=201)
    def nouvel_acte(request: Request) -> dict[str, str]:
        practitioner(request)
        return {"acte": secrets.token_hex(6), "statut": "transmis"}

    @app.get("/api/v1/paiements")
    def paiements(request: Request) -> dict[str, Any]:
        practitioner(request)
        return {"paiements": []}

    @app.get("/app/{rest:path}", response_class=HTMLResponse)
    def spa(rest: str = "") -> str:
        return "<!doctype html><title>Portail tiers payant</title><main id=app></main>"

    @app.get("/static/{name:path}", response_class=PlainTextResponse)
    def static(name: str) -> str:
        return "/* static */"

    return app
