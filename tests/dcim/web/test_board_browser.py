"""The NOC board in a real headless Chromium, on the small hall polled by the real monitor.

One rig for the module (see tests/support/board_rig.py); the tests run in file order and each
leaves the hall as it found it. Screenshots of the overview (both UPS on battery)
and of an acknowledged incident are written to docs/ for the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.board_rig import POLL_S, ROOT, Rig
from tests.support.browser import chromium
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

#: Where the screenshots go: README's pictures only when asked
#: (`DCIM_UPDATE_SCREENSHOTS=1 pytest tests/dcim/web`), else the test's own temp folder,
#: so a test run never rewrites files of the checkout.
DOCS = ROOT / "docs"
#: The issue's bar: a UPS on battery is on the board within one poll interval plus 2 s.
ON_BATTERY_WITHIN_S = POLL_S + 2.0
#: Simulated seconds per wall second while a room heats up after its CRAC stops.
HEAT_RATE = 60.0


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("board"))
    rig.start()
    try:
        yield rig
    finally:
        rig.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def ups_sources(driver: Any) -> dict[str, str]:
    result: dict[str, str] = driver.execute_script(
        "const out = {}; for (const el of document.querySelectorAll('[data-ups]'))"
        " out[el.dataset.ups] = el.dataset.source; return out;"
    )
    return result


def rack_bands(driver: Any) -> dict[str, str]:
    result: dict[str, str] = driver.execute_script(
        "const out = {}; for (const el of document.querySelectorAll('a.rack'))"
        " out[el.dataset.rack] = el.dataset.band; return out;"
    )
    return result


def live_updates(driver: Any) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.updates || 0)"))


def test_each_ups_shows_on_battery_within_a_poll_interval_plus_2s(
    rig: Rig, browser: Any, tmp_path: Path
) -> None:
    assert rig.site is not None
    browser.get(rig.url + "/")
    expected = set(rig.site.topology.ups)
    wait_until(
        lambda: (s := ups_sources(browser)).keys() == expected and set(s.values()) == {"normal"},
        60,
        f"every UPS ({sorted(expected)}) on utility power on the overview",
    )
    wait_until(lambda: live_updates(browser) > 0, 10, "a live update over SSE")
    site = rig.site
    went: dict[str, float] = {}  # when each simulated UPS went on battery (model event)

    def on_event(event: Any) -> None:
        if event.kind == "on_battery":
            went.setdefault(event.device, time.monotonic())

    rig.call(lambda: site.model.listeners.append(on_event))
    rig.call(lambda: site.model.set_utility(False))
    shown: dict[str, float] = {}

    def every_ups_shown() -> bool:
        now = time.monotonic()
        for ups, source in ups_sources(browser).items():
            if source == "battery":
                shown.setdefault(ups, now)
        return shown.keys() == expected

    wait_until(every_ups_shown, 20, "every UPS on battery on the board")
    rig.call(lambda: site.model.listeners.remove(on_event))
    assert went.keys() == expected
    late = {u: round(shown[u] - went[u], 2) for u in expected}
    assert all(delay <= ON_BATTERY_WITHIN_S for delay in late.values()), late
    assert "ON BATTERY" in text_of(browser, "[data-ups]")  # said in words, not only by colour
    time.sleep(POLL_S)  # let the runtime figures of the next poll land before the picture
    path = screenshot_path(tmp_path, "board-overview.png")
    assert browser.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000  # a rendered page, not a blank


def screenshot_path(tmp_path: Path, name: str) -> Path:
    if os.environ.get("DCIM_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        return DOCS / name
    return tmp_path / name


def click_ack(browser: Any, rule: str) -> str:
    """Click (a real click) the Acknowledge button of an open `rule` incident; its id.

    Live updates replace the incident list under the driver's feet: a button found
    a moment ago may be gone, so find it again until a click lands.
    """
    from selenium.common.exceptions import StaleElementReferenceException

    selector = f'[data-rule="{rule}"][data-acknowledged="no"] button.ack'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        buttons = browser.find_elements("css selector", selector)
        try:
            if buttons:
                incident_id: str = buttons[0].get_attribute("data-incident")
                buttons[0].click()
                return incident_id
        except StaleElementReferenceException:
            continue
        time.sleep(0.05)
    pytest.fail(f"no unacknowledged {rule} incident with an Acknowledge button")


def text_of(browser: Any, selector: str) -> str:
    text: str = browser.execute_script(
        "const el = document.querySelector(arguments[0]); return el ? el.textContent : ''",
        selector,
    )
    return text


def test_acknowledge_without_login_is_refused(rig: Rig, browser: Any) -> None:
    browser.delete_all_cookies()
    browser.get(rig.url + "/incidents")
    incident_id = click_ack(browser, "ups.output_source")
    toast = wait_until(
        lambda: browser.execute_script(
            "const t = document.getElementById('toast'); return t.dataset.result && t.textContent"
        ),
        10,
        "the board's answer to the click",
    )
    assert "Refused" in toast
    assert "log in" in toast
    assert not next(i for i in rig.incidents() if i.id == incident_id).acknowledged
    refused = [e for e in rig.audit() if e.action == "acknowledge" and e.target == incident_id]
    assert [(e.actor, e.result) for e in refused] == [("anonymous", "refused")]


def test_acknowledge_on_the_board_reaches_the_alert_engine(
    rig: Rig, browser: Any, tmp_path: Path
) -> None:
    browser.delete_all_cookies()
    browser.get(rig.url + "/login?next=/incidents")
    browser.find_element("name", "user").send_keys("operator")
    browser.find_element("name", "password").send_keys(rig.credentials.operator_password)
    browser.find_element("css selector", "form button[type=submit]").click()
    wait_until(lambda: browser.current_url.endswith("/incidents"), 10, "the incidents page")
    incident_id = click_ack(browser, "ups.output_source")
    wait_until(
        lambda: (
            browser.execute_script("return document.getElementById('toast').dataset.result") == "ok"
        ),
        10,
        "the acknowledgement accepted",
    )
    wait_until(
        lambda: browser.find_elements(
            "css selector", f'[data-incident="{incident_id}"][data-acknowledged="yes"]'
        ),
        10,
        "the incident shown acknowledged",
    )
    token_file = rig.state_dir / "alerts-token"
    token_file.write_text(rig.credentials.api_token)
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "dcim",
            "alerts",
            "--url",
            rig.api_url,
            "--token-file",
            str(token_file),
            "list",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=dict(os.environ),
    )
    alert = next(a for a in json.loads(listed.stdout) if a["id"] == incident_id)
    assert alert["acknowledged"]["by"] == "operator"
    entries = [e for e in rig.audit() if e.action == "acknowledge" and e.target == incident_id]
    assert [(e.actor, e.result) for e in entries][-1] == ("operator", "ok")
    assert entries[-1].detail["rule"] == "ups.output_source"
    browser.execute_script(
        "document.querySelector(`[data-incident='${arguments[0]}']`).scrollIntoView()", incident_id
    )
    path = screenshot_path(tmp_path, "board-incident.png")
    assert browser.save_screenshot(str(path)), path
    site = rig.site
    assert site is not None
    rig.call(lambda: site.model.set_utility(True))


def test_a_crac_failure_turns_the_racks_it_serves_from_normal_to_warning(
    rig: Rig, browser: Any
) -> None:
    assert rig.site is not None
    topology = rig.site.topology
    crac = next(iter(topology.cracs.values()))
    served = {r.id for r in topology.racks.values() if r.row in crac.serves}
    others = set(topology.racks) - served
    browser.get(rig.url + "/")
    wait_until(
        lambda: all(rack_bands(browser).get(r) == "normal" for r in served),
        60,
        f"racks {sorted(served)} normal before the failure",
    )
    site = rig.site
    rig.call(lambda: site.model.set_crac(crac.id, False))
    rig.warp.set_rate(HEAT_RATE)  # the room heats up as well: its inlets rise while we look
    try:
        bands = wait_until(
            lambda: (
                b
                if (b := rack_bands(browser))
                and all(b.get(r) in ("warning", "critical") for r in served)
                else None
            ),
            20,
            f"racks {sorted(served)} warning or critical after {crac.id} failed",
        )
    finally:
        rig.warp.set_rate(1.0)
        rig.call(lambda: site.model.set_crac(crac.id, True))
    assert bands is not None  # what the wait returned: it saw the bands
    rack = text_of(browser, f'a.rack[data-rack="{sorted(served)[0]}"]')
    assert "▲" in rack or "◆" in rack  # the shape says it too
    assert "no cooling" in rack  # and the words say why
    # the racks the failed unit does not serve have their own CRAC: untouched
    assert all(bands.get(r) == "normal" for r in others), bands
