"""The board without a browser: history rings, bands, config, catalogs, and its HTTP server
(login, refusals and audit, the state API, peers, time zones, languages, TLS, InfluxDB history).

The HTTP tests run the real aiohttp server on a free loopback port and feed its
live state through a real bus queue; readings are made here (no simulator needed).
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from babel.messages.extract import extract_from_dir

from dcim.audit import read_audit
from dcim.errors import ConfigError
from dcim.i18n import pick_language, translations
from dcim.inventory import Config, iter_devices, parse_config
from dcim.reading import Reading
from dcim.web.auth import Authenticator, hash_password
from dcim.web.config import HistorySettings
from dcim.web.hub import BUDGET, Hub, Rendered, Topic, changes
from dcim.web.influx import read_history
from dcim.web.live import DeviceHistory, LiveState
from dcim.web.overview import OverviewBuilder
from dcim.web.render import environment, render, render_cells
from dcim.web.server import Board
from dcim.web.thermal import Band, class_bands, engine_bands
from tests.support.certs import self_signed
from tests.support.servers import InfluxDB1, http

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery"  # noqa: S105 - a test user's password
HASH = hash_password(PASSWORD, rounds=4)
TOKEN = "s" * 24

SITE = f"""
sites:
  - id: hcm1
    name: Ho Chi Minh 1
    timezone: Asia/Ho_Chi_Minh
    rooms:
      - id: hall-a
        rows:
          - id: r1
            racks:
              - id: a01
                devices:
                  - {{id: env-a01, kind: sensor, profile: apc-uio, snmp: {{host: 127.0.0.1, community: x}}}}
      - id: hall-b
        ashrae_class: A2
        rows:
          - id: r1
            racks:
              - id: b01
                devices:
                  - {{id: env-b01, kind: sensor, profile: apc-uio, snmp: {{host: 127.0.0.1, community: x}}}}
web:
  port: 0
  users:
    - {{name: op, role: operator, password_hash: "{HASH}"}}
    - {{name: view, role: viewer, password_hash: "{HASH}", language: vi}}
  api_token: {TOKEN}
