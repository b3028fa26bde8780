"""The fault drill: the monitor as operators run it, against real servers on free ports,
while each fault an SRE would try is played on it in turn.

Per fault the drill asserts, per series and timestamp, against the file sink (ground
truth, on a disk that never fails) and what the producers know they sent (MQTT
messages the broker acknowledged): points lost (0, or only the in-memory window of a
`kill -9`), points duplicated (0), notifications lost or duplicated (0), no crash, the
fault visible in the self-metrics and the log, and the time to recover. The last test
prints the table (`pytest tests/drill -m drill -s`, or see the `make test` output).

The full disk is a real 4 MiB tmpfs under `monitor.state_dir` where the machine lets us
mount one (we run as root here and in CI); elsewhere that fault cannot be played on a
separate process faithfully and its test is skipped (a failure under CI).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from dcim.clock import SimClock
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.drill.parts import (
    Publisher,
    RogueProxy,
    Webhook,
    on_battery_trap,
    send_datagrams,
)
from tests.support.drill.points import Key
from tests.support.drill.rig import DB, Rig, Row, now_ms
from tests.support.mosquitto_server import Mosquitto, binary_or_skip
from tests.support.servers import InfluxDB1, free_port, missing, require_binary
from tests.support.smallfs import SmallFs, small_fs

pytestmark = [pytest.mark.drill, pytest.mark.asyncio(loop_scope="module")]

TOPIC = "dc1/hall-a/r1/env"
SENSOR_TAGS = (("device", "env-r1"),)


class Drill:
    def __init__(self, rig: Rig, fs: SmallFs, upses: list[UpsDevice]) -> None:
        self.rig = rig
        self.fs = fs
        self.upses = upses


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def drill(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Drill]:
    workdir = tmp_path_factory.mktemp("drill")
    (workdir / "influx").mkdir()
    influx = InfluxDB1(require_binary("influxd", "/usr/bin/influxd"), workdir / "influx")
    (workdir / "mqtt").mkdir()
    broker = Mosquitto(binary_or_skip("mosquitto", "/usr/sbin/mosquitto"), workdir / "mqtt")
    await asyncio.gather(asyncio.to_thread(influx.start), asyncio.to_thread(broker.start))
    influx.create_database(DB)
    clock = SimClock()
    upses = [
        UpsDevice(f"ups{n}", UpsModel(rated_va=10000, rated_w=9000, seed=n), clock)
        for n in (1, 2, 3, 4)
    ]
    agent: SnmpAgent = await serve(
        {f"ups{n}": ups for n, ups in zip((1, 2, 3, 4), upses, strict=True)}
    )
    rogue = RogueProxy(("127.0.0.1", agent.port))
    await rogue.start()
    webhook = Webhook()
    await webhook.start()
    publisher = Publisher(broker.port, TOPIC, 0.1)
    publishing = asyncio.create_task(publisher.run())
    with small_fs(workdir / "fs", 4096) as fs:
        state = fs.path / "state"
        trap_port = free_port(socket.SOCK_DGRAM)
        rig = Rig(
            workdir=workdir,
            state_dir=state,
            influx=influx,
            broker=broker,
            agent_port=agent.port,
            rogue=rogue,
            webhook=webhook,
            publisher=publisher,
            trap_port=trap_port,
        )
        try:
            yield Drill(rig, fs, upses)
        finally:
            code = await rig.monitor.stop()
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
            await webhook.close()
            rogue.close()
            agent.close()
            broker.stop()
            influx.stop()
            assert code == 0, rig.monitor.log()[-3000:]


def mqtt_keys(rig: Rig, start_ms: int, end_ms: int) -> set[Key]:
    """What the MQTT producer knows it delivered (broker acknowledged), as point keys."""
    keys: set[Key] = set()
    base = (
        ("device", "env-r1"),
        ("kind", "sensor"),
        ("rack", "r1"),
        ("room", "hall-a"),
        ("row", "row-1"),
        ("site", "dc1"),
    )
    for ts in rig.publisher.acked:
        if start_ms <= ts <= end_ms:
            for position in ("inlet", "outlet"):
                keys.add(("sensor", tuple(sorted((*base, ("position", position)))), "temp_c", ts))
            keys.add(("sensor", base, "humidity_pct", ts))
            keys.add(("sensor", base, "dew_point_c", ts))
    return keys


def no_crash(rig: Rig) -> None:
    log = rig.monitor.log()
    assert rig.monitor.alive, log[-3000:]
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:4000]


async def test_corrupt_alert_store_and_spool_file_at_start(drill: Drill) -> None:
    rig = drill.rig
    spool = rig.state_dir / "spool" / "influx"
    spool.mkdir(parents=True)
    (spool / f"{1:016d}-3.lp").write_bytes(b"\xff\xfe garbage\nnot line protocol\n\x00")
    (spool / f"{2:016d}-5.lp").mkdir()  # named like a batch, unreadable as one
    (rig.state_dir / "alerts.sqlite3").write_bytes(b"SQLite format 2\x00 garbage " * 200)
    start = now_ms()
    started = time.monotonic()
    await rig.monitor.start()
    await rig.until(
        lambda: bool(rig.self_metric("points_written", sink="influx")), "first self-metrics", 30
    )
    await rig.until(lambda: _has_device_points(rig, start), "first points in InfluxDB", 30)
    recovery = time.monotonic() - started  # from the start of the process
    end = now_ms()
    await rig.until(
        lambda: max(rig.self_metric("points_dropped", sink="influx"), default=0) >= 7,
        "the loss counted",
        10,
    )
    result, _ = await rig.converged(start, end, 20)
    log = rig.monitor.log()
    assert "alert store" in log
    assert "is corrupt" in log
    assert "unreadable" in log
    assert list(rig.state_dir.glob("alerts.sqlite3.corrupt-*"))
    assert max(rig.self_metric("spool_errors", sink="influx")) >= 1
    no_crash(rig)
    assert result.lost == []
    assert result.duplicated == 0
    rig.rows.append(
        Row(
            "corrupt alert store + spool files at start",
            result,
            "0 / 0",
            recovery,
            "log; dcim.points_dropped=7 (InfluxDB refused 2 garbage lines, 5 in an unreadable file), dcim.spool_errors",
        )
    )


async def _has_device_points(rig: Rig, start: int) -> bool:
    stored = await rig.stored(start, now_ms())
    return any(k[0] == "ups" for k in stored)


async def influx_outage(
    rig: Rig,
    *,
    name: str,
    fault: signal.Signals,
    undo: signal.Signals | None,
    down_s: float,
    note: str,
) -> None:
    start = now_ms()
    rig.influx_signal(fault)
    await asyncio.sleep(down_s)
    if undo is None:
        await rig.influx_start()
    else:
        rig.influx_signal(undo)
    back = now_ms()
    result, recovery = await rig.converged(
        start, back, 30, produced=lambda: mqtt_keys(rig, start, back)
    )
    assert "down, spooling" in rig.monitor.log()
    assert max(rig.self_metric("spool_batches", since_ms=start, sink="influx"), default=0) >= 1
    no_crash(rig)
    assert result.lost == [], result.lost[:5]
    assert result.duplicated == 0
    rig.rows.append(Row(name, result, "0 / 0", recovery, note))


async def test_influxdb_killed_and_restarted(drill: Drill) -> None:
    await influx_outage(
        drill.rig,
        name="InfluxDB killed (SIGKILL), back after 3 s",
        fault=signal.SIGKILL,
        undo=None,
        down_s=3.0,
        note="log 'down, spooling'; dcim.spool_batches",
    )


async def test_influxdb_hung(drill: Drill) -> None:
    await influx_outage(
        drill.rig,
        name="InfluxDB hung (SIGSTOP 4 s, SIGCONT)",
        fault=signal.SIGSTOP,
        undo=signal.SIGCONT,
        down_s=4.0,
        note="log 'down, spooling' (timed out); dcim.spool_batches",
    )


async def test_spool_disk_full_while_influxdb_down(drill: Drill) -> None:
    rig, fs = drill.rig, drill.fs
    if not fs.mounted:
        missing("the full-disk fault needs a tmpfs (mount as root)")
    start = now_ms()
    rig.influx_signal(signal.SIGKILL)
    fs.fill()
    await rig.until(
        lambda: "cannot write a batch" in rig.monitor.log(), "the spool's refusal logged", 15
    )
    await rig.until(
        lambda: (
            max(rig.self_metric("points_in_memory", since_ms=start, sink="influx"), default=0) > 0
        ),
        "points held in memory",
        10,
    )
    errors = max(rig.self_metric("spool_errors", since_ms=start, sink="influx"))
    await asyncio.sleep(1.0)
    fs.free()
    await rig.influx_start()
    back = now_ms()
    result, recovery = await rig.converged(
        start, back, 30, produced=lambda: mqtt_keys(rig, start, back)
    )
    no_crash(rig)
    assert result.lost == [], result.lost[:5]
    assert result.duplicated == 0
    assert errors >= 1
    rig.rows.append(
        Row(
            "spool disk full (4 MiB tmpfs) while InfluxDB down",
            result,
            "0 / 0",
            recovery,
            "log 'cannot write a batch'; dcim.spool_errors, dcim.points_in_memory",
        )
    )


async def test_monitor_killed_mid_outage_with_an_alert_firing(drill: Drill) -> None:
    rig, ups1 = drill.rig, drill.upses[0]
    start = now_ms()
    ups1.set_utility(False)

    def told(event: str) -> list[tuple[str, str, str]]:
        return [n for n in rig.webhook.received if n[1] == "ups.output_source" and n[2] == event]

    await rig.until(lambda: bool(told("firing")), "the on-battery page", 15)
    rig.influx_signal(signal.SIGKILL)
    await asyncio.sleep(2.0)
    # what the monitor said it held only in memory, in its last self-metrics before the kill
    held = {
        sink: (rig.self_metric("points_in_memory", sink=sink) or [0.0])[-1]
        for sink in ("influx", "truth")
    }
    killed = now_ms()
    await rig.monitor.kill9()
    await asyncio.sleep(1.0)
    restarted = time.monotonic()
    await rig.monitor.start()
    await rig.influx_start()
    back = now_ms()
    ups1.set_utility(True)
    await rig.until(lambda: bool(told("resolved")), "the resolve", 30)
    # what only memory held at the kill: the batch being built and the queue (<= 1 s)

    def in_memory(key: Key) -> bool:
        return killed - 1500 <= key[3] <= killed

    result, _ = await rig.converged(
        start, back, 30, allowed=in_memory, produced=lambda: mqtt_keys(rig, start, back)
    )
    recovery = time.monotonic() - restarted  # process start, InfluxDB start, replay
    incident = told("firing")[0][0]
    sent = [n for n in rig.webhook.received if n[0] == incident]
    no_crash(rig)
    assert all(in_memory(k) for k in result.lost), [k for k in result.lost if not in_memory(k)][:5]
    assert not [k for k in result.lost if k[0] == "sensor"], "acknowledged MQTT messages lost"
    # MQTT is at-least-once: a message written but not yet acknowledged at the kill comes
    # again; the file sink writes it twice, InfluxDB overwrites it (same series and time)
    assert all(k[0] == "sensor" and in_memory(k) for k in result.twice), result.twice[:5]
    assert [n[2] for n in sent] == ["firing", "resolved"]
    rig.rows.append(
        Row(
            "monitor kill -9 mid-outage, alert firing",
            result,
            f"2 / {len(sent)}",
            recovery,
            f"dcim.points_in_memory in the last self-metrics before the kill: "
            f"{held['influx']:.0f} (influx sink), {held['truth']:.0f} (file sink): the same "
            "polled window, lost by both; MQTT: none lost (acknowledged only once safe), "
            "redelivered ones recognised",
            in_memory=round(held["influx"]),
        )
    )


async def test_mqtt_broker_restarted(drill: Drill) -> None:
    rig = drill.rig
    start = now_ms()
    await asyncio.to_thread(rig.broker.stop)
    await asyncio.sleep(2.0)
    await asyncio.to_thread(rig.broker.start)
    back = now_ms()
    recovery = await rig.until(
        lambda: any(
            k[3] > back for k in mqtt_keys(rig, back, now_ms()) if k in rig.truth.refresh()
        ),
        "MQTT data after the restart",
        30,
    )
    result, _ = await rig.converged(
        start, now_ms(), 30, produced=lambda: mqtt_keys(rig, start, now_ms())
    )
    no_crash(rig)
    assert result.lost == [], result.lost[:5]
    assert result.duplicated == 0
    assert "MQTT broker" in rig.monitor.log()
    rig.rows.append(
        Row(
            "MQTT broker restarted (down 2 s)",
            result,
            "0 / 0",
            recovery,
            "log 'MQTT broker ... reconnecting'; mqtt device.up",
        )
    )


async def test_garbage_truncated_and_oversized_datagrams_to_the_trap_port(drill: Drill) -> None:
    rig = drill.rig
    start = now_ms()
    # from ups-traps, polled once an hour: a trap's values and a poll's at the same
    # millisecond would be one point (see the report), which is not this row's subject
    good = [on_battery_trap(b"ups4", 9000 + n, 30) for n in range(20)]
    bad = [b"\x30\x82garbage" * (n % 7 + 1) for n in range(300)]
    bad += [trap[: len(trap) // 2] for trap in good[:50]]  # truncated
    bad += [b"\x30\x83\x00\xff\xff" + b"\x00" * 60000] * 5  # oversized
    # valid traps 5 ms apart (a trap's time is when it arrived: two in one ms are one point)
    mixed = [d for pair in zip(bad[::16], good, strict=False) for d in pair]
    await asyncio.to_thread(send_datagrams, rig.trap_port, mixed, 0.005)
    await asyncio.to_thread(send_datagrams, rig.trap_port, bad, 0.0002)
    await asyncio.to_thread(
        send_datagrams, rig.trap_port, [on_battery_trap(b"ups4", 9999, -2147483648)], 0
    )
    sent = len(mixed) + len(bad) + 1

    def events() -> list[Key]:
        return [k for k in rig.truth.values("event", "trap", device="ups-traps") if k[3] >= start]

    await rig.until(lambda: len(events()) >= 21, "21 trap events", 15)
    await rig.until(
        lambda: any(
            r in k[1]
            for k in rig.truth.values("dcim_self", "trap_errors")
            for r in [("reason", "malformed")]
        ),
        "device.trap_errors reason=malformed",
        15,
    )
    end = now_ms()
    result, _recovery = await rig.converged(start, end, 20)
    runtimes = [
        rig.truth.raw[k]
        for k in rig.truth.values("ups", "battery_runtime_s", device="ups-traps")
        if k[3] >= start
    ]
    no_crash(rig)
    assert len(events()) == 21
    assert all(float(v) >= 0 for v in runtimes)
    assert any(
        ("reason", "out_of_range") in k[1] for k in rig.truth.values("dcim_self", "trap_errors")
    )
    assert "dropped (malformed" in rig.monitor.log()
    assert result.lost == []
    assert result.duplicated == 0
    rig.rows.append(
        Row(
            f"{sent} datagrams to the trap port: garbage, truncated, oversized, 21 valid (one value -2^31)",
            result,
            "0 / 0",
            None,
            "log; device.trap_errors (malformed, out_of_range); 21 events kept",
        )
    )


async def test_garbage_huge_non_utf8_and_nan_payloads_on_mqtt(drill: Drill) -> None:
    rig = drill.rig
    start = now_ms()
    ts = now_ms() - 3_600_000  # an hour back: no good message has these timestamps
    bad = [b"{not json" for _ in range(20)]
    bad += [b"[" * 200_000, b'{"ts": 1, "humidity": "' + b"x" * 2_000_000 + b'"}']  # deep, huge
    bad += [b"\xff\xfe\x80 not utf-8 \xc3\x28" for _ in range(10)]
    bad += [
        b'{"ts": %d, "temperature": {"inlet": NaN, "outlet": Infinity}, "humidity": -Infinity}'
        % (ts + n)
        for n in range(10)
    ]
    for payload in bad:
        rig.publisher.extra.put_nowait(payload)
    await rig.until(rig.publisher.extra.empty, "the bad payloads published", 15)
    await asyncio.sleep(1.0)

    def reasons() -> set[str]:
        return {
            dict(k[1]).get("reason", "")
            for k in rig.truth.values("dcim_self", "mqtt_errors", device="env-r1")
            if k[3] >= start
        }

    await rig.until(
        lambda: {"bad_json", "not_finite"} <= reasons(), "device.mqtt_errors by reason", 15
    )
    end = now_ms()
    result, _ = await rig.converged(start, end, 20, produced=lambda: mqtt_keys(rig, start, end))
    no_crash(rig)
    nan_stored = [
        k for k in rig.truth.values("sensor", "temp_c", device="env-r1") if ts <= k[3] < ts + 10
    ]
    assert nan_stored == []
    assert result.lost == []
    assert result.duplicated == 0
    assert "dropped (bad_json)" in rig.monitor.log()
    rig.rows.append(
        Row(
            f"{len(bad)} bad MQTT payloads: garbage, 200k-deep, 2 MB, non-UTF-8, NaN/Infinity",
            result,
            "0 / 0",
            None,
            f"log; device.mqtt_errors ({', '.join(sorted(reasons()))})",
        )
    )


async def _play_rogue(rig: Rig, mode: str) -> None:
    """One misbehaviour: its trace in the self-metrics, the device's other values kept."""
    rig.rogue.mode = mode
    since = now_ms()
    if mode in ("nan", "wrong_type"):
        await rig.until(
            lambda: (
                max(
                    rig.self_metric("values_invalid", since_ms=since, device="ups-rogue"), default=0
                )
                >= 1
            ),
            f"{mode}: values_invalid",
            10,
        )
        await rig.until(
            lambda: any(
                k[3] > since for k in rig.truth.values("ups", "load_pct", device="ups-rogue")
            ),
            f"{mode}: the device's other values still arrive",
            10,
        )
    else:
        await rig.until(
            lambda: 0.0 in rig.self_metric("up", since_ms=since, device="ups-rogue"),
            f"{mode}: device down",
            10,
        )


