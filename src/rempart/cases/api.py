"""HTTP API of cases: a FastAPI ``APIRouter`` the response server (or any app) can mount.

    router = make_router(cases, dependencies=[require(TokenScope.ADMIN)])
    app.include_router(router)

Re-identification is deliberately absent: the DPO's private key never travels over HTTP; it is
``rempart incident reidentify`` on the DPO's own machine. ``RempartError`` raised here is mapped
to 404/400 by the mounting app (``make_app`` does it for a standalone app).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from rempart.alerts import Alert
from rempart.cases.service import REPORT_FORMATS, Cases
from rempart.errors import NotFoundError, RempartError

ACTOR_HEADER = "X-Rempart-Actor"


class StatusChange(BaseModel):
    status: str
    reason: str | None = None


class Assignment(BaseModel):
    assignee: str | None


class Note(BaseModel):
    text: str


class WindowChange(BaseModel):
    account: str
    start: float
    end: float
    reason: str


class DetailChange(BaseModel):
    field: str
    value: Any


def _actor(request: Request) -> str:
    return request.headers.get(ACTOR_HEADER) or "api"


def make_router(
    cases: Cases,
    *,
    dependencies: Sequence[Any] = (),
    actor_of: Callable[[Request], str] = _actor,
) -> APIRouter:
    router = APIRouter(prefix="/v1/incidents", tags=["incidents"], dependencies=list(dependencies))
    store = cases.store

    @router.get("")
    def list_incidents(status: str | None = None) -> list[dict[str, Any]]:
        return [i.summary() for i in store.list_incidents(status)]

    @router.post("/open-from-alerts")
    def open_from_alerts(alerts: list[dict[str, Any]], request: Request) -> dict[str, Any]:
        try:
            parsed = [Alert.from_dict(a) for a in alerts]
        except (KeyError, ValueError, TypeError) as exc:
            raise RempartError(f"not an alert: {exc.__class__.__name__}: {exc}") from None
        result = store.open_from_alerts(parsed, actor=actor_of(request))
        return {
            "created": result.created,
            "updated": result.updated,
            "alerts_added": result.alerts_added,
            "alerts_updated": result.alerts_updated,
        }

    @router.get("/register")
    def register() -> list[dict[str, Any]]:
        return cases.register()

    @router.get("/{incident_id}")
    def show(incident_id: int) -> dict[str, Any]:
        inc = store.get(incident_id)
        affected = cases.affected(inc)
        return {
            **inc.summary(),
            "assignee": inc.assignee,
            "attribution": inc.attribution,
            "details": inc.details,
            "affected": affected.summary(),
            "alerts": [a.to_dict() for a in inc.alerts],
        }

    @router.get("/{incident_id}/affected")
    def affected(incident_id: int, exclude_served_before: bool | None = None) -> dict[str, Any]:
        result = cases.affected(incident_id, exclude_served_before=exclude_served_before)
        return {**result.summary(), "people_list": [p.to_row() for p in result.people]}

    @router.get("/{incident_id}/affected.csv")
    def affected_csv(incident_id: int, request: Request) -> Response:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "affected.csv"
            cases.export_affected(incident_id, out, actor=actor_of(request))
            data = out.read_bytes()
        return Response(data, media_type="text/csv; charset=utf-8")

    @router.get("/{incident_id}/timeline")
    def timeline(incident_id: int) -> dict[str, Any]:
        return cases.timeline(incident_id).to_dict()

    @router.get("/{incident_id}/audit")
    def audit(incident_id: int) -> list[dict[str, Any]]:
        store.get(incident_id)
        return [e.to_dict() for e in store.audit_trail(incident_id)]

    @router.get("/{incident_id}/report")
    def report(incident_id: int, request: Request, format: str = "json") -> Response:
        if format not in REPORT_FORMATS:
            raise RempartError(f"unknown format {format!r}", hint=", ".join(REPORT_FORMATS))
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"art33.{format}"
            cases.write_report(incident_id, format, out, actor=actor_of(request))
            data = out.read_bytes()
        if format == "json":
            return JSONResponse(json.loads(data))
        if format == "md":
            return PlainTextResponse(data.decode("utf-8"), media_type="text/markdown")
        return Response(data, media_type="application/pdf")

    @router.get("/{incident_id}/letter")
    def letter(incident_id: int) -> PlainTextResponse:
        return PlainTextResponse(cases.letter(incident_id), media_type="text/markdown")

    @router.post("/{incident_id}/status")
    def status(incident_id: int, body: StatusChange, request: Request) -> dict[str, Any]:
        return store.transition(
            incident_id, body.status, actor=actor_of(request), reason=body.reason
        ).summary()

    @router.post("/{incident_id}/assign")
    def assign(incident_id: int, body: Assignment, request: Request) -> dict[str, Any]:
        return store.assign(incident_id, body.assignee, actor=actor_of(request)).summary()

    @router.post("/{incident_id}/notes")
    def note(incident_id: int, body: Note, request: Request) -> dict[str, Any]:
        return store.add_note(incident_id, body.text, actor=actor_of(request)).summary()

    @router.post("/{incident_id}/window")
    def window(incident_id: int, body: WindowChange, request: Request) -> dict[str, Any]:
        store.set_window(
            incident_id,
            body.account,
            body.start,
            body.end,
            actor=actor_of(request),
            reason=body.reason,
        )
        return {"windows": [w.to_dict() for w in cases.windows(incident_id)]}

    @router.post("/{incident_id}/details")
    def details(incident_id: int, body: DetailChange, request: Request) -> dict[str, Any]:
        return store.set_detail(
            incident_id, body.field, body.value, actor=actor_of(request)
        ).details

    return router


def make_app(cases: Cases, **router_options: Any) -> FastAPI:
    """A standalone app around the router (tests, or a cases-only console)."""
    app = FastAPI(title="Rempart cases")

    @app.exception_handler(RempartError)
    async def _error(_request: Request, exc: RempartError) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc)}, status_code=404 if isinstance(exc, NotFoundError) else 400
        )

    app.include_router(make_router(cases, **router_options))
    return app