"""


def config(extra: str = "", site: str = SITE) -> Config:
    return parse_config(site + extra)


def inlet(device: str, value: float, config: Config) -> Reading:
    placed = next(p for p in iter_devices(config) if p.device.id == device)
    tags = {**placed.tags, "position": "inlet", "label": f"{device} Inlet"}
    return Reading(device, "sensor.temp_c", value, "°C", time.time_ns(), tags)


# --- pure parts --------------------------------------------------------------------


def test_history_ring_keeps_a_slot_per_poll_and_stays_within_its_share() -> None:
    history = DeviceHistory(slot_s=30.0, span_s=3600.0, budget_bytes=4 * 1024)
    assert history.capacity == 120
    for poll in range(200):
        for series in range(3):  # readings of one poll share one slot
            history.record(("m", (("i", str(series)),)), 1_000_000 + poll * 30.0, float(poll))
    points = history.points(("m", (("i", "0"),)))
    assert len(points) == 120  # the newest 120 polls, oldest first
    assert points[0][1] == 80.0
    assert points[-1][1] == 199.0
    assert history.nbytes == 120 * (4 + 3 * 4)
    # a device with many series keeps fewer slots, never more than its share
    for series in range(3, 200):
        history.record(("m", (("i", str(series)),)), 1_000_000 + 200 * 30.0, 1.0)
    assert history.bytes_when_full <= 4 * 1024 or history.capacity == 8
    assert history.points(("m", (("i", "199"),)))[-1][1] == 1.0
    assert math.isclose(history.points(("m", (("i", "0"),)))[-1][1], 199.0)


def test_rooms_are_banded_by_their_own_ashrae_class() -> None:
    a1, a2 = class_bands("A1"), class_bands("A2")
    assert (a1.high_warning, a1.high_critical, a2.high_critical) == (27.0, 32.0, 35.0)
    cfg = config()
    live = LiveState(cfg, HistorySettings())
    for device, value in (("env-a01", 33.0), ("env-b01", 33.0)):
        live.observe(inlet(device, value, cfg))
    (site,) = OverviewBuilder(cfg, engine_bands(cfg.alerts)).sites(live, [])
    bands = {
        r.id: (r.band, r.inlet_c) for room in site.rooms for row in room.rows for r in row.racks
    }
    # 33 °C is past A1's allowable 32 (critical) but inside A2's 35 (warning only)
    assert bands == {"a01": (Band.CRITICAL, 33.0), "b01": (Band.WARNING, 33.0)}
    assert [room.ashrae_class for room in site.rooms] == ["A1", "A2"]


def test_a_floor_map_rendered_again_shows_exactly_what_changed() -> None:
    """Rack cells are cached by what they show: a rack that moved is rendered anew, in
    every language, and the page equals one rendered from nothing."""
    cfg = config()
    live = LiveState(cfg, HistorySettings())
    builder = OverviewBuilder(cfg, engine_bands(cfg.alerts))

    def floor(language: str) -> str:
        context = {"sites": builder.sites(live, []), "peers": [], "now": time.time()}
        return render(language, "fragment-sites.html", context)

    live.observe(inlet("env-a01", 22.0, cfg))
    first = floor("en")
    assert 'data-rack="a01" data-band="normal"' in first
    assert "22.0\u00a0°C" in first
    live.observe(inlet("env-a01", 33.0, cfg))
    again, vietnamese = floor("en"), floor("vi")
    assert 'data-rack="a01" data-band="critical"' in again
    assert "33.0\u00a0°C" in again
    assert "22.0\u00a0°C" not in again
    assert translations("vi").gettext("critical") in vietnamese
    render_anew = environment.__wrapped__("en")  # a fresh environment: nothing cached
    context = {"sites": builder.sites(live, []), "peers": [], "now": time.time()}
    assert render_anew.get_template("fragment-sites.html").render(**context) == again


def test_browsers_get_only_the_racks_that_changed_while_the_map_stays() -> None:
    """The floor map's frame (rooms, rows, headings) with a place-holder per rack and per
    site's panels: when a probe moves, the browsers get that rack alone."""
    cfg = config()
    live = LiveState(cfg, HistorySettings())
    builder = OverviewBuilder(cfg, engine_bands(cfg.alerts))

    def rendered() -> Rendered:
        context = {"sites": builder.sites(live, []), "peers": [], "now": 0.0}
        html, frame, cells = render_cells("en", "fragment-sites.html", context)
        assert html == render("en", "fragment-sites.html", context)  # the same page either way
        return Rendered({"sites": html}, {"sites": frame}, cells)

    live.observe(inlet("env-a01", 22.0, cfg))
    live.observe(inlet("env-b01", 22.0, cfg))
    topic = Topic("overview", unused_render, lambda: None)
    first = rendered()
    assert set(first.cells) == {"rack:hcm1/hall-a/a01", "rack:hcm1/hall-b/b01", "panels:hcm1"}
    assert changes(topic, first) == {"sites": first.html["sites"]}  # a new browser: everything
    topic.last, topic.frames, topic.cells = first.html, first.frames, first.cells
    live.observe(inlet("env-a01", 33.0, cfg))
    second = rendered()
    sent = changes(topic, second)
    assert list(sent) == ["=rack:hcm1/hall-a/a01"]
    assert 'data-band="critical"' in sent["=rack:hcm1/hall-a/a01"]
    assert sent["=rack:hcm1/hall-a/a01"].lstrip().startswith("<a ")  # the element itself
    # the frame changed (a room's heading, say): the whole fragment, no cells
    third = Rendered(
        {"sites": second.html["sites"] + "<p>new</p>"},
        {"sites": second.frames["sites"] + "<p>new</p>"},
        second.cells,
    )
    assert changes(topic, third) == {"sites": third.html["sites"]}


async def unused_render() -> Rendered:
    raise AssertionError("the test hands `changes` its renders itself")


def test_the_board_spaces_its_updates_out_when_rendering_costs_too_much() -> None:
    hub = Hub(update_s=1.0)
    assert hub.pause_after(0.02) == 1.0  # cheap: every update_s
    slow = hub.pause_after(0.5)  # half a second of CPU a round: at most BUDGET of the loop
    assert math.isclose(0.5 / (slow + 0.5), BUDGET)
    assert hub.stats.period_s == slow + 0.5


def test_unsafe_board_configs_are_refused() -> None:
    exposed = SITE.replace("  port: 0\n", "  port: 0\n  host: 0.0.0.0\n")
    with pytest.raises(ConfigError, match=r"0\.0\.0\.0 is not loopback: add tls"):
        config(site=exposed)
    with pytest.raises(ConfigError, match="must be a bcrypt hash"):
        config(site=SITE.replace(HASH, "plain-text-password-in-the-config"))


def test_a_board_nobody_could_open_and_an_unknown_zone_are_refused() -> None:
    no_users = SITE.split("  users:", maxsplit=1)[0]
    with pytest.raises(ConfigError, match="nobody could open the board"):
        config(site=no_users)
    with pytest.raises(ConfigError, match="unknown time zone 'Asia/Saigonn'"):
        config(site=SITE.replace("Asia/Ho_Chi_Minh", "Asia/Saigonn"))


