"""Profiles a site writes itself: found outside the package, checked, tested, used.

A site's folder (given by the config's `profiles.paths` or by DCIM_PROFILE_PATH)
overrides the shipped UPS-MIB profile with its own copy reading one more value,
upsOutputNumLines, as a metric the site declares in its own vocabulary.yaml. The
simulated UPS (the bundled agent, on UDP) is polled with it through `dcim
validate`, `dcim poll` and `dcim run`, each a real `dcim` process. A broken
profile is reported by `dcim profile lint` and `dcim validate` with file and line.
Then `dcim walk` records a real net-snmp snmpd over SNMPv3 authPriv and the
simulated UPS, and `dcim profile test` polls the recordings with a profile.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dcim.clock import SimClock
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.snmpd import Snmpd, UsmUser, require_binary

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_UPS = ROOT / "collectors" / "profiles" / "snmp" / "ups-mib-rfc1628.yaml"
RUN_TIMEOUT_S = 120

SITE_VOCABULARY = """\
metrics:
  ups.output_lines:
    type: int
    description: Number of output lines the UPS feeds (upsOutputNumLines).
"""

EXTRA_SCALAR = """\
  - metric: ups.output_lines
    oid: 1.3.6.1.2.1.33.1.4.3.0        # upsOutputNumLines
    valid_range: [1, 3]
"""


def site_library(root: Path) -> Path:
    """A site profile folder: the shipped UPS-MIB profile plus one scalar, and its metric."""
    (root / "snmp").mkdir(parents=True)
    (root / "vocabulary.yaml").write_text(SITE_VOCABULARY)
    text = SHIPPED_UPS.read_text().replace("scalars:\n", "scalars:\n" + EXTRA_SCALAR, 1)
    (root / "snmp" / "ups-mib-rfc1628.yaml").write_text(text)
    return root


async def dcim(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the `dcim` command (this checkout's) in its own process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dcim",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def ups_agent() -> AsyncIterator[SnmpAgent]:
    ups = UpsDevice("ups1", UpsModel(rated_va=10000.0, rated_w=9000.0, seed=7), SimClock())
    agent = await serve({"site-ups": ups}, "127.0.0.1", 0)
    yield agent
    agent.close()


def inventory(path: Path, port: int, *, library: Path | None, sink: Path) -> Path:
    profiles = f"profiles: {{paths: [{library}]}}\n" if library else ""
    path.write_text(
        f"""\
monitor: {{state_dir: {path.parent / "state"}}}
{profiles}sites:
  - id: lab
    rooms:
      - id: hall
        devices:
          - id: ups-1
            kind: ups
            profile: ups-mib-rfc1628
            poll_interval_s: 1
            snmp: {{host: 127.0.0.1, port: {port}, community: site-ups, version: v2c}}
sinks:
  - {{type: file, path: {sink}, flush_interval_s: 0.2}}
"""
    )
    return path


async def test_site_profile_overrides_the_shipped_one_in_validate_poll_and_run(
    ups_agent: SnmpAgent, tmp_path: Path
) -> None:
    library = site_library(tmp_path / "site-profiles")
    port = ups_agent.port
    sink = tmp_path / "readings.lp"
    config = inventory(tmp_path / "dcim.yaml", port, library=library, sink=sink)

    code, out, err = await dcim("validate", str(config))
    assert code == 0, err
    assert "OK" in out

    # DCIM_PROFILE_PATH, for tools run without an inventory
    args = ["poll", "--host", "127.0.0.1", "--port", str(port), "--community", "site-ups"]
    code, out, err = await dcim(*args, "--json", env={"DCIM_PROFILE_PATH": str(library)})
    assert code == 0, err
    assert '"metric": "ups.output_lines"' in out
    code, out, _ = await dcim(*args, "--json")  # the shipped profile does not read it
    assert code == 0
    assert "ups.output_lines" not in out
    assert "ups.battery_charge_pct" in out

    code, _, err = await dcim("run", str(config), "--duration", "4")
    assert code == 0, err
    # the override is said in the log
    assert f"the site's {library / 'snmp' / 'ups-mib-rfc1628.yaml'} overrides" in err
    lines = sink.read_text().splitlines()
    assert any(line.startswith("ups,") and "output_lines=1i" in line for line in lines), lines[:5]


async def test_broken_site_profile_is_reported_with_file_and_line(
    ups_agent: SnmpAgent, tmp_path: Path
) -> None:
    library = site_library(tmp_path / "site-profiles")
    profile = library / "snmp" / "ups-mib-rfc1628.yaml"
    lines = profile.read_text().splitlines()
    bad = next(n for n, line in enumerate(lines) if "metric: ups.output_lines" in line)
    lines[bad] = lines[bad].replace("ups.output_lines", "ups.output_lanes")
    profile.write_text("\n".join(lines) + "\n")
    config = inventory(tmp_path / "dcim.yaml", ups_agent.port, library=library, sink=tmp_path / "x")

    code, out, _ = await dcim("profile", "lint", str(profile))
    assert code == 1
    assert f"{profile}:{bad + 1}:" in out
    assert "ups.output_lanes" in out

    code, _, err = await dcim("validate", str(config))
    assert code == 2
    assert str(profile) in err
    assert f"line {bad + 1}" in err
    assert "ups.output_lanes" in err


# --- dcim walk -> dcim profile test ------------------------------------------


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    user = UsmUser("walker", "SHA-256", "walk-auth-key-1", "AES", "walk-priv-key-1")
    server = Snmpd(
        require_binary("snmpd", "/usr/sbin/snmpd"), tmp_path_factory.mktemp("snmpd"), users=[user]
    )
    server.start()
    yield server
    server.stop()


AGENT_PROFILE = """\
# net-snmp's own agent: its uptime, as a metric the site declares
name: net-snmp-agent
kind: sensor
sys_object_ids: [1.3.6.1.4.1.8072.3.2]
probe_oids: [1.3.6.1.2.1.1.3]
priority: 10
scalars:
  - metric: agent.uptime_s
    oid: 1.3.6.1.2.1.1.3.0             # sysUpTime (TimeTicks, 0.01 s)
    scale: 0.01
    valid_range: [0, 4294967296]