async def test_rogue_snmp_agent(drill: Drill) -> None:
    rig = drill.rig
    start = now_ms()
    for mode in ("nan", "wrong_type", "wrong_request_id", "garbage"):
        await _play_rogue(rig, mode)
    rig.rogue.mode = "clean"
    back = now_ms()
    recovery = await rig.until(
        lambda: rig.self_metric("up", since_ms=back, device="ups-rogue")[-1:] == [1.0],
        "the rogue device up again",
        10,
    )
    end = now_ms()
    result, _ = await rig.converged(start, end, 20, produced=lambda: mqtt_keys(rig, start, end))
    classes = {
        rig.truth.raw[k]
        for k in rig.truth.values("dcim_self", "error_class", device="ups-rogue")
        if k[3] >= start
    }
    healthy = list(rig.self_metric("up", since_ms=start, device="ups-1"))
    healthy_classes = {
        rig.truth.raw[k]
        for k in rig.truth.values("dcim_self", "error_class", device="ups-1")
        if k[3] >= start
    }
    no_crash(rig)
    assert '"internal"' not in classes, classes
    # the other devices, on the same sockets, never saw the rogue's answers: polled on
    # time, up (a slow poll on a loaded machine may time out, nothing else)
    assert len(healthy) >= (end - start) / 1000 / 0.5 * 0.8
    assert sum(healthy) >= 0.9 * len(healthy), healthy
    assert healthy_classes <= {'"none"', '"timeout"'}, healthy_classes
    assert result.lost == []
    assert result.duplicated == 0
    assert "dropped ups.battery_temp_c" in rig.monitor.log()
    rig.rows.append(
        Row(
            "SNMP agent: NaN text, wrong types, wrong request ids, garbage",
            result,
            "0 / 0",
            recovery,
            "log; device.values_invalid, device.up=0 ("
            + ", ".join(sorted(classes - {'"none"'}))
            + ")",
        )
    )


async def test_print_the_table(drill: Drill, capsys: pytest.CaptureFixture[str]) -> None:
    rig = drill.rig
    sent = [(i, e) for i, _, e in rig.webhook.received]
    assert len(sent) == len(set(sent)), f"duplicated notifications: {sent}"
    with capsys.disabled():
        print(
            "\n\nFault drill (tests/drill, `pytest tests/drill -m drill`):\n" + rig.table() + "\n"
        )
    assert len(rig.rows) == 9