def test_every_board_message_has_a_vietnamese_translation() -> None:
    """What `make i18n` extracts (babel.cfg: the board's code and templates), all translated."""
    from jinja2.ext import babel_extract

    method_map = [("dcim/web/**.py", "python"), ("dcim/web/templates/**.html", "jinja2")]
    options = {"dcim/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    ids: set[str] = set()
    for _, _, message, *_ in _extract(method_map, options, babel_extract):
        ids.add(message if isinstance(message, str) else message[0])
    assert len(ids) > 100
    vi = translations("vi")
    same_in_both = {"UPS", "InfluxDB", "%(user)s (%(role)s)"}
    assert sorted(m for m in ids - same_in_both if vi.gettext(m) == m) == []


def _extract(method_map: list[tuple[str, str]], options: dict[str, Any], jinja: Any) -> Any:
    methods = [(pattern, jinja if method == "jinja2" else method) for pattern, method in method_map]
    return extract_from_dir(str(ROOT), methods, options)


def test_language_follows_the_user_then_the_browser() -> None:
    assert pick_language([None], "fr-FR, vi;q=0.8, en;q=0.5") == "vi"
    assert pick_language(["en"], "vi") == "en"
    assert pick_language([None], "de, fr") == "en"
    assert pick_language([None], "vi-VN") == "vi"


def test_the_board_audits_where_the_monitor_audits(tmp_path: Path) -> None:
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    chosen = tmp_path / "audit" / "operators.jsonl"
    cfg = config(f"monitor: {{state_dir: {tmp_path}, audit_file: {chosen}}}\n")
    assert Board(cfg, queue).audit.path == chosen
    default = config(f"monitor: {{state_dir: {tmp_path}}}\n")
    assert Board(default, queue).audit.path == tmp_path / "audit.jsonl"


async def test_each_named_api_token_logs_in_as_its_own_operator() -> None:
    alice, shared = "a" * 24, "b" * 24
    auth = Authenticator([], [("api-token", shared), ("alice", alice)], ttl_s=60)
    session = await auth.login("token", alice, "192.0.2.1")
    assert session is not None
    assert (session.identity.name, session.identity.can_act) == ("alice", True)
    session = await auth.login("token", shared, "192.0.2.1")
    assert session is not None
    assert session.identity.name == "api-token"
    assert await auth.login("token", "c" * 24, "192.0.2.1") is None
    assert await auth.login("alice", alice, "192.0.2.1") is None  # a token is not a password


# --- the HTTP server ------------------------------------------------------------------


class Running:
    def __init__(self, board: Board, queue: asyncio.Queue[Reading]) -> None:
        self.board = board
        self.queue = queue
        self.url = board.url.rstrip("/")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    cfg = config(f"monitor: {{state_dir: {tmp_path}}}\n")
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    board = Board(cfg, queue)
    await board.start()
    task = asyncio.create_task(board.run())
    try:
        yield Running(board, queue)
    finally:
        task.cancel()
        await board.aclose()


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies of 127.0.0.1


async def _login(session: aiohttp.ClientSession, url: str, user: str, password: str) -> int:
    async with session.post(
        url + "/login",
        data={"user": user, "password": password, "next": "/"},
        allow_redirects=False,
    ) as response:
        return response.status


async def test_acting_needs_an_operator_a_csrf_token_and_is_audited(
    running: Running, tmp_path: Path
) -> None:
    url = running.url
    async with _session() as anonymous:
        async with anonymous.get(url + "/") as response:
            assert response.url.path == "/login"  # no anonymous reading here
        async with anonymous.post(url + "/api/v1/incidents/x/ack", json={}) as response:
            assert response.status == 401
        assert await _login(anonymous, url, "op", "wrong password") == 401
    async with _session() as viewer:
        assert await _login(viewer, url, "view", PASSWORD) == 303
        async with viewer.post(url + "/api/v1/incidents/x/ack", json={}) as response:
            assert response.status == 403
        async with viewer.get(url + "/") as response:  # the viewer's own language
            assert "Tổng quan" in await response.text()
    async with _session() as operator:
        assert await _login(operator, url, "op", PASSWORD) == 303
        async with operator.post(
            url + "/api/v1/silences", json={"scope": "room=hall-a", "duration": "1h"}
        ) as response:
            assert response.status == 403  # no CSRF token: refused
    entries = [(e.actor, e.action, e.result) for e in read_audit(tmp_path / "audit.jsonl")]
    assert entries == [
        ("anonymous", "acknowledge", "refused"),
        ("-", "auth_failure", "refused"),
        ("view", "login", "ok"),
        ("view", "acknowledge", "refused"),
        ("op", "login", "ok"),
        ("op", "silence", "refused"),
    ]


async def test_times_are_in_the_site_zone_and_the_state_api_needs_its_token(
    running: Running,
) -> None:
    cfg = running.board.config
    await running.queue.put(inlet("env-a01", 28.5, cfg))
    async with _session() as session:
        assert await _login(session, running.url, "op", PASSWORD) == 303
        async with session.get(running.url + "/") as response:
            page = await response.text()
        assert "Asia/Ho_Chi_Minh" in page
        assert "+07" in page  # the banner's clock in the site's zone
        async with session.get(running.url + "/api/v1/state") as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}

        async def warning_seen() -> bool:
            async with session.get(running.url + "/api/v1/state", headers=headers) as response:
                state = await response.json()
            racks = state["sites"][0]["rooms"][0]["rows"][0]["racks"]
            return bool(racks[0]["band"] == "warning")

        deadline = time.monotonic() + 10
        while not await warning_seen():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)


