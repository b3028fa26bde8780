"""Other boards' live state (shards, other sites), read from their `/api/v1/state`.

Each peer is read every `peer_poll_s`; what it sent last is kept with the time it
came, and a peer that cannot be reached is shown as such (with why and since when),
never silently left out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp
from pydantic import BaseModel, ValidationError

from dcim.clock import Clock
from dcim.tls import client_context
from dcim.web.config import WebConfig, WebPeer
from dcim.web.incidents import IncidentView
from dcim.web.overview import SiteView

log = logging.getLogger(__name__)

STATE_PATH = "/api/v1/state"


class BoardState(BaseModel):
    """What `/api/v1/state` answers: this board's own sites and open incidents."""

    at: float
    sites: list[SiteView]
    incidents: list[IncidentView]


@dataclass
class PeerStatus:
    name: str
    url: str
    state: BoardState | None = None
    #: Wall time of the last good answer, and of the first failure since.
    last_ok: float | None = None
    failing_since: float | None = None
    error: str | None = None
    reads: int = 0
    failures: int = 0

    @property
    def reachable(self) -> bool:
        return self.error is None and self.state is not None


@dataclass
class Peers:
    """Reads every configured peer in the background; `status` is what the board shows."""

    web: WebConfig
    clock: Clock = time.time
    status: dict[str, PeerStatus] = field(default_factory=dict)
    version: int = 0

    def __post_init__(self) -> None:
        for peer in self.web.peers:
            self.status[peer.name] = PeerStatus(peer.name, peer.url.rstrip("/"))

    async def run(self) -> None:
        if not self.web.peers:
            return
        async with aiohttp.ClientSession() as session:
            while True:
                await asyncio.gather(*(self._read(session, peer) for peer in self.web.peers))
                await asyncio.sleep(self.web.peer_poll_s)

    async def _read(self, session: aiohttp.ClientSession, peer: WebPeer) -> None:
        status = self.status[peer.name]
        status.reads += 1
        token = peer.token or self.web.api_token
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        ssl = client_context(peer.tls) if peer.url.startswith("https:") else None
        try:
            async with session.get(
                status.url + STATE_PATH,
                headers=headers,
                ssl=ssl if ssl is not None else True,
                timeout=aiohttp.ClientTimeout(total=peer.timeout_s),
            ) as response:
                if response.status != 200:
                    raise PeerError(f"HTTP {response.status}")
                body = await response.read()
            state = BoardState.model_validate_json(body)
        except (TimeoutError, aiohttp.ClientError, OSError, PeerError, ValidationError) as exc:
            self._failed(status, exc)
            return
        if status.error is not None:
            log.info("board peer %s (%s) answers again", peer.name, status.url)
        status.state, status.last_ok = state, self.clock()
        status.error = status.failing_since = None
        self.version += 1

    def _failed(self, status: PeerStatus, exc: BaseException) -> None:
        status.failures += 1
        if isinstance(exc, TimeoutError):
            why = "no answer in time"
        elif isinstance(exc, ValidationError):
            why = "its answer is not a board state (another version?)"
        else:
            why = str(exc) or type(exc).__name__
        if status.error is None:
            status.failing_since = self.clock()
            log.warning("board peer %s (%s) cannot be read: %s", status.name, status.url, why)
        # what it sent last is not shown as if it were live: drop it
        changed = status.error != why or status.state is not None
        status.error, status.state = why, None
        if changed:
            self.version += 1


class PeerError(Exception):
    pass
