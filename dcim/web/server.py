"""The NOC board: an aiohttp server the monitor runs when its config has a `web:` section.

    board = Board(config, queue, alerts=engine, audit=AuditLog(path))
    await board.start()              # binds; board.url says where
    task = asyncio.create_task(board.run())
    ...
    await board.aclose()

It reads readings from its own bus subscription (`queue`) and incidents from the
alert engine; it never imports a collector or a simulator. Reading needs a
session (viewer or operator) unless `anonymous_read`; acting (acknowledge,
silence) needs an operator, a CSRF token, and is written to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from markupsafe import Markup

from dcim.audit import DEFAULT_AUDIT_FILE, AuditLog
from dcim.clock import Clock
from dcim.i18n import LANGUAGES, pick_language, translations
from dcim.inventory import Config, InfluxSinkConfig
from dcim.reading import Reading
from dcim.web.auth import Authenticator, Identity, Session
from dcim.web.config import WebConfig
from dcim.web.hub import KEEPALIVE_S, Hub, Rendered
from dcim.web.overview import OverviewBuilder
from dcim.web.pages import Page, PageData
from dcim.web.peers import STATE_PATH, BoardState, Peers
from dcim.web.render import render, render_cells
from dcim.web.thermal import InletBands, engine_bands

if TYPE_CHECKING:
    from dcim.alerts.model import Incident
    from dcim.alerts.service import AlertEngine
    from dcim.coord.view import CoordinationView

log = logging.getLogger(__name__)

SESSION_COOKIE = "dcim_session"


def _(message: str) -> str:
    """Marks a message for the catalog; it is translated per request (`Board._text`)."""
    return message


LANG_COOKIE = "dcim_lang"
CSRF_HEADER = "X-CSRF-Token"
STATIC = Path(__file__).parent / "static"
BOARD_KEY = web.AppKey("board", object)
MAX_TEXT = 500
#: Durations the silence form offers.
SILENCE_CHOICES = ("30m", "1h", "4h", "1d")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class Board:
    def __init__(
        self,
        config: Config,
        queue: asyncio.Queue[Reading],
        *,
        alerts: AlertEngine | None = None,
        audit: AuditLog | None = None,
        clock: Clock | None = None,
        note: str = "",
    ) -> None:
        from dcim.web.live import LiveState

        if config.web is None:
            msg = "the board needs a web section in the config"
            raise ValueError(msg)
        self.config = config
        self.web: WebConfig = config.web
        self.queue = queue
        self.alerts = alerts
        # one audit trail for the board and the alert API: `monitor.audit_file` when set
        self.audit = audit or (
            alerts.audit
            if alerts is not None
            else AuditLog(
                config.monitor.audit_file or config.monitor.state_dir / DEFAULT_AUDIT_FILE
            )
        )
        self.clock: Clock = clock or (alerts.clock if alerts else time.time)
        #: One line the banner shows (the demo says what it is playing).
        self.note = note
        #: Rooms shared with other monitors through etcd: who polls what, handovers.
        self.coordination: Callable[[], CoordinationView | None] = lambda: None
        self.live = LiveState(config, self.web.history)
        self.overview = OverviewBuilder(config, engine_bands(config.alerts))
        self.auth = Authenticator(
            self.web.users,
            config.alerts.api.identities() if config.alerts and config.alerts.api else [],
            self.web.session_ttl_s,
        )
        self.hub = Hub(self.web.update_s)
        self.peers = Peers(self.web)
        self.pages = PageData(self)
        #: Moves on every board action, so pages re-render at once.
        self.actions = 0
        self.history_sink: InfluxSinkConfig | None = next(
            (s for s in config.sinks if isinstance(s, InfluxSinkConfig)), None
        )
        self.zone = config.sites[0].timezone if config.sites else "UTC"
        self._zones = {site.id: site.timezone for site in config.sites}
        self._rooms = {(s.id, r.id): r.ashrae_class for s in config.sites for r in s.rooms}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # --- lifecycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.web.tls else "http"
        host = self.web.host
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{self.port}/"

    async def start(self) -> int:
        app = self.app()
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        context = None
        if self.web.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.web.tls.cert_file), str(self.web.tls.key_file))
        site = web.TCPSite(runner, self.web.host, self.web.port, ssl_context=context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("board at %s", self.url)
        return self.port

    async def run(self) -> None:
        """Consume readings, push updates, read peers; until cancelled."""
        tasks = [
            asyncio.create_task(self.live.consume(self.queue), name="board state"),
            asyncio.create_task(self.hub.run(), name="board updates"),
            asyncio.create_task(self.peers.run(), name="board peers"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def aclose(self) -> None:
        self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def devices_changed(self, config: Config) -> None:
        """Show the rooms and devices of a changed config (reload, rooms moved)."""
        self.config = config
        self.live.devices_changed(config, self.web.history)
        self.overview = OverviewBuilder(config, engine_bands(config.alerts))
        self._zones = {site.id: site.timezone for site in config.sites}
        self._rooms = {(s.id, r.id): r.ashrae_class for s in config.sites for r in s.rooms}
        self.actions += 1

    # --- what the pages read -------------------------------------------------------

    def incidents(self) -> list[Incident]:
        return self.alerts.incidents() if self.alerts is not None else []

    def rule_titles(self) -> dict[str, str]:
        if self.alerts is None:
            return {}
        return {rule_id: info.title for rule_id, info in self.alerts.engine.rules.items()}

    def silenced_ids(self) -> set[str]:
        if self.alerts is None:
            return set()
        engine, now = self.alerts.engine, self.alerts.clock()
        return {i.id for i in self.incidents() if engine.silenced_by(i, now) is not None}

    def zone_of(self, site: str) -> str:
        return self._zones.get(site, self.zone)

    def bands_of(self, site: str, room: str) -> InletBands:
        return self.overview.room_bands(self._rooms.get((site, room)))

    # --- the application -------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers], client_max_size=64 * 1024)
        app[BOARD_KEY] = self
        app.router.add_get("/", self.page)
        app.router.add_get("/incidents", self.page)
        app.router.add_get("/rack/{site}/{room}/{rack}", self.page)
        app.router.add_get("/device/{id}", self.page)
        app.router.add_get("/events", self.events)
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/language/{code}", self.language)
        app.router.add_post("/api/v1/incidents/{id}/ack", self.acknowledge)
        app.router.add_post("/api/v1/silences", self.silence)
        app.router.add_get(STATE_PATH, self.state)
        app.router.add_static("/static/", STATIC, show_index=False)
        return app

    def _session(self, request: web.Request) -> Session | None:
        return self.auth.session(request.cookies.get(SESSION_COOKIE))

    def _language(self, request: web.Request, session: Session | None) -> str:
        chosen = request.cookies.get(LANG_COOKIE)
        return pick_language(
            [chosen, session.language if session else None],
            request.headers.get("Accept-Language", ""),
            self.web.language,
        )

    def _may_read(self, session: Session | None) -> bool:
        return session is not None or self.web.anonymous_read

    async def page(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if not self._may_read(session):
            raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe=""))
        page = Page.parse(request.path_qs)
        language = self._language(request, session)
        if page is None:
            raise web.HTTPNotFound()
        fragments = {}
        for name in page.fragments:
            context = await self.pages.context(page, name)
            # autoescaped template output, placed into the page as it is
            html = render(language, f"fragment-{name}.html", context)
            fragments[name] = Markup(html)  # noqa: S704
        if page.kind == "device" and self.live.devices.get(page.args[0]) is None:
            raise web.HTTPNotFound(text=f"no device {page.args[0]} in this board's inventory")
        if page.kind == "rack" and not any(
            d.placed.rack == page.args[2] and d.placed.site == page.args[0]
            for d in self.live.devices.values()
        ):
            raise web.HTTPNotFound(text="no such rack in this board's inventory")
        html = render(
            language,
            "page.html",
            {
                "page": page,
                "fragments": fragments,
                "identity": session.identity if session else None,
                "csrf": session.csrf if session else "",
                "languages": LANGUAGES,
                "update_s": self.web.update_s,
                "silence_choices": SILENCE_CHOICES,
            },
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def events(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if not self._may_read(session):
            raise web.HTTPUnauthorized(text="log in first")
        target = request.query.get("page", "/")
        if not target.startswith("/"):
            raise web.HTTPBadRequest(text="page must be a path")
        page = Page.parse(target)
        if page is None:
            raise web.HTTPNotFound()
        language = self._language(request, session)

        async def fragments() -> Rendered:
            out = Rendered({})
            for name in page.fragments:
                context = await self.pages.context(page, name)
                html, frame, cells = render_cells(language, f"fragment-{name}.html", context)
                out.html[name] = html
                if cells:
                    out.frames[name] = frame
                    out.cells.update(cells)
            return out

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        topic, client = await self.hub.join(
            (page, language), fragments, lambda: self.pages.fingerprint(page)
        )
        try:
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        message = await client.queue.get()
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if message is None:
                    break
                await response.write(message)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.leave(topic, client)
        return response

    async def login_form(self, request: web.Request) -> web.Response:
        session = self._session(request)
        language = self._language(request, session)
        return self._login_page(language, request.query.get("next", "/"), None)

    def _login_page(
        self, language: str, next_: str, error: str | None, status: int = 200
    ) -> web.Response:
        html = render(
            language,
            "login.html",
            {"next": _local(next_), "error": error, "languages": LANGUAGES},
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)

    async def login(self, request: web.Request) -> web.StreamResponse:
        _same_origin(request)
        form = await request.post()
        name = str(form.get("user", ""))[:64]
        password = str(form.get("password", ""))[:256]
        next_ = _local(str(form.get("next", "/")))
        client = request.remote or "?"
        language = self._language(request, None)
        gettext = translations(language).gettext
        if self.auth.throttled(client):
            self.audit.record(
                actor="-",
                source=client,
                action="auth_failure",
                target="board",
                result="refused",
                detail={"user": name, "why": "too many failures"},
            )
            return self._login_page(
                language, next_, gettext("Too many failed logins: wait a few minutes."), 429
            )
        session = await self.auth.login(name, password, client)
        if session is None:
            self.audit.record(
                actor="-",
                source=client,
                action="auth_failure",
                target="board",
                result="refused",
                detail={"user": name},
            )
            return self._login_page(language, next_, gettext("Wrong user name or password."), 401)
        self.audit.record(
            actor=session.identity.name,
            source=client,
            action="login",
            target="board",
            result="ok",
            detail={"role": session.identity.role},
        )
        response = web.HTTPSeeOther(next_)
        response.set_cookie(
            SESSION_COOKIE,
            session.id,
            httponly=True,
            samesite="Strict",
            secure=self.web.tls is not None,
            max_age=int(self.web.session_ttl_s),
            path="/",
        )
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        _same_origin(request)
        session = self.auth.logout(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            self.audit.record(
                actor=session.identity.name,
                source=request.remote or "?",
                action="logout",
                target="board",
                result="ok",
            )
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    async def language(self, request: web.Request) -> web.StreamResponse:
        code = request.match_info["code"]
        if code not in LANGUAGES:
            raise web.HTTPNotFound()
        response = web.HTTPSeeOther(_local(request.query.get("next", "/")))
        response.set_cookie(LANG_COOKIE, code, samesite="Strict", max_age=365 * 86400, path="/")
        raise response

    # --- actions -------------------------------------------------------------------------

    def _text(self, request: web.Request, message: str) -> str:
        """`message` in the language of the page that asked."""
        language = self._language(request, self._session(request))
        return translations(language).gettext(message)

    def _operator(self, request: web.Request, action: str, target: str) -> Identity:
        """The operator doing `action`, or an HTTP error (refusals are audited too)."""
        _same_origin(request)
        session = self._session(request)
        source = request.remote or "?"
        if session is None:
            self.audit.record(
                actor="anonymous",
                source=source,
                action=action,
                target=target,
                result="refused",
                detail={"why": "not logged in"},
            )
            raise _json_error(401, self._text(request, _("log in as an operator to do this")))
        if not session.identity.can_act:
            self.audit.record(
                actor=session.identity.name,
                source=source,
                action=action,
                target=target,
                result="refused",
                detail={"why": f"role {session.identity.role}"},
            )
            raise _json_error(403, self._text(request, _("your role may only look, not act")))
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), session.csrf.encode()):
            self.audit.record(
                actor=session.identity.name,
                source=source,
                action=action,
                target=target,
                result="refused",
                detail={"why": "missing or wrong CSRF token"},
            )
            raise _json_error(403, self._text(request, _("this page is out of date: reload it")))
        return session.identity

    async def acknowledge(self, request: web.Request) -> web.Response:
        incident_id = request.match_info["id"]
        identity = self._operator(request, "acknowledge", incident_id)
        body = await _json_body(request)
        comment = str(body.get("comment", ""))[:MAX_TEXT]
        if self.alerts is None:
            raise _json_error(404, self._text(request, _("this monitor runs no alert engine")))
        try:
            incident = self.alerts.acknowledge(incident_id, identity.name, comment)
        except KeyError:
            self.audit.record(
                actor=identity.name,
                source=request.remote or "?",
                action="acknowledge",
                target=incident_id,
                result="failed",
                detail={"why": "no such open incident"},
            )
            raise _json_error(404, self._text(request, _("no such open incident"))) from None
        self.audit.record(
            actor=identity.name,
            source=request.remote or "?",
            action="acknowledge",
            target=incident_id,
            result="ok",
            detail={
                "rule": incident.rule,
                "scope": incident.key,
                "comment": comment,
                "via": "board",
            },
        )
        self.actions += 1
        return web.json_response({"id": incident.id, "acknowledged_by": incident.ack_by})

    async def silence(self, request: web.Request) -> web.Response:
        from dcim.alerts.silences import parse_duration, parse_matchers

        body = await _json_body(request)
        scope = str(body.get("scope", ""))[:MAX_TEXT]
        identity = self._operator(request, "silence", scope)
        if self.alerts is None:
            raise _json_error(404, self._text(request, _("this monitor runs no alert engine")))
        try:
            matchers = parse_matchers(scope)
            duration_s = parse_duration(str(body.get("duration", "")))
        except ValueError as exc:
            self.audit.record(
                actor=identity.name,
                source=request.remote or "?",
                action="silence",
                target=scope,
                result="failed",
                detail={"why": str(exc)},
            )
            raise _json_error(400, str(exc)) from None
        comment = str(body.get("comment", ""))[:MAX_TEXT]
        silence = self.alerts.silence(matchers, duration_s, identity.name, comment)
        self.audit.record(
            actor=identity.name,
            source=request.remote or "?",
            action="silence",
            target=scope,
            result="ok",
            detail={
                "silence": silence.id,
                "duration_s": duration_s,
                "comment": comment,
                "via": "board",
            },
        )
        self.actions += 1
        return web.json_response(silence.to_json(), status=201)

    async def state(self, request: web.Request) -> web.Response:
        token = self.web.api_token
        given = request.headers.get("Authorization", "")
        if token is None or not hmac.compare_digest(
            given.encode(), b"Bearer " + token.get_secret_value().encode()
        ):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        state = BoardState(
            at=self.clock(),
            sites=self.pages.sites(),
            incidents=self.pages.local_incidents(),
        )
        return web.Response(text=state.model_dump_json(), content_type="application/json")


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


def _local(target: str) -> str:
    """Only a path on this board (no open redirect to another site)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _same_origin(request: web.Request) -> None:
    """A form or fetch from another site must not act (CSRF), whatever cookies it carries."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return  # same-origin form posts from older browsers; the CSRF token still guards actions
    if urlsplit(origin).netloc != request.host:
        raise _json_error(403, "cross-site request refused")


def _json_error(status: int, message: str) -> web.HTTPException:
    kinds: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
    }
    return kinds[status](text=json.dumps({"error": message}), content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _json_error(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise _json_error(400, "body must be a JSON object")
    return data
