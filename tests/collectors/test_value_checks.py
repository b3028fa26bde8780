"""One gate for every decoded value: NaN/Infinity text, trap var-binds out of range,
wrong types; and the pace of the warnings about them."""

from __future__ import annotations

import logging
import math
import os
import socket
from types import MappingProxyType

import pytest

from collectors.snmp.decode import DecodeError, compile_converter
from collectors.snmp.profile import SnmpField
from collectors.snmp.traps import TrapReceiver, load_trap_catalog, trap_readings
from dcim.inventory import SnmpTrapConfig
from dcim.plausible import ImplausibleValueError, check_value
from dcim.ratelimit import LogLimiter

ON_BATTERY = (1, 3, 6, 1, 2, 1, 33, 2, 1)
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
MINUTES_LEFT = (1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0)
SECONDS_ON_BATTERY = (1, 3, 6, 1, 2, 1, 33, 1, 2, 2, 0)


@pytest.mark.parametrize("text", [b"NaN", b"nan", b"inf", b"-Infinity", b" +INF "])
def test_snmp_number_text_that_is_not_finite_is_a_decode_error(text: bytes) -> None:
    # before: float("NaN") passed the range check and the reading constructor failed the poll
    field = SnmpField(metric="sensor.temp_c", oid="1.3.6.1.4.1.1.1", valid_range=(-40, 100))
    convert = compile_converter(field)
    with pytest.raises(DecodeError, match="not finite"):
        convert(text, 1.0, False)
    assert convert(b"21.5", 1.0, False) == 21.5


def test_the_shared_check() -> None:
    assert check_value("sensor.temp_c", 21.5) == 21.5
    assert check_value("device.poll_errors", 3.0) == 3  # an int metric stays an int
    cases: list[tuple[str, float | int | bool | str, str]] = [
        ("sensor.temp_c", math.nan, "not_finite"),
        ("sensor.temp_c", -math.inf, "not_finite"),
        ("sensor.temp_c", 5000.0, "out_of_range"),
        ("sensor.temp_c", True, "wrong_type"),
        ("sensor.temp_c", "warm", "wrong_type"),
        ("sensor.humidity_pct", 101.0, "out_of_range"),
        ("ups.battery_status", "exploded", "unknown_enum"),
        ("sensor.door_open", 1, "wrong_type"),
        ("device.poll_errors", 2.5, "wrong_type"),
    ]
    for metric, value, reason in cases:
        with pytest.raises(ImplausibleValueError) as info:
            check_value(metric, value)
        assert info.value.reason == reason, (metric, value)


def test_trap_var_binds_get_the_plausibility_ranges() -> None:
    tags = MappingProxyType({"device": "ups-1"})
    problems: list[tuple[str, str]] = []
    readings = trap_readings(
        "ups-1",
        tags,
        [
            (SNMP_TRAP_OID, ".".join(map(str, ON_BATTERY))),
            (MINUTES_LEFT, -2147483648),
            (SECONDS_ON_BATTERY, 2147483647),
        ],
        load_trap_catalog(),
        1_700_000_000_000_000_000,
        problems=problems,
    )
    # the event still counts: the UPS is on battery; its nonsense values are not stored
    assert [(r.metric, r.value) for r in readings] == [("event.trap", "on_battery")]
    assert [reason for reason, _ in problems] == ["out_of_range", "out_of_range"]
    wrong: list[tuple[str, str]] = []
    sane = trap_readings(
        "ups-1",
        tags,
        [
            (SNMP_TRAP_OID, ".".join(map(str, ON_BATTERY))),
            (MINUTES_LEFT, 12),
            (SECONDS_ON_BATTERY, b"x"),
        ],
        load_trap_catalog(),
        1_700_000_000_000_000_000,
        problems=wrong,
    )
    assert [(r.metric, r.value) for r in sane] == [
        ("event.trap", "on_battery"),
        ("ups.battery_runtime_s", 720.0),
    ]
    assert [reason for reason, _ in wrong] == ["wrong_type"]


def test_log_limiter_says_how_many_it_held_back() -> None:
    now = [0.0]
    limiter = LogLimiter(600.0, clock=lambda: now[0])
    assert limiter.allow("oid-1") == 0
    for _ in range(5):
        now[0] += 60
        assert limiter.allow("oid-1") is None
    assert limiter.allow("oid-2") == 0  # another source has its own pace
    now[0] += 301
    assert limiter.allow("oid-1") == 5


def test_trap_receiver_needs_an_explicit_address() -> None:
    with pytest.raises(ValueError, match="host is required"):
        SnmpTrapConfig.model_validate({"port": 162})


async def test_trap_receiver_asks_for_a_large_receive_buffer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    receiver = TrapReceiver(SnmpTrapConfig(host="127.0.0.1", port=0), [])
    await receiver.start()
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        default = probe.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        probe.close()
        if os.geteuid() == 0:  # SO_RCVBUFFORCE passes net.core.rmem_max
            assert receiver.receive_buffer >= 4096 * 1024
        else:  # capped by the sysctl: said in the log
            assert receiver.receive_buffer >= default
            assert "raise net.core.rmem_max" in caplog.text
        assert receiver.receive_buffer > default
    finally:
        receiver.close()
