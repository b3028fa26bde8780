"""The coordination section and the command line around it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dcim.coord.config import CoordinationConfig


def test_defaults_follow_the_lease_and_bad_values_are_refused() -> None:
    config = CoordinationConfig.model_validate({"etcd": {"endpoints": ["https://etcd1:2379"]}})
    assert config.etcd.lease_s == 10
    assert config.sync_interval_s == 1.0
    assert config.lost_after == 10.0
    assert CoordinationConfig.model_validate(
        {"etcd": {"endpoints": ["http://127.0.0.1:2379"], "lease_s": 2}}
    ).sync_interval_s == pytest.approx(0.4)
    bad_sections: list[dict[str, Any]] = [
        {"etcd": {"endpoints": []}},
        {"etcd": {"endpoints": ["etcd1:2379"]}},  # no scheme
        {"etcd": {"endpoints": ["https://e:2379"], "lease_s": 1}},
        {"etcd": {"endpoints": ["https://e:2379"], "username": "dcim"}},  # no password
        {"etcd": {"endpoints": ["https://e:2379"]}, "member": "a b"},
    ]
    for bad in bad_sections:
        with pytest.raises(ValidationError):
            CoordinationConfig.model_validate(bad)


def test_run_refuses_a_static_shard_with_coordination_and_a_member_without(
    tmp_path: Path,
) -> None:
    site = {
        "monitor": {"state_dir": str(tmp_path / "state")},
        "sites": [{"id": "dc1", "rooms": [{"id": "hall-1"}]}],
    }
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(site))
    coordinated = tmp_path / "coordinated.yaml"
    etcd = {"etcd": {"endpoints": ["http://127.0.0.1:1"]}}
    coordinated.write_text(yaml.safe_dump({**site, "coordination": etcd}))
    for path, extra, expected in (
        (coordinated, ["--shard", "1/2"], "run without --shard"),
        (plain, ["--member", "m1"], "needs a coordination section"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "dcim", "run", str(path), *extra],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr
