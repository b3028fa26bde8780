"""A Modbus register map a site writes itself: found outside the package, used by every command.

The site's folder overrides the shipped ABB M4M map with its own copy that reads
one more value, total reactive power, as a metric the site declares in its own
vocabulary.yaml. A register dump of an M4M (the vendor map's test dump plus that
register) is served by `simulators.register_dump` and polled by real `dcim`
processes: `validate` and `run` find the map through the config's
`profiles.paths`, `poll DEVICE --config` through DCIM_PROFILE_PATH. A broken
site map is reported with file and line.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.register_dump import DumpServer, parse_dump

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "collectors" / "profiles" / "modbus" / "abb-m4m.yaml"
DUMP = Path(__file__).parent / "modbus_dumps" / "abb-m4m.yaml"
RUN_TIMEOUT_S = 120

SITE_VOCABULARY = """\
metrics:
  meter.reactive_power_var:
    type: float
    unit: var
    description: Total reactive power through the meter.
"""

EXTRA_FIELD = (
    "  - {metric: meter.reactive_power_var, address: 0x5B1C, type: int32, scale: 0.01, "
    "unit: var, missing: [2147483647], valid_range: [-100000000, 100000000]}\n"
)


def site_library(root: Path) -> Path:
    (root / "modbus").mkdir(parents=True)
    (root / "vocabulary.yaml").write_text(SITE_VOCABULARY)
    text = SHIPPED.read_text().replace("fields:\n", "fields:\n" + EXTRA_FIELD, 1)
    (root / "modbus" / "abb-m4m.yaml").write_text(text)
    return root


async def dcim(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
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
async def meter() -> AsyncIterator[DumpServer]:
    # the vendor dump plus total reactive power: 12345.67 var at 0.01 var
    text = DUMP.read_text().replace(
        "registers:\n  holding:\n", "registers:\n  holding:\n    0x5B1C: [0x0012, 0xD687]\n", 1
    )
    server = DumpServer(parse_dump(text, "m4m+var"))
    await server.start()
    yield server
    await server.close()


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
          - id: meter-1
            kind: meter
            profile: abb-m4m
            poll_interval_s: 1
            modbus: {{host: 127.0.0.1, port: {port}, unit_id: 1, timeout_s: 2}}
sinks:
  - {{type: file, path: {sink}, flush_interval_s: 0.2}}
"""
    )
    return path


async def test_site_map_overrides_the_shipped_one_in_validate_poll_and_run(
    meter: DumpServer, tmp_path: Path
) -> None:
    library = site_library(tmp_path / "site-profiles")
    sink = tmp_path / "readings.lp"
    config = inventory(tmp_path / "dcim.yaml", meter.port, library=library, sink=sink)

    code, out, err = await dcim("validate", str(config))
    assert code == 0, err
    assert "OK" in out

    # DCIM_PROFILE_PATH: an inventory that names no site folder
    bare = inventory(tmp_path / "bare.yaml", meter.port, library=None, sink=sink)
    code, out, err = await dcim(
        "poll", "meter-1", "--config", str(bare), "--json", env={"DCIM_PROFILE_PATH": str(library)}
    )
    assert code == 0, err
    assert '"metric": "meter.reactive_power_var", "value": 12345.67' in out
    code, out, err = await dcim("poll", "meter-1", "--config", str(bare), "--json")
    assert code == 0, err  # the shipped map: the same meter, without the site's metric
    assert "meter.reactive_power_var" not in out
    assert '"metric": "meter.frequency_hz", "value": 49.98' in out

    code, _, err = await dcim("run", str(config), "--duration", "4")
    assert code == 0, err
    assert f"the site's {library / 'modbus' / 'abb-m4m.yaml'} overrides" in err
    lines = sink.read_text().splitlines()
    assert any(
        line.startswith("meter,") and "reactive_power_var=12345.67" in line for line in lines
    )


async def test_broken_site_map_is_reported_with_file_and_line(
    meter: DumpServer, tmp_path: Path
) -> None:
    library = site_library(tmp_path / "site-profiles")
    profile = library / "modbus" / "abb-m4m.yaml"
    lines = profile.read_text().splitlines()
    bad = next(n for n, line in enumerate(lines) if "meter.reactive_power_var" in line)
    lines[bad] = lines[bad].replace("type: int32", "type: int24")
    profile.write_text("\n".join(lines) + "\n")
    config = inventory(tmp_path / "dcim.yaml", meter.port, library=library, sink=tmp_path / "x")

    code, out, _ = await dcim("profile", "lint", str(profile))
    assert code == 1
    assert f"{profile}:{bad + 1}:" in out
    assert "fields[0].type" in out

    code, _, err = await dcim("validate", str(config))
    assert code == 2
    assert str(profile) in err
    assert f"line {bad + 1}" in err


@pytest.fixture(autouse=True)
def _forget_site_paths() -> AsyncIterator[None]:  # type: ignore[misc]
    yield
    from collectors.shipped import use_profile_paths

    use_profile_paths([])
