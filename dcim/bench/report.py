"""`dcim bench report FILE...`: the README's results table, rendered from bench JSON.

One column per JSON file (e.g. 1,000 and 5,000 devices), one row per figure, so the
table in the README is generated from measurements and can be compared between
commits. Figures a file lacks (a phase not run) show as "-". A run of several
rounds (`--repeat`) shows each round's figure, in order, separated by " · ", so the
spread is in the table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def _phase(result: Result, name: str) -> Result:
    phase = result.get("phases", {}).get(name)
    return phase if isinstance(phase, dict) and "error" not in phase else {}


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value * 1000:.0f} ms" if value >= 0.1 else f"{value * 1000:.1f} ms"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _mib(value: Any) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f} MiB"


def _kib(value: Any) -> str:
    return "-" if value is None else f"{value / 1024:,.1f} KiB"


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}×"


def _events(m: Result) -> str:
    if "events_sent" not in m:
        return "-"
    return f"{m['events_sent']} / {m['events_decided']} / {m['events_notified']}"


def _points(m: Result) -> str:
    if "points_lost" not in m:
        return "-"
    return f"{m['points_lost']} / {m['points_dropped_total']} / {m['spool_batches']}"


def _devices(r: Result) -> str:
    m = _phase(r, "monitor")
    devices = m.get("devices", r.get("devices"))
    text = _num(devices, ",d")
    if m.get("mqtt_devices"):
        text += f" (+ {m['mqtt_devices']:,d})"
    return text


def _polls(m: Result) -> str:
    if "polls_per_s" not in m:
        return "-"
    due = m["expected_polls"] / m["window_s"] if m.get("window_s") else None
    return f"{m['polls_per_s']:,.1f} ({_num(due, ',.1f')})"


def _done(m: Result) -> str:
    if "polls" not in m or not m.get("expected_polls"):
        return "-"
    share = m["polls"] / m["expected_polls"]
    return f"{m['polls']:,} / {m['expected_polls']:,} ({min(share, 9.99):.1%}), {m['failed_polls']:,} failed"


def _pair(m: Result, first: str, second: str) -> str:
    if first not in m:
        return "-"
    return f"{_ms(m[first])} / {_ms(m.get(second))}"


def _landed(m: Result) -> str:
    if "points_landed_per_s" not in m:
        return "-"
    return f"{m['points_landed_per_s']:,.0f} ({m.get('sink_server', '?')})"


def _rss(m: Result) -> str:
    if "rss_bytes" not in m:
        return "-"
    return f"{_mib(m['rss_bytes'])} ({_kib(m.get('rss_per_device_bytes'))})"


Row = tuple[str, Callable[[Result], str]]

ROWS: tuple[Row, ...] = (
    ("devices polled (+ MQTT sensors)", _devices),
    ("polls/s (due)", lambda r: _polls(_phase(r, "monitor"))),
    ("failed polls", lambda r: _num(_phase(r, "monitor").get("failed_polls"), ",d")),
    ("polls done / due: monitor", lambda r: _done(_phase(r, "monitor"))),
    ("polls done / due: pollers alone", lambda r: _done(_phase(r, "fast"))),
    ("polls done / due: snmp_exporter", lambda r: _done(_phase(r, "exporter"))),
    (
        "polls skipped by overload (monitor)",
        lambda r: _num(_phase(r, "monitor").get("skipped_overload"), ",d"),
    ),
    (
        "fleet CPU over the monitor phase, share of a core",
        lambda r: _pct(_phase(r, "monitor").get("agent_cpu_share_of_phase")),
    ),
    (
        "monitor CPU, share of one core",
        lambda r: _pct(_phase(r, "monitor").get("cpu_share_of_one_core")),
    ),
    (
        "polls per CPU-s: monitor",
        lambda r: _num(_phase(r, "monitor").get("polls_per_cpu_s"), ",.0f"),
    ),
    (
        "polls per CPU-s: pollers alone (no sink, no alerts)",
        lambda r: _num(_phase(r, "fast").get("polls_per_cpu_s"), ",.0f"),
    ),
    (
        "polls per CPU-s: snmp_exporter",
        lambda r: _num(_phase(r, "exporter").get("polls_per_cpu_s"), ",.0f"),
    ),
    (
        "monitor vs snmp_exporter, polls per CPU-s",
        lambda r: _ratio(r.get("ratios", {}).get("monitor_vs_exporter_polls_per_cpu_s")),
    ),
    (
        "pollers alone vs snmp_exporter, polls per CPU-s",
        lambda r: _ratio(r.get("ratios", {}).get("fast_vs_exporter_polls_per_cpu_s")),
    ),
    ("poll start lag p50 / p99", lambda r: _pair(_phase(r, "monitor"), "lag_p50_s", "lag_p99_s")),
    (
        "points/s written by the sink",
        lambda r: _num(_phase(r, "monitor").get("points_written_per_s"), ",.0f"),
    ),
    ("points/s landed in the server", lambda r: _landed(_phase(r, "monitor"))),
    ("points lost / dropped / batches spooled", lambda r: _points(_phase(r, "monitor"))),
    ("monitor RSS (per device)", lambda r: _rss(_phase(r, "monitor"))),
    ("snmp_exporter RSS", lambda r: _mib(_phase(r, "exporter").get("rss_bytes"))),
    ("events sent / decided / notified", lambda r: _events(_phase(r, "monitor"))),
    (
        "event → alert decision p50 / p99",
        lambda r: _pair(_phase(r, "monitor"), "decision_p50_s", "decision_p99_s"),
    ),
    (
        "event → webhook received p50 / p99",
        lambda r: _pair(_phase(r, "monitor"), "webhook_p50_s", "webhook_p99_s"),
    ),
    (
        "simulator's socket queue, max (monitor / exporter phase)",
        lambda r: (
            f"{_kib(_phase(r, 'monitor').get('agent_queue_max_bytes'))} / "
            f"{_kib(_phase(r, 'exporter').get('agent_queue_max_bytes'))}"
        ),
    ),
)


def _header(r: Result) -> str:
    rounds = len(r.get("rounds") or [r])
    return (
        f"{r.get('devices', '?'):,} devices, {r.get('snmp_version', 'v2c')}, "
        f"every {r.get('interval_s', 0):g} s" + (f", {rounds} rounds" if rounds > 1 else "")
    )


def _footer(results: Sequence[Result]) -> str:
    seen: list[str] = []
    for r in results:
        line = (
            f"commit {r.get('commit') or '?'}{' (modified)' if r.get('dirty') else ''}, "
            f"{r.get('date', '?')}, {r.get('cpu_model') or r.get('machine', '?')}, "
            f"{r.get('cpus', '?')} CPUs, Python {r.get('python', '?')}, "
            f"{r.get('duration_s', 0):g} s measured"
        )
        placement = r.get("cpu_placement") or {}
        if placement.get("pinned"):
            line += (
                f"; process under test on CPU {placement['measured']}, fleet and servers "
                f"on CPU {placement['others']}"
            )
        if r.get("note"):
            line += f"; {r['note']}"
        if line not in seen:
            seen.append(line)
    return "\n".join(f"_{line}_  " for line in seen)


def _rounds(result: Result) -> list[Result]:
    """Each round of a result as a result of its own (one round for older files)."""
    rounds = result.get("rounds") or []
    return [{**result, **r} for r in rounds] or [result]


def _cell(cell: Callable[[Result], str], result: Result) -> str:
    values = [cell(r) for r in _rounds(result)]
    if len(set(values)) == 1:
        return values[0]
    return " · ".join(values)


def markdown(results: Sequence[Result]) -> str:
    """The results table: one column per result."""
    lines = [
        "| | " + " | ".join(_header(r) for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    for label, cell in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(cell, r) for r in results) + " |")
    return "\n".join(lines) + "\n\n" + _footer(results) + "\n"


def text(results: Sequence[Result]) -> str:
    """The same figures as aligned plain text."""
    width = max(len(label) for label, _ in ROWS)
    out = []
    for r in results:
        out.append(_header(r))
        out.extend(f"  {label:<{width}}  {_cell(cell, r)}" for label, cell in ROWS)
    return "\n".join(out) + "\n"


def run_report(args: argparse.Namespace) -> int:
    results = [json.loads(Path(name).read_text()) for name in args.files]
    print(markdown(results) if args.markdown else text(results), end="")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSON of `dcim bench snmp --json`")
    parser.add_argument("--markdown", action="store_true", help="the README table")
