"""Recording stand-ins for Slack, Microsoft Teams, PagerDuty and Opsgenie.

These SaaS cannot be reached from here (no network but the package registries), and
none ships a server that runs locally, so a recording HTTP server (aiohttp on a free
loopback port) stands in for each. It is not a stub that says yes: each one CHECKS
every request against the payload shape its service documents (required fields, types,
allowed values, size limits), answers as the service does (Slack 200 "ok", Teams 202,
PagerDuty 202 with its JSON, Opsgenie 202 with a request id; their error answers
otherwise), and keeps the state the service would (PagerDuty's alert per dedup_key,
Opsgenie's alert per alias), so a test sees what on-call staff would see.

Documented shapes (the numbers below):
- Slack Block Kit via incoming webhook: `text` (fallback) with `blocks` <= 50; header:
  plain_text <= 150; section text <= 3000, fields <= 10 of <= 2000; context <= 10
  elements; actions <= 25 elements; button text plain_text <= 75, url <= 3000,
  action_id <= 255; block_id <= 255; message text truncated past 40,000.
- Teams Workflows webhook: `{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": AdaptiveCard}]}`, message <= 28 KB;
  Action.Submit is not supported from a webhook.
- PagerDuty Events API v2: routing_key (32 characters), event_action trigger |
  acknowledge | resolve, dedup_key <= 255; trigger needs payload.summary (<= 1024),
  payload.source, payload.severity (critical | error | warning | info); 512 KB at most.
- Opsgenie Alert API: `Authorization: GenieKey <key>`; create: message <= 130 (required),
  alias <= 512, description <= 15000, tags <= 20 of <= 50, details string map <= 8000
  characters, entity <= 512, source <= 100, priority P1..P5, user <= 100, note <= 25000;
  acknowledge / close by `identifierType` id | tiny | alias, body user, source, note.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

SLACK_PATH = "/services/T0DCIM/B0DCIM/s3cr3tW3bh00kT0k3n"
TEAMS_PATH = "/workflows/0d1c1d2e/triggers/manual/paths/invoke?api-version=1&sig=t3amsS1gnatur3"
PAGERDUTY_PATH = "/v2/enqueue"
ROUTING_KEY = "d1c1m0r0ut1ngk3y0f32ch4r4ct3r5xy"
OPSGENIE_KEY = "0p5g3n13-k3y0-f0r0-t35t-5000000000aa"

URL = re.compile(r"^https?://[^/\s]+")


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _text_problems(obj: Any, where: str, limit: int, kinds: tuple[str, ...]) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: not a text object"]
    problems = []
    if obj.get("type") not in kinds:
        problems.append(f"{where}.type {obj.get('type')!r} not in {kinds}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}.text missing or empty")
    elif utf16_len(text) > limit:
        problems.append(f"{where}.text longer than {limit}")
    return problems


# --- Slack ------------------------------------------------------------------------------


def slack_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems = []
    text, blocks = body.get("text"), body.get("blocks")
    if blocks is None and not text:
        return ["no_text"]
    if not isinstance(text, str) or not text.strip():
        problems.append("text (the notification fallback) missing with blocks")
    elif utf16_len(text) > 40_000:
        problems.append("text longer than 40,000")
    if not isinstance(blocks, list) or not blocks:
        return [*problems, "blocks must be a non-empty list"]
    if len(blocks) > 50:
        problems.append("more than 50 blocks")
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if len(str(block.get("block_id", ""))) > 255:
            problems.append(f"{where}.block_id longer than 255")
        if kind == "header":
            problems += _text_problems(block.get("text"), where, 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: section without text or fields")
            if "text" in block:
                problems += _text_problems(block["text"], where, 3000, ("mrkdwn", "plain_text"))
            fields = block.get("fields", [])
            if len(fields) > 10:
                problems.append(f"{where}: more than 10 fields")
            for j, item in enumerate(fields):
                problems += _text_problems(
                    item, f"{where}.fields[{j}]", 2000, ("mrkdwn", "plain_text")
                )
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                problems.append(f"{where}: context needs 1..10 elements")
            else:
                for j, item in enumerate(elements):
                    problems += _text_problems(
                        item, f"{where}.elements[{j}]", 3000, ("mrkdwn", "plain_text")
                    )
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                problems.append(f"{where}: actions needs 1..25 elements")
                continue
            for j, button in enumerate(elements):
                at = f"{where}.elements[{j}]"
                if button.get("type") != "button":
                    problems.append(f"{at}: not a button")
                    continue
                problems += _text_problems(button.get("text"), at, 75, ("plain_text",))
                url = button.get("url", "")
                if not URL.match(str(url)) or len(url) > 3000:
                    problems.append(f"{at}.url not an absolute URL of <= 3000")
                if len(str(button.get("action_id", ""))) > 255:
                    problems.append(f"{at}.action_id longer than 255")
        elif kind != "divider":
            problems.append(f"{where}: unknown block type {kind!r}")
    return problems


# --- Teams ------------------------------------------------------------------------------

CARD_ELEMENTS = {
    "TextBlock",
    "FactSet",
    "ColumnSet",
    "Container",
    "Image",
    "ActionSet",
    "RichTextBlock",
}
CARD_ACTIONS = {"Action.OpenUrl", "Action.ShowCard", "Action.ToggleVisibility"}


def teams_problems(raw: bytes, body: Any) -> list[str]:
    problems = []
    if len(raw) > 28 * 1024:
        problems.append("message larger than 28 KB")
    if not isinstance(body, dict) or body.get("type") != "message":
        return [*problems, 'type must be "message"']
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return [*problems, "attachments must be a non-empty list"]
    for i, attachment in enumerate(attachments):
        where = f"attachments[{i}]"
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            problems.append(f"{where}.contentType is not an Adaptive Card")
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            problems.append(f"{where}.content.type must be AdaptiveCard")
            continue
        if card.get("version") not in {"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"}:
            problems.append(f"{where}: version {card.get('version')!r} not one Teams renders")
        elements = card.get("body")
        if not isinstance(elements, list) or not elements:
            problems.append(f"{where}: card body must be a non-empty list")
            elements = []
        for j, element in enumerate(elements):
            kind = element.get("type")
            if kind not in CARD_ELEMENTS:
                problems.append(f"{where}.body[{j}]: unknown element {kind!r}")
            if kind == "TextBlock" and (
                not isinstance(element.get("text"), str) or not element["text"]
            ):
                problems.append(f"{where}.body[{j}]: TextBlock without text")
            if kind == "FactSet":
                for fact in element.get("facts", []):
                    if not (
                        isinstance(fact.get("title"), str) and isinstance(fact.get("value"), str)
                    ):
                        problems.append(f"{where}.body[{j}]: a fact needs string title and value")
        for j, action in enumerate(card.get("actions", [])):
            if action.get("type") not in CARD_ACTIONS:
                problems.append(f"{where}.actions[{j}]: {action.get('type')!r} not supported")
            if action.get("type") == "Action.OpenUrl" and not URL.match(str(action.get("url", ""))):
                problems.append(f"{where}.actions[{j}]: OpenUrl without an absolute url")
    return problems


# --- PagerDuty --------------------------------------------------------------------------

PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def pagerduty_problems(raw: bytes, body: Any) -> list[str]:
    if len(raw) > 512 * 1024:
        return ["event larger than 512 KB"]
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems = []
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        problems.append("routing_key must be the 32-character integration key")
    action = body.get("event_action")
    if action not in PD_ACTIONS:
        problems.append(f"event_action {action!r} not in {sorted(PD_ACTIONS)}")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not 0 < len(dedup) <= 255):
        problems.append("dedup_key must be a string of 1..255")
    if action in ("acknowledge", "resolve") and not dedup:
        problems.append(f"{action} needs a dedup_key")
    if action != "trigger":
        return problems
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return [*problems, "trigger needs a payload"]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary:
        problems.append("payload.summary required")
    elif len(summary) > 1024:
        problems.append("payload.summary longer than 1024")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        problems.append("payload.source required")
    if payload.get("severity") not in PD_SEVERITIES:
        problems.append(
            f"payload.severity {payload.get('severity')!r} not in {sorted(PD_SEVERITIES)}"
        )
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(str(payload["timestamp"]))
        except ValueError:
            problems.append("payload.timestamp is not ISO 8601")
    for name in ("component", "group", "class"):
        if name in payload and not isinstance(payload[name], str):
            problems.append(f"payload.{name} must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        problems.append("payload.custom_details must be an object")
    for i, link in enumerate(body.get("links", [])):
        if not URL.match(str(link.get("href", ""))):
            problems.append(f"links[{i}].href must be a URL")
        if "text" in link and not isinstance(link["text"], str):
            problems.append(f"links[{i}].text must be a string")
    return problems


# --- Opsgenie ---------------------------------------------------------------------------

OPSGENIE_LIMITS = {
    "alias": 512,
    "description": 15000,
    "entity": 512,
    "source": 100,
    "user": 100,
    "note": 25000,
}


def _limits(body: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    problems = []
    for name in names:
        if name in body:
            value = body[name]
            if not isinstance(value, str):
                problems.append(f"{name} must be a string")
            elif len(value) > OPSGENIE_LIMITS[name]:
                problems.append(f"{name} longer than {OPSGENIE_LIMITS[name]}")
    return problems


def opsgenie_create_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems = []
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        problems.append("message required")
    elif len(message) > 130:
        problems.append("message longer than 130")
    problems += _limits(body, ("alias", "description", "entity", "source", "user", "note"))
    tags = body.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > 20
        or any(not isinstance(t, str) or len(t) > 50 for t in tags)
    ):
        problems.append("tags: at most 20 strings of at most 50")
    details = body.get("details", {})
    if not isinstance(details, dict) or any(not isinstance(v, str) for v in details.values()):
        problems.append("details must map strings to strings")
    elif sum(len(k) + len(v) for k, v in details.items()) > 8000:
        problems.append("details longer than 8000 in all")
    if body.get("priority", "P3") not in {"P1", "P2", "P3", "P4", "P5"}:
        problems.append(f"priority {body.get('priority')!r} not in P1..P5")
    actions = body.get("actions", [])
    if len(actions) > 10 or any(len(a) > 50 for a in actions):
        problems.append("actions: at most 10 of at most 50")
    return problems


def opsgenie_action_problems(body: Any, identifier_type: str) -> list[str]:
    problems = []
    if identifier_type not in {"id", "tiny", "alias"}:
        problems.append(f"identifierType {identifier_type!r} not in id, tiny, alias")
    if not isinstance(body, dict):
        return [*problems, "body is not a JSON object"]
    return problems + _limits(body, ("user", "source", "note"))


# --- the server -------------------------------------------------------------------------


@dataclass
class Request:
    service: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    problems: list[str]
    #: When it arrived (event loop time).
    at: float


@dataclass
class PagingServices:
    requests: list[Request] = field(default_factory=list)
    #: PagerDuty: dedup_key -> "triggered" | "acknowledged" | "resolved"
    pagerduty_alerts: dict[str, str] = field(default_factory=dict)
    #: Opsgenie: alias -> {"status": "open" | "closed", "acknowledged": bool, "count": int}
    opsgenie_alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Set to make a service answer with (status, body, headers) instead, once per entry.
    fail_next: dict[str, list[tuple[int, str, dict[str, str]]]] = field(default_factory=dict)
    base: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    # urls a channel is configured with
    @property
    def slack_url(self) -> str:
        return self.base + "/slack" + SLACK_PATH

    @property
    def teams_url(self) -> str:
        return self.base + "/teams" + TEAMS_PATH

    @property
    def pagerduty_url(self) -> str:
        return self.base + "/pagerduty" + PAGERDUTY_PATH

    @property
    def opsgenie_url(self) -> str:
        return self.base + "/opsgenie"

    def of(self, service: str) -> list[Request]:
        return [r for r in self.requests if r.service == service]

    @property
    def problems(self) -> list[str]:
        return [f"{r.service} {r.path}: {p}" for r in self.requests for p in r.problems]

    async def wait_for(self, service: str, count: int, within_s: float = 10.0) -> list[Request]:
        """The service's first `count` requests, once they arrived (checked ones or not)."""
        try:
            async with asyncio.timeout(within_s), self._arrived:
                await self._arrived.wait_for(lambda: len(self.of(service)) >= count)
        except TimeoutError:
            raise AssertionError(
                f"{service}: {len(self.of(service))} of {count} requests; problems: {self.problems}"
            ) from None
        return self.of(service)[:count]

    async def _record(
        self, service: str, request: web.Request, check: Callable[[bytes, Any], list[str]]
    ) -> Request:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        problems = ["body is not JSON"] if body is None else check(raw, body)
        if request.content_type != "application/json":
            problems.append(f"Content-Type {request.content_type!r}, not application/json")
        at = asyncio.get_running_loop().time()
        recorded = Request(service, request.path_qs, dict(request.headers), body, raw, problems, at)
        async with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()
        return recorded

    def _forced(self, service: str) -> web.Response | None:
        queue = self.fail_next.get(service)
        if not queue:
            return None
        status, text, headers = queue.pop(0)
        return web.Response(status=status, text=text, headers=headers)

    async def _slack(self, request: web.Request) -> web.Response:
        if request.path != "/slack" + SLACK_PATH:
            return web.Response(status=404, text="no_service")
        recorded = await self._record("slack", request, lambda _raw, body: slack_problems(body))
        if (forced := self._forced("slack")) is not None:
            return forced
        if recorded.problems:
            return web.Response(
                status=400, text="no_text" if recorded.problems == ["no_text"] else "invalid_blocks"
            )
        return web.Response(status=200, text="ok")

    async def _teams(self, request: web.Request) -> web.Response:
        if request.path_qs != "/teams" + TEAMS_PATH:
            return web.json_response(
                {"error": {"code": "DirectApiAuthorizationRequired"}}, status=401
            )
        recorded = await self._record("teams", request, teams_problems)
        if (forced := self._forced("teams")) is not None:
            return forced
        if recorded.problems:
            return web.json_response(
                {"error": {"code": "InvalidRequestContent", "message": recorded.problems}},
                status=400,
            )
        return web.Response(status=202)

    async def _pagerduty(self, request: web.Request) -> web.Response:
        recorded = await self._record("pagerduty", request, pagerduty_problems)
        if (forced := self._forced("pagerduty")) is not None:
            return forced
        body = recorded.body if isinstance(recorded.body, dict) else {}
        if body.get("routing_key") not in (None, ROUTING_KEY) and not recorded.problems:
            recorded.problems.append("routing_key is not the service's")
        if recorded.problems:
            return web.json_response(
                {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": recorded.problems,
                },
                status=400,
            )
        key = body.get("dedup_key") or uuid.uuid4().hex
        action = body["event_action"]
        state = self.pagerduty_alerts.get(key)
        if action == "trigger":
            if state in (None, "resolved"):
                self.pagerduty_alerts[key] = "triggered"
        elif state in ("triggered", "acknowledged"):  # events for no open alert are dropped
            self.pagerduty_alerts[key] = "acknowledged" if action == "acknowledge" else "resolved"
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status=202
        )

    def _opsgenie_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"GenieKey {OPSGENIE_KEY}":
            return web.json_response(
                {
                    "message": "Key format is not valid!",
                    "took": 0.0,
                    "requestId": str(uuid.uuid4()),
                },
                status=422 if request.headers.get("Authorization") else 401,
            )
        return None

    def _accepted(self) -> web.Response:
        return web.json_response(
            {"result": "Request will be processed", "took": 0.005, "requestId": str(uuid.uuid4())},
            status=202,
        )

    async def _opsgenie_create(self, request: web.Request) -> web.Response:
        recorded = await self._record(
            "opsgenie", request, lambda _raw, body: opsgenie_create_problems(body)
        )
        if (denied := self._opsgenie_auth(request)) is not None:
            recorded.problems.append("bad GenieKey")
            return denied
        if (forced := self._forced("opsgenie")) is not None:
            return forced
        if recorded.problems:
            return web.json_response(
                {"message": "Request body is not valid", "errors": recorded.problems}, status=422
            )
        alias = recorded.body.get("alias") or recorded.body["message"]
        alert = self.opsgenie_alerts.get(alias)
        if alert is None or alert["status"] == "closed":
            self.opsgenie_alerts[alias] = {
                "status": "open",
                "acknowledged": False,
                "count": 1,
                **recorded.body,
            }
        else:
            alert["count"] += 1  # de-duplicated into the open alert
        return self._accepted()

    async def _opsgenie_action(self, request: web.Request) -> web.Response:
        kind = request.query.get("identifierType", "id")
        recorded = await self._record(
            "opsgenie", request, lambda _raw, body: opsgenie_action_problems(body, kind)
        )
        if (denied := self._opsgenie_auth(request)) is not None:
            recorded.problems.append("bad GenieKey")
            return denied
        if (forced := self._forced("opsgenie")) is not None:
            return forced
        if recorded.problems:
            return web.json_response(
                {"message": "Request body is not valid", "errors": recorded.problems}, status=422
            )
        alert = self.opsgenie_alerts.get(request.match_info["identifier"])
        if (
            alert is not None and alert["status"] == "open"
        ):  # processed later; unknown ones fail there
            if request.match_info["action"] == "close":
                alert["status"] = "closed"
            else:
                alert["acknowledged"] = True
        return self._accepted()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/slack/{tail:.*}", self._slack)
        app.router.add_post("/teams/{tail:.*}", self._teams)
        app.router.add_post("/pagerduty" + PAGERDUTY_PATH, self._pagerduty)
        app.router.add_post("/opsgenie/v2/alerts", self._opsgenie_create)
        app.router.add_post(
            "/opsgenie/v2/alerts/{identifier}/{action:acknowledge|close}", self._opsgenie_action
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
