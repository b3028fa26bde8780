"""`dcim grafana push` against a recording stand-in for Grafana's HTTP API.

Grafana itself cannot be installed on this machine (no package in the
registries it reaches), so an aiohttp server implements the few endpoints
push uses - folders, dashboards by uid, dashboard save - with Grafana's
status codes and bodies, checks the bearer token, and records every call.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from dcim.cli import main
from dcim.cli.demo.hall import demo_inventory
from dcim.grafana.build import Generated, build_dashboards
from dcim.grafana.push import PushError, push

TOKEN = "glsa_test-token-value"  # noqa: S105 - a test token for the stand-in server


@dataclass
class FakeGrafana:
    """Folders and dashboards as Grafana keeps them, and the calls that changed them."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    url: str = ""

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith("GET")]


def _app(grafana: FakeGrafana) -> web.Application:
    @web.middleware
    async def auth_and_record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        grafana.calls.append(f"{request.method} {request.path}")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "invalid API key"}, status=401)
        return await handler(request)

    async def list_folders(_: web.Request) -> web.Response:
        return web.json_response(list(grafana.folders.values()))

    async def create_folder(request: web.Request) -> web.Response:
        body = await request.json()
        if body["uid"] in grafana.folders:
            return web.json_response(
                {"message": "a folder with the same uid already exists"}, status=409
            )
        grafana.folders[body["uid"]] = {
            "uid": body["uid"],
            "title": body["title"],
            "id": len(grafana.folders) + 1,
        }
        return web.json_response(grafana.folders[body["uid"]])

    async def update_folder(request: web.Request) -> web.Response:
        body = await request.json()
        grafana.folders[request.match_info["uid"]]["title"] = body["title"]
        return web.json_response(grafana.folders[request.match_info["uid"]])

    async def get_dashboard(request: web.Request) -> web.Response:
        stored = grafana.dashboards.get(request.match_info["uid"])
        if stored is None:
            return web.json_response({"message": "Dashboard not found"}, status=404)
        return web.json_response(stored)

    async def save_dashboard(request: web.Request) -> web.Response:
        body = await request.json()
        doc = body["dashboard"]
        if body.get("folderUid") not in grafana.folders:
            return web.json_response({"message": "folder not found"}, status=400)
        old = grafana.dashboards.get(doc["uid"])
        version = old["dashboard"]["version"] + 1 if old else 1
        saved = {**doc, "id": 100 + len(grafana.dashboards), "version": version}
        grafana.dashboards[doc["uid"]] = {
            "dashboard": saved,
            "meta": {"folderUid": body["folderUid"]},
        }
        return web.json_response({"status": "success", "uid": doc["uid"], "version": version})

    app = web.Application(middlewares=[auth_and_record])
    app.router.add_get("/api/folders", list_folders)
    app.router.add_post("/api/folders", create_folder)
    app.router.add_put("/api/folders/{uid}", update_folder)
    app.router.add_get("/api/dashboards/uid/{uid}", get_dashboard)
    app.router.add_post("/api/dashboards/db", save_dashboard)
    return app


