"""Mosquitto broker fixtures (plain, TLS, password), for every test folder that needs a broker.

Registered for the whole suite by `pytest_plugins` in tests/conftest.py. Each broker
is private to its test, which may stop() and start() it (same port, sessions kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import Pki, make_pki
from tests.support.mosquitto_server import (
    MQTT_PASSWORD,
    MQTT_USER,
    Mosquitto,
    binary_or_skip,
    make_password_file,
)


def _served(broker: Mosquitto) -> Iterator[Mosquitto]:
    broker.start()
    yield broker
    broker.stop()


def _new_dir(path: Path) -> Path:
    path.mkdir()
    return path


def _password_file(workdir: Path) -> Path:
    """A password file in `workdir` that lets in only MQTT_USER / MQTT_PASSWORD."""
    passwd = binary_or_skip("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    return make_password_file(passwd, workdir / "passwd", MQTT_USER, MQTT_PASSWORD)


@pytest.fixture
def mosquitto_bin() -> str:
    return binary_or_skip("mosquitto", "/usr/sbin/mosquitto")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mosquitto(mosquitto_bin: str, tmp_path: Path) -> Iterator[Mosquitto]:
    """A plain broker."""
    yield from _served(Mosquitto(mosquitto_bin, _new_dir(tmp_path / "broker")))


@pytest.fixture
def mosquitto_tls(mosquitto_bin: str, pki: Pki, tmp_path: Path) -> Iterator[Mosquitto]:
    """A TLS-only broker whose server certificate is signed by the test CA."""
    workdir = _new_dir(tmp_path / "broker-tls")
    yield from _served(Mosquitto(mosquitto_bin, workdir, pki=pki, require_client_cert=True))


@pytest.fixture
def mosquitto_auth(mosquitto_bin: str, tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that takes only MQTT_USER / MQTT_PASSWORD (mosquitto_passwd file)."""
    workdir = _new_dir(tmp_path / "broker-auth")
    password_file = _password_file(workdir)
    yield from _served(Mosquitto(mosquitto_bin, workdir, password_file=password_file))


@pytest.fixture
def mosquitto_tls_auth(mosquitto_bin: str, pki: Pki, tmp_path: Path) -> Iterator[Mosquitto]:
    """TLS only (server certificate from the test CA) and only MQTT_USER / MQTT_PASSWORD."""
    workdir = _new_dir(tmp_path / "broker-tls-auth")
    password_file = _password_file(workdir)
    yield from _served(Mosquitto(mosquitto_bin, workdir, pki=pki, password_file=password_file))
