"""Network UPS Tools reads a simulated hall UPS: `snmp-ups` driver, `upsd`, `upsc`.

The site runs in the test's event loop with a hand-driven clock; NUT's
driver and server are real processes with their own temp config and state
directory, on free loopback ports. The test waits on `upsc`'s answer (another
process's state) with a deadline, never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dcim.clock import ManualClock, SimClock
from dcim.inventory import load_config
from simulators.site import Site
from tests.support.servers import free_port, missing
from tests.support.waiting import eventually

SITE = Path(__file__).resolve().parents[2] / "simulators" / "sites" / "small-site.yaml"
NUT_DIR = Path("/lib/nut")


def nut_binaries() -> tuple[str, str, str]:
    driver, upsd, upsc = NUT_DIR / "snmp-ups", NUT_DIR / "upsd", shutil.which("upsc")
    if upsc is None or not driver.exists() or not upsd.exists():
        missing(
            "Network UPS Tools not installed (apt-get install -y nut-snmp nut-server nut-client)"
        )
    return str(driver), str(upsd), upsc


async def start(*argv: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )


@pytest.fixture
async def nut(tmp_path: Path) -> AsyncIterator[tuple[Site, ManualClock, str, Path]]:
    driver, upsd, _upsc = nut_binaries()
    time = ManualClock(0.0)
    site = Site(load_config(SITE), clock=SimClock(now_fn=time), seed=2)
    await site.start(port=0)
    host, port, community = site.address_of("ups-a")
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o700)
    upsd_port = free_port()
    (tmp_path / "nut.conf").write_text("MODE=standalone\n")
    (tmp_path / "ups.conf").write_text(
        f"maxretry = 3\n[sim]\n  driver = snmp-ups\n  port = {host}:{port}\n"
        f"  community = {community}\n  snmp_version = v2c\n  mibs = ietf\n  pollfreq = 1\n"
    )
    (tmp_path / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {upsd_port}\n")
    (tmp_path / "upsd.users").write_text("")
    for name in ("nut.conf", "ups.conf", "upsd.conf", "upsd.users"):
        (tmp_path / name).chmod(0o600)
    env = {**os.environ, "NUT_CONFPATH": str(tmp_path), "NUT_STATEPATH": str(state)}
    procs = [
        await start(driver, "-a", "sim", "-u", "root", "-D", env=env, log=tmp_path / "driver.log")
    ]
    try:

        async def driver_socket() -> bool:
            return any(state.iterdir())

        await eventually(driver_socket, 20, "snmp-ups to open its socket")
        procs.append(await start(upsd, "-u", "root", "-D", env=env, log=tmp_path / "upsd.log"))
        yield site, time, f"sim@127.0.0.1:{upsd_port}", tmp_path
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        site.stop()


async def ups_status(target: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "upsc",
        target,
        "ups.status",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    return out.decode().strip()


async def test_upsc_shows_on_battery_during_outage_and_online_after(
    nut: tuple[Site, ManualClock, str, Path],
) -> None:
    site, time, target, workdir = nut
    seen: list[str] = []

    async def status_is(wanted: str) -> bool:
        status = await ups_status(target)
        seen.append(status)
        return wanted in status.split()

    try:
        await eventually(lambda: status_is("OL"), 30, "upsc to show OL")
        site.model.set_utility(False)
        time.now += 60
        site.sync()
        await eventually(lambda: status_is("OB"), 30, "upsc to show OB during the outage")
        site.model.set_utility(True)
        time.now += 60
        site.sync()
        await eventually(lambda: status_is("OL"), 30, "upsc to show OL after the outage")
    except TimeoutError:
        logs = "\n".join((workdir / n).read_text()[-1500:] for n in ("driver.log", "upsd.log"))
        raise AssertionError(f"statuses seen: {seen[-5:]}\n{logs}") from None
    assert "OB" in " ".join(seen)
