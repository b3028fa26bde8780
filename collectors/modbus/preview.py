"""`dcim modbus preview` and `dcim modbus poll`: look at a device before writing its map.

`preview` reads one register block and prints it decoded in every data type and
every byte/word order, so the plausible reading (230.1 V, not 1.7e-38) shows
which type and order the device uses. `poll` runs a register map once against a
device and prints the readings; `--explain` prints the request plan first.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from types import MappingProxyType

from collectors.modbus.decode import DataType, Order, raw_codec
from dcim.errors import CollectError
from dcim.inventory import DeviceConfig, ModbusConfig, PlacedDevice

_WIDE = (
    (2, (DataType.INT32, DataType.UINT32, DataType.FLOAT32)),
    (4, (DataType.INT64, DataType.UINT64, DataType.FLOAT64)),
)


def _config(args: argparse.Namespace) -> ModbusConfig:
    return ModbusConfig(
        host=args.host,
        port=args.port,
        transport=args.transport,
        unit_id=args.unit,
        timeout_s=args.timeout,
        retries=0,
    )


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.7g}" if math.isfinite(value) else str(value)
    return str(value)


def render_preview(address: int, registers: list[int]) -> str:
    """The block decoded every way; pure, so it is tested without a device."""
    lines = ["addr    hex     uint16   int16  ABCD BADC"]
    for i, word in enumerate(registers):
        pair = word.to_bytes(2, "big")
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in pair)
        signed = word - 0x10000 if word & 0x8000 else word
        lines.append(
            f"{address + i:<7} 0x{word:04X}  {word:>6}  {signed:>6}  {text}   {text[::-1]}"
        )
    for width, types in _WIDE:
        if len(registers) < width:
            continue
        lines.append("")
        lines.append(f"{16 * width}-bit at   type     " + "".join(f"{o.value:>24}" for o in Order))
        for start in range(len(registers) - width + 1):
            chunk = registers[start : start + width]
            for dtype in types:
                cells = "".join(f"{_number(raw_codec(dtype, o).decode(chunk)):>24}" for o in Order)
                lines.append(f"{address + start:<11} {dtype.value:<8} {cells}")
    lines.append("")
    for order in (Order.ABCD, Order.BADC):
        string = raw_codec(DataType.STRING, order, length=len(registers)).decode(registers)
        lines.append(f"string {order.value}: {string!r}")
    return "\n".join(lines)


async def run_preview(args: argparse.Namespace) -> int:
    from collectors.modbus.client import ModbusGateway

    if not 1 <= args.count <= 125:
        print("dcim modbus preview: --count must be 1..125 (one read)", file=sys.stderr)
        return 2
    config = _config(args)
    gateway = ModbusGateway(config)
    code = 4 if args.function == "input" else 3
    try:
        registers = await gateway.read("preview", args.unit, code, args.address, args.count)
    except CollectError as exc:
        print(f"dcim modbus preview: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        gateway.close()
    print(
        f"{config.host}:{config.port} unit {args.unit} {args.function} registers "
        f"{args.address}-{args.address + args.count - 1} (0-based, as sent)"
    )
    print(render_preview(args.address, registers))
    return 0


async def run_poll(args: argparse.Namespace) -> int:
    from collectors.modbus.client import ModbusGateway
    from collectors.modbus.collector import ModbusCollector
    from collectors.modbus.plan import plan_profile
    from collectors.modbus.profile import load_modbus_profile

    profile = load_modbus_profile(args.profile)
    config = _config(args).model_copy(update={"max_gap": args.max_gap})
    device = DeviceConfig(id=args.host, kind=profile.kind, profile=profile.name, modbus=config)
    tags = MappingProxyType({"device": device.id})
    plan = plan_profile(profile, args.max_gap)
    if args.explain:
        print(plan.explain())
        print()
    gateway = ModbusGateway(config)
    collector = ModbusCollector(PlacedDevice(device, "", "", "", "", tags), plan, gateway, config)
    started = time.perf_counter()
    try:
        readings = await collector.poll()
    except CollectError as exc:
        print(f"dcim modbus poll: {exc} ({exc.error_class})", file=sys.stderr)
        return 1
    finally:
        gateway.close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    for r in readings:
        extra = " ".join(f"{k}={v}" for k, v in r.tags.items() if k != "device")
        print(f"{r.metric:<32} {extra:<28} {_number(r.value):>14} {r.unit or ''}")
    print(f"{len(readings)} readings, {gateway.requests} request(s), {elapsed_ms:.1f} ms")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`dcim modbus preview|poll` options (wired into dcim/cli/modbus.py)."""
    modbus = sub.add_parser("modbus", help="Modbus tools: preview a register block, poll a map")
    actions = modbus.add_subparsers(dest="modbus_command", required=True)
    preview = actions.add_parser("preview", help="print registers decoded in every type and order")
    poll = actions.add_parser("poll", help="poll a device once with a register map")
    for parser in (preview, poll):
        parser.add_argument("--host", required=True)
        parser.add_argument("--port", type=int, default=502)
        parser.add_argument("--unit", type=int, default=1)
        parser.add_argument("--transport", choices=["tcp", "rtu-over-tcp", "tls"], default="tcp")
        parser.add_argument("--timeout", type=float, default=2.0)
    preview.add_argument("--address", type=int, required=True, help="0-based, as sent")
    preview.add_argument("--count", type=int, default=8)
    preview.add_argument("--function", choices=["holding", "input"], default="holding")
    poll.add_argument("--profile", required=True, help="register map name")
    poll.add_argument("--max-gap", type=int, default=8)
    poll.add_argument("--explain", action="store_true", help="print the request plan first")
