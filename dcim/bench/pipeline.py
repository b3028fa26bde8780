"""`dcim bench pipeline`: readings/s through bus -> sink worker -> InfluxDB (or a null sink).

Reports ratios against baselines measured in the same run, not absolute targets:
the lean line-protocol encoder against influxdb-client's `Point`, and the whole
pipeline against encoding alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import SecretStr

from dcim.bus import Bus
from dcim.reading import Reading
from dcim.sinks.influx import InfluxV1Writer, InfluxV2Writer, Writer
from dcim.sinks.lineprotocol import LineEncoder
from dcim.sinks.worker import SinkWorker
from dcim.vocabulary import load_vocabulary

METRICS = ("ups.load_pct", "ups.battery_charge_pct", "ups.input_voltage_v", "ups.output_current_a")


class NullWriter:
    """Accepts every batch at once: measures the pipeline without a server."""

    name = "null"

    def __init__(self) -> None:
        self.bytes = 0

    async def write(self, body: bytes) -> None:
        self.bytes += len(body)

    async def aclose(self) -> None:
        return None


def synthetic_readings(count: int, devices: int = 500) -> list[Reading]:
    """`count` readings spread over `devices` devices with realistic inventory tags."""
    tags: list[Mapping[str, str]] = [
        MappingProxyType(
            {
                "site": "dc1",
                "room": f"hall-{d % 4}",
                "row": f"row-{d % 20}",
                "rack": f"r{d:04d}",
                "device": f"ups-{d}",
                "kind": "ups",
                "vendor": "Bench",
                "model": "B-1",
            }
        )
        for d in range(devices)
    ]
    base = time.time_ns() - count * 1_000_000
    return [
        Reading(
            f"ups-{i % devices}",
            METRICS[i % len(METRICS)],
            float(i % 1000) / 10,
            "%",
            base + (i // devices) * 1_000_000,
            tags[i % devices],
        )
        for i in range(count)
    ]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_encoders(readings: list[Reading]) -> dict[str, float]:
    """µs per point: our encoder vs influxdb-client's Point on the same readings."""
    from influxdb_client.client.write.point import Point as UntypedPoint
    from influxdb_client.domain.write_precision import WritePrecision

    point_class: Any = UntypedPoint  # influxdb-client has no annotations
    vocabulary = load_vocabulary()
    encoder = LineEncoder(vocabulary)
    sample = readings[: min(len(readings), 50_000)]
    started = time.perf_counter()
    ours = [encoder.line(r) for r in sample]
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = []
    for r in sample:
        measurement, field = vocabulary.storage(r.metric)
        point = (
            point_class(measurement)
            .field(field, r.value)
            .time(r.ts_ns // 1_000_000, WritePrecision.MS)
        )
        for key, value in r.tags.items():
            point.tag(key, value)
        theirs.append(point.to_line_protocol())
    theirs_s = time.perf_counter() - started
    if ours != theirs:
        msg = "encoder output differs from influxdb-client's"
        raise AssertionError(msg)
    return {
        "encode_us_per_point": ours_s / len(sample) * 1e6,
        "influxdb_client_point_us_per_point": theirs_s / len(sample) * 1e6,
        "encoder_speedup_vs_influxdb_client": theirs_s / ours_s,
    }


async def bench_pipeline(
    readings: list[Reading], writer: Writer, batch_size: int
) -> dict[str, float]:
    """Publish every reading on the bus and wait until the sink has written them all."""
    bus = Bus()
    subscription = bus.subscribe("sink:bench", maxsize=len(readings) + 1)
    worker = SinkWorker(
        "bench", writer, subscription.queue, None, batch_size=batch_size, flush_interval_s=0.05
    )
    task = asyncio.create_task(worker.run())
    cpu0, wall0 = _cpu(), time.perf_counter()
    chunk = 1000
    for start in range(0, len(readings), chunk):
        bus.publish(readings[start : start + chunk])
        await asyncio.sleep(0)  # let the worker drain, as polling would
    while worker.stats.points_written + worker.stats.points_dropped < len(readings):  # noqa: ASYNC110 - counters, not events
        await asyncio.sleep(0.01)
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    task.cancel()
    await worker.aclose()
    await writer.aclose()
    return {
        "readings": len(readings),
        "written": worker.stats.points_written,
        "dropped": worker.stats.points_dropped,
        "wall_s": wall,
        "readings_per_s": len(readings) / wall,
        "readings_per_cpu_s": len(readings) / cpu if cpu else float("inf"),
    }


async def run_bench(args: argparse.Namespace) -> int:
    readings = synthetic_readings(args.readings)
    result: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    result.update(bench_encoders(readings))
    result["null_sink"] = await bench_pipeline(readings, NullWriter(), args.batch_size)
    if args.influx_url:
        writer: Writer
        if args.influx_api == "v1":
            writer = InfluxV1Writer(args.influx_url, args.database)
        else:
            token = SecretStr(os.environ[args.token_env]) if args.token_env else None
            writer = InfluxV2Writer(args.influx_url, args.bucket, args.org, token=token)
        result["influxdb"] = await bench_pipeline(readings, writer, args.batch_size)
        result["influxdb"]["target"] = f"{args.influx_api} {args.influx_url}"
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(
            f"encoder: {result['encode_us_per_point']:.2f} µs/point, "
            f"influxdb-client Point: {result['influxdb_client_point_us_per_point']:.2f} µs/point "
            f"({result['encoder_speedup_vs_influxdb_client']:.1f}x)"
        )
        for name in ("null_sink", "influxdb"):
            if name in result:
                r: dict[str, Any] = result[name]
                print(
                    f"{name}: {r['readings']} readings in {r['wall_s']:.2f} s = "
                    f"{r['readings_per_s']:,.0f} readings/s, {r['readings_per_cpu_s']:,.0f} per CPU-s "
                    f"(written {r['written']}, dropped {r['dropped']})"
                )
    return 0
