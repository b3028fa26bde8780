"""The etcd client against a real etcd (Debian etcd-server): leases, transactions, the
list of endpoints, TLS with a client certificate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dcim.coord.config import EtcdSettings
from dcim.coord.etcd import EtcdClient, EtcdUnavailable, absent, put_op
from dcim.tls import TlsConfig
from tests.support.certs import make_pki
from tests.support.etcd_server import Etcd
from tests.support.servers import free_port


@pytest.fixture
async def client(etcd: Etcd) -> AsyncIterator[EtcdClient]:
    etcd_client = EtcdClient(EtcdSettings(endpoints=[etcd.url], lease_s=2))
    yield etcd_client
    await etcd_client.aclose()


async def test_a_key_on_a_lease_lives_while_renewed_and_goes_when_the_lease_runs_out(
    client: EtcdClient,
) -> None:
    lease, ttl = await client.grant(2)
    assert ttl == 2
    await client.put("/t/members/a", "alive", lease)
    for _ in range(3):  # renewed: outlives its TTL
        await asyncio.sleep(1.0)
        assert await client.keepalive(lease) > 0
    kvs, _ = await client.get_prefix("/t/members/")
    assert [(kv.key, kv.value, kv.lease) for kv in kvs] == [("/t/members/a", b"alive", lease)]
    deadline = time.monotonic() + 10
    while (await client.get_prefix("/t/members/"))[0]:  # no renewal: etcd drops it
        assert time.monotonic() < deadline, "the key outlived its lease"
        await asyncio.sleep(0.2)
    assert await client.keepalive(lease) == 0


async def test_create_only_if_absent_lets_exactly_one_member_own_a_room(
    client: EtcdClient,
) -> None:
    key = "/t/owners/dc1/hall-1"
    assert await client.txn([absent(key)], [put_op(key, "m1")])
    assert not await client.txn([absent(key)], [put_op(key, "m2")])
    kvs, _ = await client.get_prefix("/t/owners/")
    assert [kv.value for kv in kvs] == [b"m1"]
    await client.delete(key)
    assert await client.txn([absent(key)], [put_op(key, "m2")])


async def test_a_dead_endpoint_is_skipped_and_all_dead_is_unavailable(etcd: Etcd) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = EtcdSettings(endpoints=[dead, etcd.url], timeout_s=1)
    client = EtcdClient(settings)
    try:
        await client.put("/t/x", "1")
        assert [kv.value for kv in (await client.get_prefix("/t/"))[0]] == [b"1"]
    finally:
        await client.aclose()
    nobody = EtcdClient(EtcdSettings(endpoints=[dead], timeout_s=1))
    try:
        with pytest.raises(EtcdUnavailable, match=dead):
            await nobody.get_prefix("/t/")
    finally:
        await nobody.aclose()


async def test_tls_with_a_client_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    workdir = tmp_path / "etcd-tls"
    workdir.mkdir()
    server = Etcd(workdir, pki=pki)
    server.start()
    try:
        tls = TlsConfig(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
        client = EtcdClient(EtcdSettings(endpoints=[server.url], tls=tls))
        try:
            await client.put("/t/secure", "yes")
            assert [kv.value for kv in (await client.get_prefix("/t/"))[0]] == [b"yes"]
        finally:
            await client.aclose()
        # without a client certificate etcd refuses the connection
        anonymous = EtcdClient(
            EtcdSettings(endpoints=[server.url], tls=TlsConfig(ca_file=pki.ca), timeout_s=2)
        )
        try:
            with pytest.raises(EtcdUnavailable):
                await anonymous.get_prefix("/t/")
        finally:
            await anonymous.aclose()
    finally:
        server.stop()
