"""The `coordination:` section: the etcd cluster the monitors meet in, and this member."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from dcim.configmodel import Strict
from dcim.secret import Secret
from dcim.tls import TlsConfig

#: A member name: it is part of etcd keys and of the room plan, so it must stay stable.
MEMBER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
MemberName = Annotated[str, Field(pattern=MEMBER_PATTERN)]


class EtcdSettings(Strict):
    #: Client URLs of the etcd cluster members (tried in turn when one does not answer).
    endpoints: list[Annotated[str, Field(pattern=r"^https?://[^/\s]+/?$")]] = Field(min_length=1)
    tls: TlsConfig | None = None
    #: etcd's own users (`etcdctl user add`); client certificates (tls) are the other way.
    username: str | None = None
    password: Secret | None = None
    #: A member whose lease is not renewed this long is gone: its rooms move to the others.
    lease_s: int = Field(default=10, ge=2, le=300)
    #: Every key of this inventory starts with it: one etcd cluster serves several sites.
    prefix: str = Field(default="/dcim/", pattern=r"^/[^\s]*/$")
    #: One request's deadline (each endpoint is tried before etcd counts as unreachable).
    timeout_s: float = Field(default=2.0, gt=0, le=30)

    @model_validator(mode="after")
    def _user_and_password(self) -> EtcdSettings:
        if (self.username is None) != (self.password is None):
            msg = "username and password go together"
            raise ValueError(msg)
        return self


class CoordinationConfig(Strict):
    etcd: EtcdSettings
    #: This monitor's name among the members (default: the host name; `--member` overrides).
    member: MemberName | None = None
    #: How often a member reads the member list and room owners (default: lease_s / 5, <= 1 s).
    sync_s: float | None = Field(default=None, gt=0, le=30)
    #: etcd unreachable this long pages "coordination lost" (default: lease_s).
    lost_after_s: float | None = Field(default=None, gt=0)

    @property
    def sync_interval_s(self) -> float:
        return self.sync_s if self.sync_s is not None else min(1.0, self.etcd.lease_s / 5)

    @property
    def lost_after(self) -> float:
        return self.lost_after_s if self.lost_after_s is not None else float(self.etcd.lease_s)
