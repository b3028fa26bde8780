"""The wheel installs into a fresh venv and runs: `dcim --version`, `dcim validate` on a
config found through DCIM_CONFIG in an /etc-like folder, profiles and rule packs included.

Kept fast and offline: the wheel is built from a copy of the checkout with this venv's
setuptools (`--no-build-isolation --no-index`), and installed `--no-deps` into a venv
made without pip, whose dependencies come from this venv's site-packages through a
`.pth` line (a path only: the checkout's editable install is not seen there, so the
`dcim` that runs is the wheel's, which the test checks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dcim", "collectors", "simulators")
SKIP = shutil.ignore_patterns(
    ".venv*", ".git", "var", "build", "*.egg-info", "__pycache__", ".*_cache", "*.pyc", "*.lp"
)

CONFIG = """\
monitor: {state_dir: /var/lib/dcim-test}
sites:
  - id: par1
    rooms:
      - id: hall-a
        devices:
          - {id: ups-a, kind: ups, profile: ups-mib-rfc1628, snmp: {host: 10.0.0.1, community: public}}
          - {id: meter-a, kind: meter, profile: eastron-sdm630, modbus: {host: 10.0.0.2}}
        rows:
          - id: row-1
            racks:
              - id: a01
                devices:
                  - {id: env-a01, kind: sensor, profile: rack-env-json, mqtt: {}}
mqtt: {url: "mqtt://127.0.0.1:1883"}
alerts: {}
"""


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def data_files() -> set[str]:
    """Every non-Python file of the packages (profiles, rule packs, sites, assets)."""
    return {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }


def test_wheel_installs_into_a_fresh_venv_and_validates_a_config(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    wheels = tmp_path / "wheels"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        str(source),
        "-w",
        wheels,
    )
    (wheel,) = wheels.glob("dcim-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = sorted(data_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    assert "collectors/profiles/snmp/ups-mib-rfc1628.yaml" in names
    assert "dcim/alerts/rules/power.yaml" in names

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    purelib = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    (purelib / "dcim-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        wheel,
    )

    etc = tmp_path / "etc" / "dcim"
    etc.mkdir(parents=True)
    (etc / "dcim.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DCIM_CONFIG")}
    env["DCIM_CONFIG"] = str(etc / "dcim.yaml")
    work = tmp_path / "elsewhere"  # not the checkout: nothing imported from it
    work.mkdir()
    where = run(
        python,
        "-c",
        "import dcim, collectors; print(dcim.__file__, collectors.__file__)",
        env=env,
        cwd=work,
    )
    assert all(path.startswith(str(purelib)) for path in where.split()), where
    from dcim import __version__

    assert (
        run(venv / "bin" / "dcim", "--version", env=env, cwd=work).strip() == f"dcim {__version__}"
    )
    out = run(venv / "bin" / "dcim", "validate", env=env, cwd=work)
    assert out.strip() == f"{etc / 'dcim.yaml'}: OK (1 site(s), 3 device(s), 0 sink(s))"