async def test_a_peer_board_shows_its_sites_and_an_unreachable_one_is_said_plainly(
    running: Running, tmp_path: Path
) -> None:
    other = (
        SITE.replace("hcm1", "vte1")
        .replace("Asia/Ho_Chi_Minh", "Asia/Vientiane")
        .replace("Ho Chi Minh 1", "Vientiane 1")
    )
    peers = f"""  peers:
    - {{name: vientiane, url: "{running.url}"}}
    - {{name: gone, url: "http://127.0.0.1:9", timeout_s: 1}}
  peer_poll_s: 0.5
monitor: {{state_dir: {tmp_path / "b"}}}
"""
    # this board is the peer "vientiane" of the other one: same token, its own site
    cfg = config(peers, site=other)
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    board = Board(cfg, queue)
    await board.start()
    task = asyncio.create_task(board.run())
    try:
        async with _session() as session:
            assert await _login(session, board.url.rstrip("/"), "op", PASSWORD) == 303

            async def page() -> str:
                async with session.get(board.url) as response:
                    return await response.text()

            deadline = time.monotonic() + 15
            while "Ho Chi Minh 1" not in (text := await page()) or "cannot be reached" not in text:
                assert time.monotonic() < deadline, text[-2000:]
                await asyncio.sleep(0.2)
        assert "Vientiane 1" in text  # its own site
        assert 'data-peer="gone"' in text
        assert "Its sites and incidents are NOT shown" in text
    finally:
        task.cancel()
        await board.aclose()


async def test_the_board_serves_tls_when_given_a_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    cfg = config(
        f"  tls: {{cert_file: {cert}, key_file: {key}}}\n  anonymous_read: true\nmonitor: {{state_dir: {tmp_path}}}\n"
    )
    board = Board(cfg, asyncio.Queue())
    await board.start()
    try:
        assert board.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        async with (
            _session() as session,
            session.get(board.url, ssl=context) as response,
        ):
            assert response.status == 200
            assert "Ho Chi Minh 1" in await response.text()
    finally:
        await board.aclose()


async def test_longer_history_is_read_from_influxdb(influxdb1: InfluxDB1, influx_db: str) -> None:
    cfg = config(
        f"sinks: [{{type: influxdb, name: i1, url: '{influxdb1.url}', api: v1, database: {influx_db}}}]\n"
    )
    now = int(time.time())
    lines = "\n".join(
        f"sensor,device=env-a01,site=hcm1,room=hall-a,position=inlet,label=env-a01\\ Inlet temp_c={20 + i / 10} {now - 3600 + i * 60}"
        for i in range(60)
    )
    status, body = http(
        "POST", f"{influxdb1.url}/write?db={influx_db}&precision=s", body=lines.encode()
    )
    assert status == 204, body
    placed = next(p for p in iter_devices(cfg) if p.device.id == "env-a01")
    sink = cfg.sinks[0]
    history = await read_history(sink, "env-a01", ["sensor.temp_c"], placed.tags, 86400.0)  # type: ignore[arg-type]
    (key,) = history
    assert key == ("sensor.temp_c", (("label", "env-a01 Inlet"), ("position", "inlet")))
    values = [v for _, v in history[key]]
    assert 20.0 <= min(values) < max(values) <= 25.9


async def test_the_banner_shows_the_member_its_rooms_handovers_and_coordination_lost(
    running: Running,
) -> None:
    from dcim.coord.view import CoordinationView, HandoverView

    now = time.time()
    view = CoordinationView(
        member="m2",
        members=["m1", "m2"],
        rooms=["dc1/hall-a"],
        connected=False,
        lost=True,
        lost_since=now - 30,
        error="etcd unreachable",
        handovers={("in", "member gone"): 1},
        recent=[HandoverView(now - 60, "dc1/hall-a", "in", "m3", "member gone", 2)],
    )
    running.board.coordination = lambda: view
    async with _session() as session:
        assert await _login(session, running.url, "op", PASSWORD) == 303
        async with session.get(running.url + "/") as response:
            page = await response.text()
    assert 'data-member="m2" data-handovers="1"' in page
    assert "Member m2 of m1, m2; polling dc1/hall-a." in page
    assert "Room dc1/hall-a taken over from m3" in page
    assert "Coordination through etcd lost since" in page
