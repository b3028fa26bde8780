"""Benchmark: MQTT messages/s the collector sustains (not a test; run by hand).

    .venv/bin/python -m tests.collectors.mqtt.bench_mqtt [--messages 50000] [--qos 1]

Starts a private Mosquitto, a publisher in another process (paho, as fast as the
broker takes it) and the MqttCollector in this process with 100 rack sensors;
reports messages per wall second and per CPU second of this (collector) process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from collectors.mqtt.collector import MqttCollector
from dcim.inventory import iter_devices, parse_config
from dcim.reading import Reading
from tests.support.mosquitto_server import Mosquitto

RACKS = 100


def _inventory(url: str, qos: int) -> str:
    racks = "\n".join(
        f"              - id: r{n:03d}\n"
        f"                devices: [{{id: env-{n:03d}, kind: sensor, profile: rack-env-json, mqtt: {{}}}}]"
        for n in range(RACKS)
    )
    return f"""
sites:
  - id: s1
    rooms:
      - id: h1
        rows:
          - id: row1
            racks:
{racks}
mqtt: {{url: "{url}", qos: {qos}, client_id: dcim-bench, session_expiry_s: 0}}
"""


def publish(port: int, count: int, qos: int) -> None:
    """Child process: publish `count` env messages round-robin over the racks."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    last = None
    for n in range(count):
        body = {
            "ts": time.time(),
            "temperature": {"inlet": 20 + n % 10, "outlet": 30 + n % 10},
            "humidity": 40 + n % 20,
            "dew_point": 8.5,
        }
        last = client.publish(f"s1/h1/r{n % RACKS:03d}/env", json.dumps(body), qos=qos)
    if last is not None:
        last.wait_for_publish(timeout=120)
    client.loop_stop()
    client.disconnect()


async def bench(count: int, qos: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto("/usr/sbin/mosquitto", Path(tmp))
        broker.start()
        try:
            config = parse_config(_inventory(broker.url, qos))
            assert config.mqtt is not None
            collector = MqttCollector(config.mqtt, list(iter_devices(config)))
            done = asyncio.Event()
            readings = 0
            start: list[tuple[float, float]] = []

            def emit(batch: Sequence[Reading]) -> None:
                nonlocal readings
                readings += len(batch)
                if not start and collector.messages == 1:
                    start.append((time.perf_counter(), time.process_time()))
                if collector.messages >= count:
                    done.set()

            task = asyncio.create_task(collector.run(emit))
            while not collector.subscriber.connected:  # noqa: ASYNC110 - bench start-up only
                await asyncio.sleep(0.01)
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--publish-to",
                str(broker.port),
                "--messages",
                str(count),
                "--qos",
                str(qos),
            )
            await asyncio.wait_for(done.wait(), timeout=300)
            wall = time.perf_counter() - start[0][0]
            cpu = time.process_time() - start[0][1]
            await child.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            broker.stop()
    return {
        "messages": float(collector.messages),
        "readings": float(readings),
        "wall_s": wall,
        "cpu_s": cpu,
        "messages_per_s": collector.messages / wall,
        "messages_per_cpu_s": collector.messages / cpu,
        "errors": float(sum(collector.errors_by_topic.values())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--qos", type=int, choices=[0, 1], default=1)
    parser.add_argument("--publish-to", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish_to:
        publish(args.publish_to, args.messages, args.qos)
        return
    result = asyncio.run(bench(args.messages, args.qos))
    print(
        f"qos {args.qos}: {result['messages']:.0f} messages ({result['readings']:.0f} readings) "
        f"in {result['wall_s']:.2f} s: {result['messages_per_s']:.0f} msg/s, "
        f"{result['messages_per_cpu_s']:.0f} msg per CPU-second of the collector "
        f"(cpus: {os.cpu_count()}, errors {result['errors']:.0f})"
    )


if __name__ == "__main__":
    main()
