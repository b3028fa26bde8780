"""The ops endpoints: GET /metrics, /-/healthy, /-/ready (read-only, no token).

`ops_routes()` gives the routes, so any aiohttp application can mount them (the
monitor's own small listener here, or a web board's server); `start_listener()`
serves them alone. Health and readiness answer as Prometheus' own do: 200 with a
short text, 503 with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpsProbes:
    """What the endpoints ask: the metrics, whether it is ready, what (if anything) died."""

    registry: CollectorRegistry
    ready: Callable[[], bool]
    dead_parts: Callable[[], list[str]]


def ops_routes(probes: OpsProbes) -> list[web.RouteDef]:
    async def metrics(request: web.Request) -> web.Response:
        del request
        # text format 0.0.4: what every Prometheus 2.x and other scraper reads
        body = generate_latest(probes.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def healthy(request: web.Request) -> web.Response:
        del request
        dead = probes.dead_parts()
        if dead:
            return web.Response(status=503, text="dcim is unhealthy: stopped: " + ", ".join(dead))
        return web.Response(text="dcim is healthy.\n")

    async def ready(request: web.Request) -> web.Response:
        del request
        if not probes.ready():
            return web.Response(status=503, text="dcim is not ready: pollers not started.\n")
        return web.Response(text="dcim is ready.\n")

    return [
        web.get("/metrics", metrics),
        web.get("/-/healthy", healthy),
        web.get("/-/ready", ready),
    ]


async def start_listener(probes: OpsProbes, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the ops routes on host:port (0: a free port); returns the runner and the port."""
    app = web.Application()
    app.add_routes(ops_routes(probes))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = int(runner.addresses[0][1])
    log.info("metrics and health on http://%s:%d (/metrics, /-/healthy, /-/ready)", host, bound)
    return runner, bound
