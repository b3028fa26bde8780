"""InfluxDB writers: POST one body of line protocol (ms timestamps), classify failures.

SinkUnavailableError: keep the data and retry (refused, timeout, 5xx, 429, and
401/403/404 too: wrong credentials or a missing database are fixed by the operator,
after which the same bytes succeed, so dropping them would lose data for nothing).
SinkRejectedError: the data itself was refused (other 4xx); the message carries
the server's text, which for InfluxDB names the offending line.
Secrets never appear in URLs, messages or repr.
"""

from __future__ import annotations

import asyncio
import json
import re
from types import TracebackType
from typing import Any, Protocol, Self

import aiohttp
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from pydantic import SecretStr

from dcim.errors import SinkRejectedError, SinkUnavailableError

#: Longest server error text kept in an exception message.
MAX_ERROR_TEXT = 4000
_RETRY_LATER = frozenset({401, 403, 404, 429})
_DROPPED = re.compile(r"dropped=(\d+)")


#: Seconds a probe of a down server may take (it only asks "are you there?").
PROBE_TIMEOUT_S = 2.0


class Writer(Protocol):
    """What the sink worker needs: write a body, close.

    A writer may also offer `async probe() -> bool` (a cheap "is the sink back?"),
    which the worker calls while the sink is down instead of waiting out its backoff.
    """

    name: str

    async def write(self, body: bytes) -> None: ...
    async def aclose(self) -> None: ...


class InfluxRejectedError(SinkRejectedError):
    """SinkRejectedError plus how many points the server says it dropped, when it says."""

    def __init__(self, message: str, dropped_points: int | None) -> None:
        super().__init__(message)
        self.dropped_points = dropped_points


def _error_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):  # 1.x: {"error": ...}; 2.x: {"code": ..., "message": ...}
        text = str(doc.get("error") or doc.get("message") or text)
    return text[:MAX_ERROR_TEXT]


def _dropped_points(text: str) -> int | None:
    """Points the server reports as not written; None when it does not say."""
    counts = [int(n) for n in _DROPPED.findall(text)]
    bad_lines = text.count("unable to parse")
    return sum(counts) + bad_lines if counts or bad_lines else None


def check_status(name: str, status: int, body: bytes) -> None:
    """Raise the sink error an HTTP status means; return for 2xx."""
    if 200 <= status < 300:
        return
    text = _error_text(body)
    message = f"{name}: HTTP {status}: {text}"
    if status >= 500 or status in _RETRY_LATER:
        raise SinkUnavailableError(message)
    raise InfluxRejectedError(message, _dropped_points(text))


def _unavailable(name: str, exc: BaseException) -> SinkUnavailableError:
    detail = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
    return SinkUnavailableError(f"{name}: {detail}")


async def _ping(url: str, headers: dict[str, str]) -> bool:
    """Any HTTP answer from `url`/ping within PROBE_TIMEOUT_S (a hung server gives none)."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, headers=headers) as session,
            session.get(f"{url}/ping") as resp,
        ):
            return resp.status < 500
    except (aiohttp.ClientError, TimeoutError):
        return False


class _Closable:
    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class InfluxV1Writer(_Closable):
    """InfluxDB 1.x `/write` with aiohttp (influxdb-client only speaks the 2.x API)."""

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: SecretStr | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.username = username
        self.timeout_s = timeout_s
        self.name = f"influxdb1 {self.url} db={database}"
        # Basic auth rather than u=/p= query parameters: URLs end up in aiohttp
        # exception messages and server logs, headers do not.
        self._headers = (
            {
                "Authorization": aiohttp.encode_basic_auth(
                    username, password.get_secret_value() if password else ""
                )
            }
            if username is not None
            else {}
        )
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return (
            f"InfluxV1Writer(url={self.url!r}, database={self.database!r}, user={self.username!r})"
        )

    async def write(self, body: bytes) -> None:
        """POST one body; raises SinkUnavailableError or SinkRejectedError."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), headers=self._headers
            )
        params = {"db": self.database, "precision": "ms"}
        try:
            async with self._session.post(f"{self.url}/write", params=params, data=body) as resp:
                status, text = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unavailable(self.name, exc) from None
        check_status(self.name, status, text)

    async def probe(self) -> bool:
        """True when the server answers `/ping` at all (InfluxDB 1.x and 2.x have it)."""
        return await _ping(self.url, self._headers)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class InfluxV2Writer(_Closable):
    """InfluxDB 2.x-compatible `/api/v2/write` (also VictoriaMetrics) via influxdb-client."""

    def __init__(
        self,
        url: str,
        bucket: str,
        org: str,
        token: SecretStr | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.org = org
        self.timeout_s = timeout_s
        self.name = f"influxdb2 {self.url} bucket={bucket}"
        self._token = token
        # InfluxDBClientAsync is untyped and must be created inside a running loop.
        self._client: Any = None
        self._api: Any = None

    def __repr__(self) -> str:
        return f"InfluxV2Writer(url={self.url!r}, bucket={self.bucket!r}, org={self.org!r})"

    async def write(self, body: bytes) -> None:
        """Write one body (passed through as bytes); raises SinkUnavailable/RejectedError."""
        if self._client is None:
            self._client = InfluxDBClientAsync(
                url=self.url,
                token=self._token.get_secret_value() if self._token else "",  # "": no header
                org=self.org,
                timeout=int(self.timeout_s * 1000),
            )
            self._api = self._client.write_api()
        try:
            # The client's own timeout covers the request; this one also covers connect.
            async with asyncio.timeout(self.timeout_s + 1.0):
                await self._api.write(
                    bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.MS
                )
        except ApiException as exc:
            if not exc.status:  # raised before any response: nothing was sent
                raise SinkUnavailableError(f"{self.name}: {exc.reason}") from None
            check_status(self.name, int(exc.status), exc.body or b"")
            raise  # not reached: non-2xx always raises above
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unavailable(self.name, exc) from None

    async def probe(self) -> bool:
        """True when the server answers `/ping` at all (InfluxDB 2.x, VictoriaMetrics)."""
        return await _ping(self.url, {})

    async def aclose(self) -> None:
        """Close the client and its HTTP session."""
        if self._client is not None:
            await self._client.close()
            self._client = self._api = None
