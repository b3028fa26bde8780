"""Typed failures. Each names what failed so an operator can act on the message."""

from __future__ import annotations


class DcimError(Exception):
    """Base of every error the monitor raises on purpose."""


class ConfigError(DcimError):
    """The configuration file is unreadable or invalid; `problems` lists each one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class ProfileError(DcimError):
    """A device profile (data file) is invalid."""


class CollectError(DcimError):
    """Polling one device failed; carries the device id."""

    #: Short class name used in `device.poll_errors` readings and logs.
    error_class = "error"

    def __init__(self, device_id: str, detail: str) -> None:
        self.device_id = device_id
        self.detail = detail
        super().__init__(f"{device_id}: {detail}")


class DeviceTimeoutError(CollectError):
    """The device did not answer in time (after retries)."""

    error_class = "timeout"


class DeviceAuthError(CollectError):
    """Credentials were refused (wrong community, user, key or engine)."""

    error_class = "auth"


class DeviceProtocolError(CollectError):
    """The device answered, but with an error status or undecodable data."""

    error_class = "protocol"


class SinkError(DcimError):
    """Base for sink failures."""


class SinkUnavailableError(SinkError):
    """The sink cannot take data now (down, slow, 5xx): keep the data and retry later."""


class SinkRejectedError(SinkError):
    """The sink refused the data itself (4xx): retrying the same bytes cannot succeed."""


class StateDirError(DcimError):
    """The state directory (spool, alert store, audit log) or a file in it is unusable.

    The message is one line naming the setting and the path, for the operator.
    """
