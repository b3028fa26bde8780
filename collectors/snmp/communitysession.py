"""SNMPv1/v2c sessions: community requests over a shared channel, answers decoded lean.

A request is a prebuilt template (`fastcodec`: only the request-id changes)
sent on the host's shared `Channel`. A request nobody answers is followed by
the SNMPv3 discovery probe: an agent that answers it is alive and ignores our
community (or our address), which is a `wrong_community` error, not a timeout.
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.snmp import fastcodec as fc
from collectors.snmp.transport import Answer, Channel, Requests, probe_engine
from collectors.snmp.types import Oid, SnmpSecurityError, SnmpStatusError, TypedVarBind, VarBind
from dcim.errors import CollectError, DeviceProtocolError, DeviceTimeoutError
from dcim.inventory import SnmpConfig, SnmpVersion


class CommunitySession:
    """Requests to one v1/v2c device; one request at a time per device is the caller's rule."""

    def __init__(
        self,
        requests: Requests,
        channel: Channel,
        device_id: str,
        config: SnmpConfig,
        address: tuple[str, int],
    ) -> None:
        self._requests = requests
        self._channel = channel
        self.device_id = device_id
        self._config = config
        self.address = address
        assert config.community is not None  # validated by SnmpConfig
        self._community = config.community.get_secret_value().encode()
        self._version = fc.VERSION_1 if config.version is SnmpVersion.V1 else fc.VERSION_2C
        self._timeout_s = config.timeout_s
        self._tries = config.retries + 1

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        return await self._request(fc.GET, 0, oids)

    async def get_next(self, oids: Sequence[Oid]) -> list[VarBind]:
        return await self._request(fc.GET_NEXT, 0, oids)

    async def get_bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[VarBind]:
        if self._version == fc.VERSION_1:
            raise DeviceProtocolError(self.device_id, "SNMPv1 has no GETBULK")
        return await self._request(fc.GET_BULK, max_repetitions, oids)

    async def get_bulk_typed(self, oids: Sequence[Oid], max_repetitions: int) -> list[TypedVarBind]:
        """GETBULK (GETNEXT under SNMPv1) keeping each value's wire type (`dcim walk`)."""
        if self._version == fc.VERSION_1:
            data, header = await self._answer(fc.GET_NEXT, 0, oids)
        else:
            data, header = await self._answer(fc.GET_BULK, max_repetitions, oids)
        try:
            return fc.decode_typed_varbinds(data, header.varbinds_start, header.varbinds_end)
        except fc.CodecError as exc:
            raise DeviceProtocolError(self.device_id, f"malformed SNMP response: {exc}") from None

    def _template(
        self, pdu_type: int, max_repetitions: int, oids: Sequence[Oid]
    ) -> fc.RequestTemplate:
        key = tuple(oids)
        return self._requests.template(
            (self._version, self._community, pdu_type, max_repetitions, key),
            lambda: fc.request_template(
                self._version, self._community, pdu_type, key, max_repetitions=max_repetitions
            ),
        )

    async def _request(
        self, pdu_type: int, max_repetitions: int, oids: Sequence[Oid]
    ) -> list[VarBind]:
        data, header = await self._answer(pdu_type, max_repetitions, oids)
        try:
            return fc.decode_varbinds(data, header.varbinds_start, header.varbinds_end)
        except fc.CodecError as exc:
            raise DeviceProtocolError(self.device_id, f"malformed SNMP response: {exc}") from None

    async def _answer(
        self, pdu_type: int, max_repetitions: int, oids: Sequence[Oid]
    ) -> tuple[bytes, fc.Header]:
        """The response's bytes and header; raises on silence and error-status."""
        template = self._template(pdu_type, max_repetitions, oids)
        answer = await self._exchange(template)
        if answer is None:
            raise await self._silent()
        assert isinstance(answer, tuple)  # a v1/v2c channel entry answers with (data, header)
        data, header = answer
        if header.error_status:
            raise SnmpStatusError(self.device_id, header.error_status, header.error_index)
        return data, header

    async def _exchange(self, template: fc.RequestTemplate) -> Answer:
        rid = self._requests.next_id()
        return await self._channel.exchange(
            self.device_id,
            rid,
            template.build(rid),
            self.address,
            timeout_s=self._timeout_s,
            tries=self._tries,
            community=self._community,
        )

    async def _silent(self) -> CollectError:
        """Why every try went unanswered: dead, or alive and ignoring our community."""
        probed = await probe_engine(
            self._channel,
            self._requests,
            self.device_id,
            self.address,
            timeout_s=self._timeout_s,
            tries=1,
        )
        if probed is not None:
            return SnmpSecurityError(
                self.device_id,
                "wrong_community",
                f"agent answers SNMPv3 engine discovery but ignores our "
                f"SNMP{self._config.version.value} requests: wrong community, or this "
                "address is not allowed",
            )
        return DeviceTimeoutError(
            self.device_id,
            f"no answer (timeout after {self._tries} tries of {self._timeout_s} s)",
        )
