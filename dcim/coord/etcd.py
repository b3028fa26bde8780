"""A small asyncio client of etcd's v3 API through its JSON gateway (`/v3/...`), over aiohttp.

Why not a gRPC client library: of the maintained asyncio ones, `aetcd` opens only
plaintext channels to one host (no TLS, no list of endpoints), and `etcd3aio` takes
IPv4 literals only and puts its generated `google.api`/`etcd` modules first on
`sys.path` for the whole process. The gateway is part of every etcd v3.4+ server,
documented and stable, and speaks JSON over HTTP, which aiohttp (already a dependency)
does with TLS, host names and timeouts we control. We need only leases, ranges,
puts, deletes and transactions: a few JSON requests.

Keys and values are base64 in JSON, 64-bit integers are strings, and fields at
their zero value are left out (a false `succeeded`, a zero `TTL`).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from dcim.coord.config import EtcdSettings
from dcim.tls import client_context

log = logging.getLogger(__name__)


class EtcdUnavailable(Exception):
    """No endpoint answered (in time): etcd is unreachable from here."""


class EtcdError(Exception):
    """etcd answered with an error (a lease not found, permission denied...)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with `prefix` (ASCII prefixes)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _kv(item: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=base64.b64decode(item["key"]).decode(),
        value=base64.b64decode(item.get("value", "")),
        create_revision=int(item.get("create_revision", 0)),
        mod_revision=int(item.get("mod_revision", 0)),
        lease=int(item.get("lease", 0)),
    )


# --- transaction parts ---------------------------------------------------------------


def absent(key: str) -> dict[str, Any]:
    """Compare: the key does not exist."""
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def value_is(key: str, value: str | bytes) -> dict[str, Any]:
    return {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}


def lease_is(key: str, lease: int) -> dict[str, Any]:
    return {"key": _b64(key), "target": "LEASE", "result": "EQUAL", "lease": str(lease)}


def put_op(key: str, value: str | bytes, lease: int = 0) -> dict[str, Any]:
    return {"request_put": {"key": _b64(key), "value": _b64(value), "lease": str(lease)}}


def delete_op(key: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(key)}}


class EtcdClient:
    """One session to the cluster; each request goes to the endpoint that answered last,
    then to the others in turn. `aclose()` when done."""

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self.endpoints = [e.rstrip("/") for e in settings.endpoints]
        self._current = 0
        self._session: aiohttp.ClientSession | None = None
        self._ssl = (
            client_context(settings.tls)
            if any(e.startswith("https:") for e in self.endpoints)
            else None
        )
        self._token: str | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the API -------------------------------------------------------------------

    async def grant(self, ttl_s: int) -> tuple[int, int]:
        """A new lease: (id, granted TTL)."""
        answer = await self._call("/v3/lease/grant", {"TTL": str(ttl_s)})
        return int(answer["ID"]), int(answer.get("TTL", ttl_s))

    async def keepalive(self, lease: int) -> int:
        """Renew a lease; its remaining TTL, 0 when it expired (or never existed)."""
        answer = await self._call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(answer.get("result", {}).get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        try:
            await self._call("/v3/lease/revoke", {"ID": str(lease)})
        except EtcdError as exc:
            if exc.code != 5:  # NotFound: gone already
                raise

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under `prefix`, and the store's revision of that read."""
        answer = await self._call(
            "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        )
        revision = int(answer.get("header", {}).get("revision", 0))
        return [_kv(item) for item in answer.get("kvs", [])], revision

    async def put(self, key: str, value: str | bytes, lease: int = 0) -> None:
        await self._call(
            "/v3/kv/put", {"key": _b64(key), "value": _b64(value), "lease": str(lease)}
        )

    async def delete(self, key: str) -> None:
        await self._call("/v3/kv/deleterange", {"key": _b64(key)})

    async def txn(
        self,
        compare: Sequence[dict[str, Any]],
        success: Sequence[dict[str, Any]],
        failure: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """All of `compare` hold: run `success` (True); else `failure` (False). Atomic."""
        answer = await self._call(
            "/v3/kv/txn",
            {"compare": list(compare), "success": list(success), "failure": list(failure)},
        )
        return bool(answer.get("succeeded", False))

    # --- transport -----------------------------------------------------------------

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s)
            )
        failures: list[str] = []
        for step in range(len(self.endpoints)):
            index = (self._current + step) % len(self.endpoints)
            endpoint = self.endpoints[index]
            try:
                answer = await self._post(endpoint, path, body)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                failures.append(f"{endpoint}: {_why(exc)}")
                continue
            self._current = index
            return answer
        raise EtcdUnavailable("; ".join(failures))

    async def _post(self, endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._session is not None
        for attempt in (1, 2):
            if self.settings.username is not None and self._token is None:
                self._token = await self._authenticate(endpoint)
            headers = {"Authorization": self._token} if self._token else {}
            async with self._session.post(
                endpoint + path,
                data=json.dumps(body),
                headers={"Content-Type": "application/json", **headers},
                ssl=self._ssl if self._ssl is not None else True,
            ) as response:
                text = await response.text()
            try:
                answer: dict[str, Any] = json.loads(text.splitlines()[0] if text else "{}")
            except ValueError:
                raise aiohttp.ClientPayloadError(
                    f"HTTP {response.status}: not etcd's JSON: {text[:120]!r}"
                ) from None
            error = answer.get("error")
            if isinstance(error, dict):  # a stream's error comes wrapped
                answer = error
            if "code" in answer and ("error" in answer or "message" in answer):
                code = int(answer["code"])
                message = str(answer.get("message") or answer.get("error"))
                if code == 16 and attempt == 1 and self.settings.username is not None:
                    self._token = None  # the auth token expired: log in again, once
                    continue
                raise EtcdError(f"{path}: {message}", code)
            if response.status >= 500:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=text[:200]
                )
            return answer
        raise EtcdError(f"{path}: authentication refused", 16)

    async def _authenticate(self, endpoint: str) -> str:
        assert self._session is not None
        assert self.settings.password is not None
        body = {
            "name": self.settings.username,
            "password": self.settings.password.get_secret_value(),
        }
        async with self._session.post(
            endpoint + "/v3/auth/authenticate",
            data=json.dumps(body),
            ssl=self._ssl if self._ssl is not None else True,
        ) as response:
            answer = json.loads(await response.text() or "{}")
        token = answer.get("token")
        if not token:
            raise EtcdError(
                f"etcd refused user {self.settings.username!r}: "
                f"{answer.get('message') or answer.get('error') or response.status}",
                16,
            )
        return str(token)


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
