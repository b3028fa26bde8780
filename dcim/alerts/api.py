"""Local HTTP API of the running engine: list, acknowledge, silence.

Every call needs `Authorization: Bearer <token>` (nothing readable or writable
without it). Bind it to loopback unless a reverse proxy adds TLS in front.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dcim.alerts.config import ApiSettings
from dcim.alerts.model import Incident
from dcim.alerts.silences import parse_duration, parse_matchers

if TYPE_CHECKING:
    from dcim.alerts.service import AlertEngine

ENGINE_KEY = web.AppKey("engine", object)
MAX_TEXT = 500


def incident_json(incident: Incident, engine: AlertEngine) -> dict[str, Any]:
    silence = engine.engine.silenced_by(incident, engine.clock())
    return {
        "id": incident.id,
        "rule": incident.rule,
        "scope": incident.key,
        "severity": incident.severity.value,
        "state": incident.phase.value,
        "level": incident.level,
        "summary": incident.summary,
        "labels": incident.labels,
        "started_at": incident.started_at,
        "fired_at": incident.fired_at,
        "stale": incident.stale,
        "flapping": incident.flapping,
        "parent": incident.parent,
        "fire_alarm": incident.fire_alarm,
        "acknowledged": (
            {"by": incident.ack_by, "at": incident.ack_at, "comment": incident.ack_comment}
            if incident.acknowledged
            else None
        ),
        "silenced_by": silence.id if silence is not None else None,
    }


def _authorized(token: bytes) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), b"Bearer " + token):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    return check


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise web.HTTPBadRequest(text=f"{name}: a non-empty string up to {MAX_TEXT} characters")
    return value.strip()


def _engine(request: web.Request) -> AlertEngine:
    engine: AlertEngine = request.app[ENGINE_KEY]  # type: ignore[assignment]
    return engine


async def list_alerts(request: web.Request) -> web.Response:
    engine = _engine(request)
    return web.json_response({"alerts": [incident_json(i, engine) for i in engine.incidents()]})


async def ack(request: web.Request) -> web.Response:
    engine = _engine(request)
    data = await _body(request)
    by = _text(data, "by")
    comment = str(data.get("comment", ""))[:MAX_TEXT]
    try:
        incident = engine.acknowledge(request.match_info["id"], by, comment)
    except KeyError:
        return web.json_response({"error": "no such open alert"}, status=404)
    return web.json_response(incident_json(incident, engine))


async def list_silences(request: web.Request) -> web.Response:
    engine = _engine(request)
    return web.json_response({"silences": [s.to_json() for s in engine.silences()]})


async def add_silence(request: web.Request) -> web.Response:
    engine = _engine(request)
    data = await _body(request)
    try:
        matchers = parse_matchers(_text(data, "scope"))
        duration_s = parse_duration(_text(data, "duration"))
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    comment = str(data.get("comment", ""))[:MAX_TEXT]
    silence = engine.silence(matchers, duration_s, _text(data, "by"), comment)
    return web.json_response(silence.to_json(), status=201)


async def delete_silence(request: web.Request) -> web.Response:
    try:
        silence = _engine(request).unsilence(request.match_info["id"])
    except KeyError:
        return web.json_response({"error": "no such silence"}, status=404)
    return web.json_response(silence.to_json())


def build_app(engine: AlertEngine, token: str) -> web.Application:
    app = web.Application(middlewares=[_authorized(token.encode())], client_max_size=64 * 1024)
    app[ENGINE_KEY] = engine
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_post("/api/v1/alerts/{id}/ack", ack)
    app.router.add_get("/api/v1/silences", list_silences)
    app.router.add_post("/api/v1/silences", add_silence)
    app.router.add_delete("/api/v1/silences/{id}", delete_silence)
    return app


async def start_api(engine: AlertEngine, settings: ApiSettings) -> tuple[web.AppRunner, int]:
    """Serve the API; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(build_app(engine, settings.token.get_secret_value()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, port
