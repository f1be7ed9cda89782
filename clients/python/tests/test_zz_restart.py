"""Riding through a restart of sandboxd (kill -9, started again on the same
address) via the live server's control endpoint. Last in the run: a restart
that goes wrong may leave no server behind."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import sandboxd

from .conftest import Restart, restart_failed, restart_server, wait_down


@contextmanager
def blame_restart(r: Restart) -> Iterator[None]:
    """Unavailable past the retry window: skip if the restart itself failed
    (the endpoint is broken, not the library), else fail."""
    try:
        yield
    except sandboxd.Unavailable:
        r.wait()
        if r.status is not None and not r.ok():
            pytest.skip(f"restart endpoint: {restart_failed(r)}")
        raise


def _require_serving(client: sandboxd.Client) -> None:
    try:
        client.list()
    except sandboxd.SandboxdError as e:
        pytest.skip(f"restart endpoint: sandboxd not serving before the test (an earlier /restart left it down?): {e}")


def test_ride_through_restart(client: sandboxd.Client, label: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _require_serving(client)
    request_ids: list[str] = []
    real_create = client._stub.CreateSandbox

    def spy(req: object, **kw: object) -> object:
        request_ids.append(getattr(req, "request_id"))
        return real_create(req, **kw)

    monkeypatch.setattr(client._stub, "CreateSandbox", spy)
    with client.create(ttl=30, labels=label) as sb:
        sb.upload("kept.txt", b"survives")
        r = restart_server()
        assert wait_down(), "sandboxd still accepts connections after /restart"
        # Issued while nothing listens: retried with one request_id until it is back.
        mine = {**label, "created": "during-restart"}
        t0 = time.monotonic()
        request_ids.clear()
        with blame_restart(r):
            during = client.create(ttl=30, labels=mine)
        assert len(request_ids) >= 2 and len(set(request_ids)) == 1, f"retried with one request_id: {request_ids}"
        with during:
            took = time.monotonic() - t0
            assert [s.id for s in client.list(labels=mine)] == [during.id], "one create, one sandbox"
        # Idempotent calls on the first sandbox after the restart.
        assert client.get(sb.id).id == sb.id
        assert sb.stat("kept.txt").size == 8
        assert [e.name for e in sb.list_dir(".") if e.name == "kept.txt"] == ["kept.txt"]
        assert sb.keep_alive() is not None
        assert sb.read_bytes("kept.txt") == b"survives"
        assert sb.lease_error is None
        r.wait()
        if not r.ok():
            pytest.skip(f"restart endpoint: {restart_failed(r)} (the ride-through assertions above passed; create took {took:.1f} s)")


def test_download_resumes_after_restart(client: sandboxd.Client, label: dict[str, str]) -> None:
    _require_serving(client)
    size = 96 * 1024 * 1024
    with client.create(ttl=60, labels=label) as sb:
        res = sb.run(f"head -c {size} /dev/urandom > big.bin && sha256sum big.bin", check=True)
        want = res.text.split()[0]
        restarts: list[Restart] = []

        def progress(done: int) -> None:
            if not restarts:
                restarts.append(restart_server())
                wait_down()
                time.sleep(0.5)  # hold the stream open while the server is gone

        buf = io.BytesIO()
        try:
            got = sb.download("big.bin", buf, progress=progress)
        except sandboxd.Unavailable:
            with blame_restart(restarts[0]):
                raise
        assert got.resumes >= 1, "the stream was never cut off"
        assert got.size == size and len(buf.getvalue()) == size
        import hashlib

        assert hashlib.sha256(buf.getvalue()).hexdigest() == want == got.sha256
        r = restarts[0]
        r.wait()
        if not r.ok():
            pytest.skip(f"restart endpoint: {restart_failed(r)} (the resume assertions above passed)")


async def test_async_ride_through_restart(aclient: sandboxd.AsyncClient, label: dict[str, str]) -> None:
    import asyncio

    try:
        await aclient.list()
    except sandboxd.SandboxdError as e:
        pytest.skip(f"restart endpoint: sandboxd not serving before the test: {e}")
    async with aclient.create(ttl=30, labels=label) as sb:
        await sb.upload("kept.txt", b"survives")
        r = restart_server()
        assert await asyncio.to_thread(wait_down), "sandboxd still accepts connections after /restart"
        mine = {**label, "created": "during-restart"}
        try:
            during = await aclient.create(ttl=30, labels=mine)
        except sandboxd.Unavailable:
            await asyncio.to_thread(r.wait)
            with blame_restart(r):
                raise
        async with during:
            assert [s.id for s in await aclient.list(labels=mine)] == [during.id], "one create, one sandbox"
        assert (await aclient.get(sb.id)).id == sb.id
        assert await sb.read_bytes("kept.txt") == b"survives"
        assert await sb.keep_alive() is not None
        await asyncio.to_thread(r.wait)
        if not r.ok():
            pytest.skip(f"restart endpoint: {restart_failed(r)} (the ride-through assertions above passed)")