"""

AGENT_VOCABULARY = """\
metrics:
  agent.uptime_s:
    type: float
    unit: s
    description: Time since the SNMP agent started.
    measurement: agent
"""


async def test_walk_of_snmpd_over_v3_then_profile_test_of_the_recording(
    snmpd: Snmpd, tmp_path: Path
) -> None:
    recording = tmp_path / "snmpd.snmprec"
    v3 = ["--snmp-version", "v3", "--v3-user", "walker", "--auth-proto", "sha256"]
    v3 += ["--auth-key-env", "WALK_AUTH", "--priv-proto", "aes128", "--priv-key-env", "WALK_PRIV"]
    keys = {"WALK_AUTH": "walk-auth-key-1", "WALK_PRIV": "walk-priv-key-1"}
    args = ["walk", "127.0.0.1", "--port", str(snmpd.port), *v3, "--output", str(recording)]
    code, _, err = await dcim(*args, env=keys)
    assert code == 0, err
    text = recording.read_text()
    assert "1.3.6.1.2.1.1.1.0|4|dcim test agent" in text  # the sysDescr snmpd.conf sets
    assert "\n1.3.6.1.2.1.1.3.0|67|" in text  # TimeTicks keep their type

    library = tmp_path / "lib"
    (library / "snmp").mkdir(parents=True)
    (library / "vocabulary.yaml").write_text(AGENT_VOCABULARY)
    profile = library / "snmp" / "net-snmp-agent.yaml"
    profile.write_text(AGENT_PROFILE)
    code, out, err = await dcim("profile", "test", str(profile), "--recording", str(recording))
    assert code == 0, out + err
    assert "net-snmp-agent chosen" in out
    reading = next(line for line in out.splitlines() if line.startswith("agent.uptime_s"))
    assert "snmp:1.3.6.1.2.1.1.3.0" in reading
    assert "0 value(s) dropped" in out


async def test_walk_of_the_simulated_ups_then_profile_test_flags_what_it_lacks(
    ups_agent: SnmpAgent, tmp_path: Path
) -> None:
    recording = tmp_path / "ups.snmprec"
    args = ["walk", "127.0.0.1", "--port", str(ups_agent.port), "--community", "site-ups"]
    code, _, err = await dcim(*args, "--output", str(recording))
    assert code == 0, err
    code, out, err = await dcim("profile", "test", str(SHIPPED_UPS), "--recording", str(recording))
    assert code == 0, out + err
    assert "ups-mib-rfc1628 chosen" in out
    readings = [line for line in out.splitlines() if line.startswith("ups.")]
    assert any(line.startswith("ups.battery_charge_pct") for line in readings)
    # the same profile on the live agent reads the same quantities
    polled = ["poll", "--host", "127.0.0.1", "--port", str(ups_agent.port)]
    code, live, err = await dcim(*polled, "--community", "site-ups", "--json")
    assert code == 0, err
    metrics_live = sorted(
        {line.split('"metric": "')[1].split('"')[0] for line in live.splitlines()}
    )
    metrics_recorded = sorted({line.split()[0] for line in readings})
    assert metrics_recorded == [m for m in metrics_live if m.startswith("ups.")]


def test_shipped_profiles_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    from dcim.cli import main

    folder = ROOT / "collectors" / "profiles"
    files = sorted(str(p) for p in folder.glob("*/*.yaml"))
    assert files
    code = main(["profile", "lint", *files])
    out, _ = capsys.readouterr()
    assert code == 0, out
    assert out.count(": OK (") == len(files)


@pytest.fixture(autouse=True)
def _forget_site_paths() -> Iterator[None]:
    """Tests in this process (lint) must not leave a site's folders on the search path."""
    yield
    from collectors.shipped import use_profile_paths

    use_profile_paths([])


def test_the_worked_example_in_docs_lints_clean(tmp_path: Path) -> None:
    from dcim.cli.profile import lint_file

    text = (ROOT / "docs" / "profiles.md").read_text()
    start = text.index("# snmp/acme-envirobox.yaml")
    example = text[start : text.index("```", start)]
    path = tmp_path / "snmp" / "acme-envirobox.yaml"
    path.parent.mkdir()
    path.write_text(example)
    report = lint_file(path)
    assert report.problems == []
    assert "1 scalar(s), 1 table(s) with 2 column(s)" in report.summary
