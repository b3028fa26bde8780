"""Who is at the board: users with bcrypt password hashes, the alert API token, sessions.

A session lives in this process only (a restart logs everyone out) and is named by
a random id in an HttpOnly, SameSite=Strict cookie; each has its own CSRF token
that every action must send back in a header. Logging in with one of the alert API's
tokens (user name `token`) makes an operator named after that token (`alerts.api.tokens`
names each; the single shared `token:` is `api-token`), so the audit log says who.
Failed logins are slowed down per client address.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import bcrypt

from dcim.clock import Clock
from dcim.web.config import WebUser

#: The user name that logs in with the alert API's token.
TOKEN_USER = "token"  # noqa: S105 - a user name, not a password
#: Failed logins per client address within FAILURE_WINDOW_S before logins are refused.
MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0
ROLES = ("viewer", "operator")


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    role: str  # viewer | operator

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


@dataclass
class Session:
    id: str
    identity: Identity
    csrf: str
    expires: float
    language: str | None = None


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)


class Authenticator:
    """Checks passwords (off the event loop: bcrypt is slow on purpose) and keeps sessions."""

    def __init__(
        self,
        users: list[WebUser],
        tokens: Sequence[tuple[str, str]],
        ttl_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._users = {user.name: user for user in users}
        #: (identity, secret) of every alert API token
        self._tokens = [(name, secret.encode()) for name, secret in tokens]
        self._ttl = ttl_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, _Failures] = {}
        # a fixed hash to check against for unknown users: same time spent, no user probing
        self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=10))

    def throttled(self, client: str) -> bool:
        record = self._failures.get(client)
        if record is None:
            return False
        cutoff = self._clock() - FAILURE_WINDOW_S
        record.times = [t for t in record.times if t > cutoff]
        return len(record.times) >= MAX_FAILURES

    def _failed(self, client: str) -> None:
        self._failures.setdefault(client, _Failures()).times.append(self._clock())
        if len(self._failures) > 10_000:  # a flood of addresses must not grow this forever
            self._failures.clear()

    async def login(self, name: str, password: str, client: str) -> Session | None:
        """A new session, or None (wrong name or password, or too many failures)."""
        if self.throttled(client):
            return None
        identity = await self._check(name, password)
        if identity is None:
            self._failed(client)
            return None
        self._failures.pop(client, None)
        user = self._users.get(name)
        session = Session(
            secrets.token_urlsafe(32),
            identity,
            secrets.token_urlsafe(24),
            self._clock() + self._ttl,
            user.language if user is not None else None,
        )
        self._sessions[session.id] = session
        self._expire()
        return session

    async def _check(self, name: str, password: str) -> Identity | None:
        if name == TOKEN_USER and self._tokens:
            given = password.encode()
            found = None
            for identity, secret in self._tokens:  # every one compared: no timing hint
                if hmac.compare_digest(given, secret) and found is None:
                    found = identity
            return Identity(found, "operator") if found is not None else None
        user = self._users.get(name)
        hashed = user.password_hash.get_secret_value().encode() if user else self._dummy
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, _bcrypt_check, password.encode(), hashed)
        if ok and user is not None:
            return Identity(user.name, user.role)
        return None

    def session(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[session_id]
            return None
        return session

    def logout(self, session_id: str | None) -> Session | None:
        return self._sessions.pop(session_id, None) if session_id else None

    def _expire(self) -> None:
        now = self._clock()
        for sid in [s.id for s in self._sessions.values() if s.expires <= now]:
            del self._sessions[sid]


def _bcrypt_check(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:72], hashed)
    except ValueError:  # a malformed hash in the config: nobody logs in with it
        return False


def hash_password(password: str, rounds: int = 12) -> str:
    """A bcrypt hash for `web.users[].password_hash` (`dcim web hash-password`)."""
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=rounds)).decode()