@pytest.fixture
async def grafana() -> AsyncIterator[FakeGrafana]:
    state = FakeGrafana()
    runner = web.AppRunner(_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@pytest.fixture
def generated() -> list[Generated]:
    return build_dashboards(demo_inventory())


async def test_first_push_creates_folder_and_dashboards(
    grafana: FakeGrafana, generated: list[Generated]
) -> None:
    changes = await asyncio.to_thread(push, generated, grafana.url, TOKEN)
    assert [(c.kind, c.uid, c.action) for c in changes] == [
        ("folder", "dcim-folder-demo", "created"),
        ("dashboard", "dcim-noc-demo", "created"),
        ("dashboard", "dcim-power-demo", "created"),
        ("dashboard", "dcim-thermal-demo", "created"),
        ("dashboard", "dcim-environment-demo", "created"),
        ("dashboard", "dcim-device-demo", "created"),
    ]
    assert grafana.writes() == ["POST /api/folders"] + ["POST /api/dashboards/db"] * 5
    for item in generated:
        stored = grafana.dashboards[item.dashboard.uid]
        assert stored["meta"]["folderUid"] == "dcim-folder-demo"
        assert {
            k: v for k, v in stored["dashboard"].items() if k not in ("id", "version")
        } == item.to_json()


async def test_second_push_changes_nothing_and_says_so(
    grafana: FakeGrafana, generated: list[Generated]
) -> None:
    await asyncio.to_thread(push, generated, grafana.url, TOKEN)
    grafana.calls.clear()
    changes = await asyncio.to_thread(push, generated, grafana.url, TOKEN)
    assert {c.action for c in changes} == {"unchanged"}
    assert grafana.writes() == []
    assert grafana.calls == ["GET /api/folders"] + [
        f"GET /api/dashboards/uid/{g.dashboard.uid}" for g in generated
    ]


async def test_push_overwrites_only_what_differs(
    grafana: FakeGrafana, generated: list[Generated]
) -> None:
    await asyncio.to_thread(push, generated, grafana.url, TOKEN)
    edited = copy.deepcopy(grafana.dashboards["dcim-power-demo"])
    edited["dashboard"]["title"] = "edited in the UI"
    grafana.dashboards["dcim-power-demo"] = edited
    grafana.folders["dcim-folder-demo"]["title"] = "renamed"
    grafana.calls.clear()
    changes = await asyncio.to_thread(push, generated, grafana.url, TOKEN)
    assert [(c.uid, c.action) for c in changes if c.action != "unchanged"] == [
        ("dcim-folder-demo", "updated"),
        ("dcim-power-demo", "updated"),
    ]
    assert grafana.writes() == ["PUT /api/folders/dcim-folder-demo", "POST /api/dashboards/db"]
    assert grafana.dashboards["dcim-power-demo"]["dashboard"]["title"] == "Demo data centre - Power"
    assert grafana.dashboards["dcim-power-demo"]["dashboard"]["version"] == 2


async def test_bad_token_is_a_clear_error_without_the_token(
    grafana: FakeGrafana, generated: list[Generated]
) -> None:
    with pytest.raises(PushError) as caught:
        await asyncio.to_thread(push, generated, grafana.url, "wrong-token-value")
    message = str(caught.value)
    assert (
        message == f"Grafana at {grafana.url} rejected the token (HTTP 401) while listing folders"
    )
    assert "wrong-token-value" not in message
    assert grafana.writes() == []


async def test_nothing_listening_is_a_clear_error(generated: list[Generated]) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # the port is now closed: connection refused
    with pytest.raises(
        PushError, match=rf"cannot reach Grafana at http://127.0.0.1:{port} while listing folders"
    ):
        await asyncio.to_thread(push, generated, f"http://127.0.0.1:{port}", TOKEN)


async def test_a_url_that_is_not_grafana_is_a_clear_error(
    grafana: FakeGrafana, generated: list[Generated]
) -> None:
    with pytest.raises(
        PushError, match=r"answered HTTP 404 while listing folders.*is this Grafana's URL"
    ):
        await asyncio.to_thread(push, generated, f"{grafana.url}/not-grafana", TOKEN)


async def test_cli_push_reads_the_token_from_env_and_prints_changes(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MY_GRAFANA_TOKEN", TOKEN)
    argv = ["grafana", "push", "--url", grafana.url, "--token-env", "MY_GRAFANA_TOKEN"]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "created   dashboard dcim-noc-demo" in out
    assert out.rstrip().endswith("6 change(s)")
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("0 change(s)")
    assert TOKEN not in out


async def test_cli_push_token_from_file_and_errors(
    grafana: FakeGrafana,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("not-the-token\n")
    argv = ["grafana", "push", "--url", grafana.url, "--token-file", str(token_file)]
    assert await asyncio.to_thread(main, argv) == 1
    err = capsys.readouterr().err
    assert "rejected the token (HTTP 401)" in err
    assert "not-the-token" not in err
    monkeypatch.delenv("UNSET_GRAFANA_TOKEN", raising=False)
    argv = ["grafana", "push", "--url", grafana.url, "--token-env", "UNSET_GRAFANA_TOKEN"]
    assert await asyncio.to_thread(main, argv) == 2
    assert "environment variable UNSET_GRAFANA_TOKEN is not set" in capsys.readouterr().err
    assert json.dumps(grafana.writes()) == "[]"
