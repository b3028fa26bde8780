"""Fixtures for MQTT tests: real Mosquitto brokers (plain, TLS, password) per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# the helper module sits beside this file; test modules import it by name
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from mosquitto_server import (  # noqa: E402 - after the sys.path line above
    MQTT_PASSWORD,
    MQTT_USER,
    Mosquitto,
    Pki,
    binary_or_skip,
    make_password_file,
    make_pki,
)


@pytest.fixture
def mosquitto_bin() -> str:
    return binary_or_skip("mosquitto", "/usr/sbin/mosquitto")


@pytest.fixture
def mosquitto(mosquitto_bin: str, tmp_path: Path) -> Iterator[Mosquitto]:
    """A private plain broker the test may stop() and start() (same port, sessions kept)."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = Mosquitto(mosquitto_bin, workdir)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mosquitto_tls(mosquitto_bin: str, pki: Pki, tmp_path: Path) -> Iterator[Mosquitto]:
    """A TLS-only broker whose server certificate is signed by the test CA."""
    workdir = tmp_path / "broker-tls"
    workdir.mkdir()
    broker = Mosquitto(mosquitto_bin, workdir, pki=pki, require_client_cert=True)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_auth(mosquitto_bin: str, tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that takes only MQTT_USER / MQTT_PASSWORD (mosquitto_passwd file)."""
    passwd = binary_or_skip("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    workdir = tmp_path / "broker-auth"
    workdir.mkdir()
    password_file = make_password_file(passwd, workdir / "passwd", MQTT_USER, MQTT_PASSWORD)
    broker = Mosquitto(mosquitto_bin, workdir, password_file=password_file)
    broker.start()
    yield broker
    broker.stop()
