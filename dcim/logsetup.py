"""Process-wide logging format (one line per event, device named in the message)."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # pysnmp and aiohttp are chatty at INFO about internals operators cannot act on
    for noisy in ("pysnmp", "asyncio", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
