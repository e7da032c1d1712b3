"""The HTTP API of ``rempart serve`` (FastAPI): a thin shell over :class:`ResponseService`.

- ``POST /v1/events``: NDJSON (ECS) or access-log lines, bearer token with scope ``ingest``;
  413 beyond ``max_body_bytes``; 429 + ``Retry-After`` when the engine's queue is full (the
  whole request is then refused, so a retry neither loses nor duplicates anything).
- ``GET /v1/decisions/check``: 204 allow, 403 block, 401 step-up, 429 throttle, with
  ``X-Rempart-Decision`` and ``X-Rempart-Decision-Id``; answered from memory.
- ``GET/POST/DELETE /v1/decisions``, approve / reject of pending decisions, ``GET /v1/alerts``,
  ``GET /v1/audit``: scope ``admin``.
- ``/metrics`` (Prometheus), ``/healthz``, ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from rempart import __version__
from rempart.errors import NotFoundError, RempartError
from rempart.respond.apitokens import ApiToken, TokenScope
from rempart.respond.decisions import CheckRequest, DecisionState, DecisionType, Scope
from rempart.respond.policy_spec import parse_duration
from rempart.respond.service import ResponseService, Saturated, TooManyEvents

log = logging.getLogger("rempart.respond.server")

_CHECK_PARAMS: list[dict[str, Any]] = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
    for n, d in [
        ("account", "Practitioner account (or header X-Rempart-Account)"),
        ("ip", "Client IP (or header X-Rempart-IP)"),
        ("session", "Session id (or header X-Rempart-Session)"),
        ("organization", "Organisation id (or header X-Rempart-Organization)"),
        ("method", "HTTP method of the original request (or header X-Rempart-Method)"),
        (
            "purpose",
            "'mfa' for the strong-authentication request itself, which a step-up lets "
            "through (or header X-Rempart-Purpose)",
        ),
    ]
]


class DecisionIn(BaseModel):
    scope: Scope
    value: str = Field(min_length=1, max_length=256)
    type: DecisionType
    duration: str = Field(default="1h", description="e.g. 15m, 4h, 7d")
    reason: str = Field(min_length=1, max_length=1000)
    rate: str | None = Field(default=None, description="throttle only, e.g. 30/min")


class ReasonIn(BaseModel):
    reason: str = ""


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class FastCheckPath:
    """Answers ``GET /v1/decisions/check`` before FastAPI's routing and validation: the hot path
    of every enforcement point (same logic as the documented route)."""

    def __init__(
        self,
        app: Any,
        answer: Callable[[Mapping[str, str], Mapping[str, str]], tuple[int, dict[str, str]]],
    ):
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != "/v1/decisions/check"
            or scope["method"] not in ("GET", "HEAD")
        ):
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status, out = self.answer(query, headers)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b""})


def create_app(service: ResponseService, *, manage_lifecycle: bool = True) -> FastAPI:
    """The FastAPI app; with ``manage_lifecycle`` the service starts and stops with it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            service.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await run_in_threadpool(service.stop)

    app = FastAPI(
        title="Rempart",
        version=__version__,
        description="Detection and response for health-data portals: ingest events, check "
        "decisions at enforcement points, manage decisions and alerts.",
        lifespan=lifespan,
    )
    server = service.settings.server
    cache_allow = str(server.cache_allow_seconds)
    cache_deny = str(server.cache_deny_seconds)

    def require(scope: TokenScope) -> Any:
        def dependency(request: Request) -> ApiToken:
            token = service.tokens.verify(_bearer(request))
            if token is None:
                raise HTTPException(
                    401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
                )
            if not token.allows(scope):
                raise HTTPException(403, f"token lacks scope {scope.value}")
            return token

        return Depends(dependency)

    @app.exception_handler(RempartError)
    async def _rempart_error(_request: Request, exc: RempartError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFoundError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        health = service.health()
        return JSONResponse(health, status_code=200 if health["status"] == "ok" else 503)

    @app.get("/metrics", tags=["operations"])
    def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/events",
        status_code=202,
        tags=["ingest"],
        responses={
            413: {"description": "body too large"},
            429: {"description": "engine saturated; see Retry-After"},
        },
    )
    async def ingest(request: Request, _t: ApiToken = require(TokenScope.INGEST)) -> JSONResponse:
        declared = request.headers.get("content-length")
        limit = server.max_body_bytes
        if (
            declared is not None
            and declared.isascii()
            and declared.isdigit()
            and int(declared) > limit
        ):
            return JSONResponse({"error": f"body larger than {limit} bytes"}, status_code=413)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return JSONResponse({"error": f"body larger than {limit} bytes"}, status_code=413)
            chunks.append(chunk)
        try:
            receipt = await run_in_threadpool(service.ingest_body, b"".join(chunks))
        except TooManyEvents as exc:
            return JSONResponse({"error": str(exc)}, status_code=413)
        except Saturated as exc:
            return JSONResponse(
                {"error": "engine saturated, retry later"},
                status_code=429,
                headers={"Retry-After": str(exc.retry_after)},
            )
        return JSONResponse(
            {"accepted": receipt.accepted, "rejected": receipt.rejected, "queued": receipt.queued},
            status_code=202,
        )

    check_requires_token = server.check_requires_token

    def answer_check(
        query: Mapping[str, str], headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str]]:
        """The check, shared by the fast ASGI path and the documented route."""
        if check_requires_token:
            auth = headers.get("authorization", "")
            scheme, _, text = auth.partition(" ")
            token = service.tokens.verify(text.strip() if scheme.lower() == "bearer" else None)
            if token is None or not token.allows(TokenScope.ENFORCE):
                # not a verdict: nginx applies its fail mode; counted so that a wrong token in
                # the nginx configuration shows in /metrics and the log
                service.metrics.checks.labels("unauthorised").inc()
                log.warning("decision check with a missing or invalid enforce token")
                return 503, {"X-Rempart-Error": "unauthorised"}
        req = CheckRequest(
            account=query.get("account") or headers.get("x-rempart-account") or None,
            ip=query.get("ip") or headers.get("x-rempart-ip") or None,
            session=query.get("session") or headers.get("x-rempart-session") or None,
            organization=query.get("organization") or headers.get("x-rempart-organization") or None,
        )
        verdict = service.check(
            req,
            query.get("method") or headers.get("x-rempart-method"),
            query.get("purpose") or headers.get("x-rempart-purpose"),
        )
        out = verdict.headers()
        applied = verdict.decision
        if applied is None:
            out["X-Accel-Expires"] = cache_allow
        elif verdict.status in (401, 403) and applied.type is not DecisionType.READ_ONLY:
            out["X-Accel-Expires"] = cache_deny
        else:
            out["X-Accel-Expires"] = "0"
        if verdict.status == 401:
            out["WWW-Authenticate"] = 'Rempart-StepUp realm="rempart"'
        return verdict.status, out

    @app.get(
        "/v1/decisions/check",
        tags=["enforcement"],
        status_code=204,
        openapi_extra={"parameters": _CHECK_PARAMS},
        responses={
            401: {"description": "step-up required"},
            403: {"description": "blocked"},
            429: {"description": "throttled"},
        },
    )
    async def check(request: Request) -> Response:
        status, headers = answer_check(request.query_params, request.headers)
        return Response(status_code=status, headers=headers)

    app.add_middleware(FastCheckPath, answer=answer_check)

    @app.get("/v1/decisions", tags=["decisions"])
    def list_decisions(
        state: DecisionState | None = None,
        scope: Scope | None = None,
        value: str | None = None,
        live: bool = False,
        limit: int = 500,
        _t: ApiToken = require(TokenScope.ADMIN),
    ) -> list[dict[str, Any]]:
        found = service.store.query(
            state=state, scope=scope, value=value, live_only=live, limit=max(1, min(limit, 10_000))
        )
        return [d.to_dict() for d in found]

    @app.post("/v1/decisions", status_code=201, tags=["decisions"])
    def add_decision(body: DecisionIn, token: ApiToken = require(TokenScope.ADMIN)) -> Any:
        d = service.add_manual_decision(
            scope=body.scope,
            value=body.value,
            dtype=body.type,
            duration=parse_duration(body.duration),
            reason=body.reason,
            analyst=token.name,
            rate=body.rate,
        )
        return d.to_dict()

    @app.get("/v1/decisions/{decision_id}", tags=["decisions"])
    def get_decision(decision_id: str, _t: ApiToken = require(TokenScope.ADMIN)) -> Any:
        return service.store.get(decision_id).to_dict()

    @app.delete("/v1/decisions/{decision_id}", tags=["decisions"])
    def revoke_decision(
        decision_id: str, reason: str = "", token: ApiToken = require(TokenScope.ADMIN)
    ) -> Any:
        return service.store.revoke(
            decision_id, by=f"analyst:{token.name}", reason=reason
        ).to_dict()

    @app.post("/v1/decisions/{decision_id}/{verb}", tags=["decisions"])
    def approve_or_reject(
        decision_id: str,
        verb: Literal["approve", "reject"],
        body: ReasonIn | None = None,
        token: ApiToken = require(TokenScope.ADMIN),
    ) -> Any:
        who = f"analyst:{token.name}"
        if verb == "approve":
            return service.store.approve(decision_id, by=who).to_dict()
        return service.store.reject(
            decision_id, by=who, reason=body.reason if body else ""
        ).to_dict()

    @app.get("/v1/alerts", tags=["alerts"])
    def list_alerts(limit: int = 100, _t: ApiToken = require(TokenScope.ADMIN)) -> Any:
        return [a.to_dict() for a in service.recent_alerts(max(1, min(limit, 10_000)))]

    @app.get("/v1/audit", tags=["audit"])
    def audit(limit: int = 200, _t: ApiToken = require(TokenScope.ADMIN)) -> Any:
        report = service.store.audit.verify()
        return {
            "chain_ok": report.ok,
            "records": report.records,
            "first_bad_seq": report.first_bad_seq,
            "problem": report.problem,
            "entries": [e.to_dict() for e in service.store.audit.entries(limit=limit)],
        }

    return app
