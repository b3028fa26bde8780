"""Build a running sink (writer + worker + spool) from its config."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from dcim.errors import StateDirError
from dcim.inventory import FileSinkConfig, InfluxSinkConfig
from dcim.reading import Reading
from dcim.sinks.file import FileWriter
from dcim.sinks.influx import InfluxV1Writer, InfluxV2Writer, Writer
from dcim.sinks.spool import Spool
from dcim.sinks.worker import SinkStats, SinkWorker


class ConfiguredSink:
    """A sink worker that also owns (and closes) its writer."""

    def __init__(self, worker: SinkWorker, writer: Writer) -> None:
        self.worker = worker
        self._writer = writer

    @property
    def stats(self) -> SinkStats:
        return self.worker.stats

    async def safe_through(self, position: int) -> None:
        await self.worker.safe_through(position)

    async def run(self) -> None:
        await self.worker.run()

    async def aclose(self) -> None:
        try:
            await self.worker.aclose()
        finally:
            await self._writer.aclose()


def build_writer(config: InfluxSinkConfig | FileSinkConfig) -> Writer:
    if isinstance(config, FileSinkConfig):
        return FileWriter(config.path)
    if config.api == "v1":
        assert config.database is not None  # validated by InfluxSinkConfig
        return InfluxV1Writer(
            config.url,
            config.database,
            username=config.username,
            password=config.password,
            timeout_s=config.timeout_s,
        )
    assert config.bucket is not None
    assert config.org is not None
    return InfluxV2Writer(
        config.url, config.bucket, config.org, token=config.token, timeout_s=config.timeout_s
    )


def build_sink_worker(
    config: InfluxSinkConfig | FileSinkConfig,
    source: asyncio.Queue[Reading],
    state_dir: Path,
    skipped: Callable[[], int] | None = None,
) -> ConfiguredSink:
    """Writer, on-disk spool (InfluxDB only) and worker for one configured sink.

    `skipped` counts readings the source queue dropped (its positions the worker passes).
    """
    spool = None
    if isinstance(config, InfluxSinkConfig):
        directory = config.spool.dir or state_dir / "spool" / config.name
        try:
            spool = Spool(directory, max_bytes=int(config.spool.max_mb * 1024 * 1024))
        except OSError as exc:
            setting = f"sinks.{config.name}.spool.dir" if config.spool.dir else "monitor.state_dir"
            detail = exc.strerror or str(exc)
            raise StateDirError(f"{setting}: spool {directory}: {detail}") from None
    writer = build_writer(config)
    worker = SinkWorker(
        config.name,
        writer,
        source,
        spool,
        batch_size=config.batch_size,
        flush_interval_s=config.flush_interval_s,
        skipped=skipped,
    )
    return ConfiguredSink(worker, writer)
