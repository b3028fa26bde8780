"""Local HTTP API of the running engine: list, acknowledge, silence, audit trail.

Every call needs `Authorization: Bearer <token>` (nothing readable or writable
without it); the token names who calls (`alerts.api.tokens`), and that name, never
one from the request body, is the author of acknowledgements and silences. Every
operator action and every refused call is written to the audit log before the
answer is sent. Bind it to loopback unless a reverse proxy adds TLS in front.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dcim.alerts.config import ApiSettings
from dcim.alerts.model import Incident
from dcim.alerts.silences import parse_duration, parse_matchers
from dcim.audit import AuditLog
from dcim.ratelimit import LogLimiter

if TYPE_CHECKING:
    from dcim.alerts.service import AlertEngine

ENGINE_KEY = web.AppKey("engine", object)
AUDIT_KEY = web.AppKey("audit", AuditLog)
IDENTITY = web.RequestKey("identity", str)
MAX_TEXT = 500
#: Refused calls are audited at most once a second per client address (the rest counted),
#: so a client hammering the API with a wrong token cannot fill the disk with the trail.
AUTH_FAILURE_AUDIT_S = 1.0
#: Longest a maintenance window may be scheduled ahead.
MAX_START_AHEAD_S = 366 * 86400.0


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


def _source(request: web.Request) -> str:
    return request.remote or "unknown"


def _authorized(identities: list[tuple[str, str]], audit: AuditLog) -> Any:
    expected = [(name, f"Bearer {token}".encode()) for name, token in identities]
    limiter = LogLimiter(AUTH_FAILURE_AUDIT_S)

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        who = None
        for name, value in expected:  # compare with every token: no early exit to time
            if hmac.compare_digest(given, value):
                who = name
        if who is None:
            source = _source(request)
            held = limiter.allow(source)
            if held is not None:
                audit.record(
                    actor="(unauthenticated)",
                    source=source,
                    action="auth_failure",
                    target=f"{request.method} {request.path}"[:MAX_TEXT],
                    result="denied",
                    detail={"token_given": bool(given), "repeated_before": held},
                )
            return web.json_response({"error": "missing or wrong token"}, status=401)
        request[IDENTITY] = who
        response: web.StreamResponse = await handler(request)
        return response

    return check


class _Refused(Exception):
    """A bad request: audited with its reason, answered 400/404."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Refused(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise _Refused(400, "body must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise _Refused(400, f"{name}: a non-empty string up to {MAX_TEXT} characters")
    return value.strip()


def _engine(request: web.Request) -> AlertEngine:
    engine: AlertEngine = request.app[ENGINE_KEY]  # type: ignore[assignment]
    return engine


def _audit(request: web.Request, action: str, target: str, result: str, **detail: Any) -> None:
    request.app[AUDIT_KEY].record(
        actor=str(request[IDENTITY]),
        source=_source(request),
        action=action,
        target=target[:MAX_TEXT],
        result=result,
        detail=detail,
    )


def _refused(request: web.Request, action: str, target: str, exc: _Refused) -> web.Response:
    _audit(request, action, target, "refused", reason=str(exc))
    return web.json_response({"error": str(exc)}, status=exc.status)


async def list_alerts(request: web.Request) -> web.Response:
    engine = _engine(request)
    return web.json_response({"alerts": [incident_json(i, engine) for i in engine.incidents()]})


async def ack(request: web.Request) -> web.Response:
    engine = _engine(request)
    incident_id = request.match_info["id"]
    try:
        data = await _body(request)
        comment = str(data.get("comment", ""))[:MAX_TEXT]
        try:
            incident = engine.acknowledge(incident_id, str(request[IDENTITY]), comment)
        except KeyError:
            raise _Refused(404, "no such open alert") from None
    except _Refused as exc:
        return _refused(request, "acknowledge", incident_id, exc)
    _audit(request, "acknowledge", incident_id, "ok", rule=incident.rule, comment=comment)
    return web.json_response(incident_json(incident, engine))


async def list_silences(request: web.Request) -> web.Response:
    engine = _engine(request)
    return web.json_response({"silences": [s.to_json() for s in engine.silences()]})


def _start(data: dict[str, Any], now: float) -> float | None:
    """When a silence starts: now (None), or later for a maintenance window."""
    if "starts_in" in data:
        try:
            ahead = parse_duration(_text(data, "starts_in"))
        except ValueError as exc:
            raise _Refused(400, str(exc)) from None
        start = now + ahead
    elif "starts_at" in data:
        value = data["starts_at"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Refused(400, "starts_at: epoch seconds")
        start = float(value)
    else:
        return None
    if not now - 60 <= start <= now + MAX_START_AHEAD_S:
        raise _Refused(400, "a maintenance window starts between now and a year ahead")
    return start


async def add_silence(request: web.Request) -> web.Response:
    engine = _engine(request)
    target, action = "?", "silence"
    try:
        data = await _body(request)
        target = str(data.get("scope", "?"))
        try:
            matchers = parse_matchers(_text(data, "scope"))
            duration_s = parse_duration(_text(data, "duration"))
        except ValueError as exc:
            raise _Refused(400, str(exc)) from None
        now = engine.clock()
        starts_at = _start(data, now)
        if starts_at is not None and starts_at > now:
            action = "maintenance"
    except _Refused as exc:
        return _refused(request, action, target, exc)
    comment = str(data.get("comment", ""))[:MAX_TEXT]
    silence = engine.silence(
        matchers, duration_s, str(request[IDENTITY]), comment, starts_at=starts_at
    )
    _audit(
        request,
        action,
        target,
        "ok",
        silence=silence.id,
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        comment=comment,
    )
    return web.json_response(silence.to_json(), status=201)


async def delete_silence(request: web.Request) -> web.Response:
    silence_id = request.match_info["id"]
    try:
        silence = _engine(request).unsilence(silence_id)
    except KeyError:
        return _refused(request, "unsilence", silence_id, _Refused(404, "no such silence"))
    _audit(request, "unsilence", silence_id, "ok", matchers=silence.matchers)
    return web.json_response(silence.to_json())


async def audit_trail(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(int(request.query.get("limit", "100")), 10_000))
    except ValueError:
        limit = 100
    entries = list(request.app[AUDIT_KEY].entries())[-limit:]
    return web.json_response({"entries": [json.loads(e.to_json()) for e in entries]})


def build_app(
    engine: AlertEngine, identities: list[tuple[str, str]], audit: AuditLog
) -> web.Application:
    app = web.Application(middlewares=[_authorized(identities, audit)], client_max_size=64 * 1024)
    app[ENGINE_KEY] = engine
    app[AUDIT_KEY] = audit
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_post("/api/v1/alerts/{id}/ack", ack)
    app.router.add_get("/api/v1/silences", list_silences)
    app.router.add_post("/api/v1/silences", add_silence)
    app.router.add_delete("/api/v1/silences/{id}", delete_silence)
    app.router.add_get("/api/v1/audit", audit_trail)
    return app


async def start_api(
    engine: AlertEngine, settings: ApiSettings, audit: AuditLog
) -> tuple[web.AppRunner, int]:
    """Serve the API; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(build_app(engine, settings.identities(), audit), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, port


def epoch_text(at: float) -> str:
    """An audit time as the operator reads it (local time, with the zone)."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(at))
