"""Where the config is found, how conf.d merges into it, and where state lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcim.cli import build_parser, main
from dcim.configfiles import DEFAULT_CONFIG, locate_config
from dcim.errors import ConfigError
from dcim.inventory import load_config

MAIN = """\
monitor:
  state_dir: state
sites:
  - id: par1
    rooms:
      - id: hall-a
        devices:
          - id: ups-a
            kind: ups
            profile: ups-mib-rfc1628
            snmp: {host: 127.0.0.1, community: public}
sinks:
  - {type: file, path: /tmp/out.lp}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_config_is_the_argument_else_the_environment_else_etc(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DCIM_CONFIG", raising=False)
    assert locate_config(None) == DEFAULT_CONFIG == Path("/etc/dcim/dcim.yaml")
    monkeypatch.setenv("DCIM_CONFIG", str(tmp_path / "env.yaml"))
    assert locate_config(None) == tmp_path / "env.yaml"
    assert locate_config(tmp_path / "arg.yaml") == tmp_path / "arg.yaml"


def test_validate_finds_the_config_through_dcim_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "etc" / "dcim" / "dcim.yaml", MAIN)
    monkeypatch.setenv("DCIM_CONFIG", str(config))
    assert main(["validate"]) == 0
    assert f"{config}: OK (1 site(s), 1 device(s), 1 sink(s))" in capsys.readouterr().out


def test_state_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "etc" / "dcim.yaml", MAIN))
    assert config.monitor.state_dir == tmp_path / "etc" / "state"
    absolute = MAIN.replace("state_dir: state", f"state_dir: {tmp_path / 'abs'}")
    assert load_config(write(tmp_path / "b.yaml", absolute)).monitor.state_dir == tmp_path / "abs"
    default = MAIN.replace("monitor:\n  state_dir: state\n", "")
    assert load_config(write(tmp_path / "c.yaml", default)).monitor.state_dir == Path(
        "/var/lib/dcim"
    )


def test_conf_d_merges_mappings_appends_lists_and_replaces_values(tmp_path: Path) -> None:
    main_file = write(tmp_path / "dcim.yaml", MAIN)
    write(
        tmp_path / "conf.d" / "10-hall-b.yaml",
        """\
sites:
  - id: par1-b
    rooms:
      - id: hall-b
        devices:
          - {id: ups-b, kind: ups, profile: ups-mib-rfc1628, snmp: {host: 127.0.0.2, community: public}}
monitor:
  log_level: DEBUG
""",
    )
    write(tmp_path / "conf.d" / "20-level.yaml", "monitor:\n  log_level: WARNING\n")
    write(tmp_path / "conf.d" / "ignored.yml.bak", "not: yaml: at all: [")
    config = load_config(main_file)
    assert [site.id for site in config.sites] == ["par1", "par1-b"]
    assert config.monitor.log_level == "WARNING"  # later file wins
    assert config.monitor.state_dir == tmp_path / "state"  # the main file's value stays
    assert len(config.sinks) == 1


def test_an_error_in_a_drop_in_names_that_file_and_line(tmp_path: Path) -> None:
    main_file = write(tmp_path / "dcim.yaml", MAIN)
    write(
        tmp_path / "conf.d" / "50-bad.yaml",
        "# a comment\nsites:\n  - id: par2\n    rooms:\n      - id: hall-c\n        devices:\n"
        "          - {id: ups-c, kind: ups, profile: ups-mib-rfc1628,\n"
        "             snmp: {host: 10.0.0.1, community: public, port: 70000}}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(main_file)
    assert caught.value.problems == [
        "sites[1].rooms[0].devices[0].snmp.port: must be 1..65535 (conf.d/50-bad.yaml line 8)"
    ]
    # an error in the main file keeps the plain form
    write(tmp_path / "conf.d" / "50-bad.yaml", "")
    write(main_file, MAIN.replace("host: 127.0.0.1,", "host: 127.0.0.1, port: 0,"))
    with pytest.raises(ConfigError) as caught:
        load_config(main_file)
    assert caught.value.problems == [
        "sites[0].rooms[0].devices[0].snmp.port: must be 1..65535 (line 11)"
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "DEBUG", "--log-format", "json", "validate", "x.yaml"],
        ["validate", "x.yaml", "--log-level", "DEBUG", "--log-format", "json"],
        ["--log-format", "json", "validate", "--log-level", "DEBUG", "x.yaml"],
    ],
)
def test_global_options_before_or_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.log_level, args.log_format, str(args.config)) == ("DEBUG", "json", "x.yaml")


def test_global_options_reach_nested_subcommands() -> None:
    args = build_parser().parse_args(["alerts", "list", "--log-level", "ERROR"])
    assert args.log_level == "ERROR"
    assert build_parser().parse_args(["alerts", "list"]).log_level is None


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from dcim import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"dcim {__version__}"
