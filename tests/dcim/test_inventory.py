"""Config validation: each kind of mistake gets a message naming the path and the line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dcim.cli import main
from dcim.errors import ConfigError
from dcim.inventory import iter_devices, load_config, parse_config

GOOD = textwrap.dedent(
    """\
    defaults:
      snmp:
        community: {env: TEST_COMMUNITY}
        timeout_s: 1.5
    sites:
      - id: dc1
        rooms:
          - id: hall-a
            devices:
              - id: ups-1
                kind: ups
                profile: ups-mib-rfc1628
                snmp: {host: 10.0.0.5}
            rows:
              - id: r1
                racks:
                  - id: a01
                    devices:
                      - id: ups-rack
                        kind: ups
                        vendor: Eaton
                        profile: ups-mib-rfc1628
                        snmp: {host: 10.0.0.6, port: 1161, timeout_s: 3}
    sinks:
      - type: influxdb
        url: http://127.0.0.1:8086
        api: v1
        database: dcim
        username: writer
        password: {env: TEST_INFLUX_PASSWORD}
    """
)


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_COMMUNITY", "s3cret-community")
    monkeypatch.setenv("TEST_INFLUX_PASSWORD", "hunter2-password")


@pytest.mark.usefixtures("secrets_env")
def test_good_config_places_devices_and_merges_defaults() -> None:
    config = parse_config(GOOD)
    placed = {p.device.id: p for p in iter_devices(config)}
    assert placed["ups-1"].tags == {
        "site": "dc1",
        "room": "hall-a",
        "device": "ups-1",
        "kind": "ups",
    }
    rack = placed["ups-rack"]
    assert (rack.site, rack.room, rack.row, rack.rack) == ("dc1", "hall-a", "r1", "a01")
    assert rack.tags["vendor"] == "Eaton"
    snmp = rack.device.snmp
    assert snmp is not None
    assert snmp.timeout_s == 3  # device value wins over defaults
    assert snmp.port == 1161
    assert snmp.community is not None
    assert snmp.community.get_secret_value() == "s3cret-community"
    assert placed["ups-1"].device.snmp is not None
    assert placed["ups-1"].device.snmp.timeout_s == 1.5


@pytest.mark.usefixtures("secrets_env")
def test_secrets_never_show_in_repr_or_errors() -> None:
    config = parse_config(GOOD)
    text = repr(config) + str(config.model_dump())
    assert "s3cret-community" not in text
    assert "hunter2-password" not in text
    bad = GOOD.replace("port: 1161", "port: 0")
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    assert "s3cret" not in str(info.value)
    assert "hunter2" not in str(info.value)


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


@pytest.mark.usefixtures("secrets_env")
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "port: 1161",
            "port: 99999",
            "sites[0].rooms[0].rows[0].racks[0].devices[0].snmp.port: must be 1..65535 (line 23)",
        ),
        (
            "kind: ups\n                    vendor",
            "kind: toaster\n                    vendor",
            "sites[0].rooms[0].rows[0].racks[0].devices[0].kind: Input should be",
        ),
        ("id: ups-rack", "id: ups-1", "device id 'ups-1' is used twice"),
        ("api: v1", "api: v3", "sinks[0].api: Input should be 'v1' or 'v2' (line 27)"),
        ("database: dcim", "bucket: dcim", "sinks[0]: api v1 needs database (line 25)"),
        (
            "TEST_INFLUX_PASSWORD",
            "NOT_SET_ANYWHERE",
            "environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            "timeout_s: 3}",
            "timeout_s: 3, colour: red}",
            "snmp.colour: Extra inputs are not permitted",
        ),
        ("host: 10.0.0.5}", "host: 10.0.0.5, version: v3}", "snmp: version v3 needs a v3 section"),
        ("id: hall-a", "id: 'hall a!'", "sites[0].rooms[0].id: String should match pattern"),
    ],
)
def test_each_mistake_gets_its_message(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    problems = _problems(GOOD.replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems


def test_several_problems_are_all_reported() -> None:
    text = GOOD.replace("port: 1161", "port: -1").replace("api: v1", "api: v9")
    problems = _problems(
        text.replace("{env: TEST_COMMUNITY}", "public").replace("{env: TEST_INFLUX_PASSWORD}", "pw")
    )
    assert len(problems) == 2, problems


def test_yaml_syntax_error_names_the_line() -> None:
    problems = _problems("sites:\n  - id: dc1\n    rooms: [\n")
    assert problems[0].startswith("line ")


def test_v3_needs_keys_long_enough() -> None:
    text = GOOD.replace(
        "snmp: {host: 10.0.0.5}",
        "snmp: {host: 10.0.0.5, version: v3, v3: {user: noc, auth_key: short, priv_key: alsoshort}}",
    )
    problems = _problems(
        text.replace("{env: TEST_COMMUNITY}", "public").replace("{env: TEST_INFLUX_PASSWORD}", "pw")
    )
    assert any("auth_key must be at least 8 characters" in p for p in problems), problems


@pytest.mark.usefixtures("secrets_env")
def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["validate", str(good)]) == 0
    assert "OK (1 site(s), 2 device(s), 1 sink(s))" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("profile: ups-mib-rfc1628", "profile: no-such-profile"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "device ups-rack: profile: unknown SNMP profile 'no-such-profile'" in err

    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_load_config_reads_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_COMMUNITY", "c")
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-a-file\n")
    path = tmp_path / "c.yaml"
    path.write_text(GOOD.replace("{env: TEST_INFLUX_PASSWORD}", f"{{file: {secret_file}}}"))
    config = load_config(path)
    sink = config.sinks[0]
    assert sink.type == "influxdb"
    assert sink.password is not None
    assert sink.password.get_secret_value() == "from-a-file"
