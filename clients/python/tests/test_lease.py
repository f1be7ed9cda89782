"""Leases: the library renews them; leaving a with block destroys the sandbox."""

from __future__ import annotations

import time

import pytest

import sandboxd


def test_keepalive_holds_a_short_lease(client: sandboxd.Client, label: dict[str, str]) -> None:
    errors: list[sandboxd.SandboxdError] = []
    with client.create(ttl=3, labels=label, on_lease_error=errors.append) as sb:
        time.sleep(10)  # more than three TTLs, no renewal by the test
        assert client.get(sb.id).info is not None
        assert sb.run("true").exit_code == 0
        assert errors == [] and sb.lease_error is None
    with pytest.raises(sandboxd.NotFound):
        client.get(sb.id)


def test_with_block_that_raises_destroys(client: sandboxd.Client, label: dict[str, str]) -> None:
    with pytest.raises(ZeroDivisionError):
        with client.create(ttl=60, labels=label) as sb:
            sid = sb.id
            1 / 0
    with pytest.raises(sandboxd.NotFound):
        client.get(sid)
    assert client.list(labels=label) == []


async def test_async_with_block_that_raises_destroys(aclient: sandboxd.AsyncClient, label: dict[str, str]) -> None:
    with pytest.raises(ZeroDivisionError):
        async with aclient.create(ttl=60, labels=label) as sb:
            sid = sb.id
            1 / 0
    with pytest.raises(sandboxd.NotFound):
        await aclient.get(sid)


async def test_async_keepalive_holds_a_short_lease(aclient: sandboxd.AsyncClient, label: dict[str, str]) -> None:
    import asyncio

    async with aclient.create(ttl=3, labels=label) as sb:
        await asyncio.sleep(10)
        assert (await sb.run("true")).exit_code == 0
        assert sb.lease_error is None


def test_detach_keeps_the_sandbox(client: sandboxd.Client, label: dict[str, str]) -> None:
    with client.create(ttl=60, labels=label) as sb:
        sb.detach()
    try:
        assert client.get(sb.id).id == sb.id
    finally:
        client.destroy(sb.id)
    client.destroy(sb.id)  # idempotent


def test_lease_error_is_surfaced(client: sandboxd.Client, label: dict[str, str]) -> None:
    """A sandbox destroyed behind the library's back: the renewal fails, the
    callback hears of it and the next call raises LeaseError."""
    seen: list[sandboxd.SandboxdError] = []
    with client.create(ttl=1.5, labels=label, on_lease_error=seen.append) as sb:
        client.destroy(sb.id)
        time.sleep(1.5)
        assert seen and isinstance(seen[0], sandboxd.LeaseError)
        with pytest.raises(sandboxd.LeaseError):
            sb.stat(".")


def test_get_and_list(client: sandboxd.Client, sb: sandboxd.Sandbox, label: dict[str, str]) -> None:
    got = client.get(sb.id)
    assert got.info is not None and got.info.state == "running" and got.info.labels == label
    assert [s.id for s in client.list(labels=label)] == [sb.id]
    exp = sb.keep_alive(ttl=120)
    assert exp is not None
