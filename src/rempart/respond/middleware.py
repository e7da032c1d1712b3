"""ASGI middleware: apply Rempart's decisions inside a Python portal (no nginx needed).

    from rempart.respond.middleware import RempartMiddleware
    app.add_middleware(RempartMiddleware, enforcer=service.enforcer)       # same process
    app.add_middleware(RempartMiddleware, checker=RemoteChecker(url, token))  # another process

It identifies the request like the nginx configuration does (Basic auth user name, client IP,
session cookie, method) and answers 403 / 401 / 429 itself, with the same ``X-Rempart-*``
headers, before the portal sees the request. ``fail_open`` decides what happens when a remote
Rempart cannot be reached.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import httpx

from rempart.respond.decisions import CheckRequest
from rempart.respond.enforce import Enforcer

Scope_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope_, Receive, Send], Awaitable[None]]


class Checker(Protocol):
    async def __call__(
        self, req: CheckRequest, method: str, purpose: str | None = None
    ) -> tuple[int, dict[str, str]]: ...


class RemoteChecker:
    """Asks a Rempart server's ``/v1/decisions/check`` (scope ``enforce`` token)."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 0.5, cache_seconds: float = 1
    ):
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {token}"}
        self._cache: dict[tuple[Any, ...], tuple[float, int, dict[str, str]]] = {}
        self._ttl = cache_seconds

    async def __call__(
        self, req: CheckRequest, method: str, purpose: str | None = None
    ) -> tuple[int, dict[str, str]]:
        key = (req.account, req.ip, req.session, req.organization, method, purpose)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        params = {
            k: v
            for k, v in (
                ("account", req.account),
                ("ip", req.ip),
                ("session", req.session),
                ("method", method),
                ("purpose", purpose),
            )
            if v
        }
        resp = await self._client.get("/v1/decisions/check", params=params, headers=self._headers)
        if resp.status_code not in (204, 401, 403, 429):
            raise httpx.HTTPStatusError("unexpected answer", request=resp.request, response=resp)
        headers = {k: v for k, v in resp.headers.items() if k.lower().startswith("x-rempart")}
        if "retry-after" in resp.headers:
            headers["Retry-After"] = resp.headers["retry-after"]
        if resp.headers.get("x-accel-expires", "0") != "0" and self._ttl > 0:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, resp.status_code, headers)
        return resp.status_code, headers


def _basic_user(header: bytes | None) -> str | None:
    if not header or header[:6].lower() != b"basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, _ = decoded.partition(":")
    return user or None if sep else None


def _cookie(header: bytes | None, name: str) -> str | None:
    if not header:
        return None
    for part in header.decode("latin-1").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name and v:
            return v
    return None


_BODIES = {
    401: b"strong authentication required\n",
    403: b"access refused\n",
    429: b"too many requests\n",
}


class RempartMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        enforcer: Enforcer | None = None,
        checker: Checker | None = None,
        session_cookie: str = "sid",
        fail_open: bool = True,
        trust_forwarded_for: bool = False,
        mfa_paths: tuple[str, ...] = ("/auth/mfa",),
    ):
        if (enforcer is None) == (checker is None):
            raise ValueError("give exactly one of enforcer= or checker=")
        self.app = app
        self.enforcer = enforcer
        self.checker = checker
        self.session_cookie = session_cookie
        self.fail_open = fail_open
        self.trust_forwarded_for = trust_forwarded_for
        self.mfa_paths = frozenset(mfa_paths)

    def _identify(self, scope: Scope_) -> CheckRequest:
        headers = dict(scope.get("headers") or [])
        ip = (scope.get("client") or (None, None))[0]
        if self.trust_forwarded_for and headers.get(b"x-forwarded-for"):
            ip = headers[b"x-forwarded-for"].decode("latin-1").split(",")[0].strip()
        return CheckRequest(
            account=_basic_user(headers.get(b"authorization")),
            ip=ip,
            session=_cookie(headers.get(b"cookie"), self.session_cookie),
        )

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        req = self._identify(scope)
        method = scope.get("method", "GET")
        purpose = "mfa" if scope.get("path") in self.mfa_paths else None
        try:
            if self.enforcer is not None:
                verdict = self.enforcer.check(req, method, purpose)
                status, headers = verdict.status, verdict.headers()
            else:
                assert self.checker is not None
                status, headers = await self.checker(req, method, purpose)
        except (httpx.HTTPError, OSError):
            if self.fail_open:
                await self.app(scope, receive, send)
                return
            status, headers = 503, {"X-Rempart-Decision": "unavailable"}
        if status == 204:
            await self.app(scope, receive, send)
            return
        body = _BODIES.get(status, b"service unavailable\n")
        raw_headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if status == 401:
            raw_headers.append((b"www-authenticate", b'Rempart-StepUp realm="rempart"'))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})
