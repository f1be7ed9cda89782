"""The asyncio client (grpc.aio): :class:`AsyncClient` and :class:`AsyncSandbox`,
with the same surface as the sync one, awaited."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

import grpc
import grpc.aio

from . import _common as c
from . import _convert as cv
from . import _requests as rq
from ._aio_commands import AsyncCommands, AsyncExecStream
from ._aio_files import AsyncFiles, AsyncWatch
from ._common import TLS, RetryPolicy
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from ._gen.sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from .errors import SandboxdError
from .types import SandboxInfo

__all__ = ["AsyncClient", "AsyncExecStream", "AsyncSandbox", "AsyncWatch", "LeaseErrorCallback", "Progress"]

LeaseErrorCallback = Callable[[SandboxdError], Any]
Progress = Callable[[int], None]


class AsyncClient:
    """The asyncio twin of :class:`sandboxd.Client` (same arguments); use
    ``async with AsyncClient() as client:`` or ``await client.close()``."""

    def __init__(
        self,
        addr: str | None = None,
        *,
        token: str | None = None,
        tls: TLS | Mapping[str, Any] | bool | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.addr, self._md, t = c.resolve(addr, token, tls)
        if t is not None:
            self._channel = grpc.aio.secure_channel(self.addr, t.credentials(), options=c.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.aio.insecure_channel(self.addr, options=c.CHANNEL_OPTIONS)
        self._stub: Any = pb_grpc.SandboxServiceStub(self._channel)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._open: set[AsyncSandbox] = set()

    def __repr__(self) -> str:
        return f"AsyncClient({self.addr!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops the lease renewal of every open sandbox (without destroying them) and closes the connection."""
        for sb in list(self._open):
            await sb._stop_renewal()
        await self._channel.close()

    async def _call(
        self, name: str, req: Any, *, idempotent: bool, timeout: float | None = None, total: float | None = None
    ) -> Any:
        method = getattr(self._stub, name)
        backoff = cv.Backoff(self.retry, total)
        while True:
            try:
                return await method(req, timeout=timeout if timeout is not None else self.timeout, metadata=self._md)
            except grpc.RpcError as e:
                if not idempotent:
                    cv.raise_rpc(e)
                await asyncio.sleep(backoff.retry_unavailable(e))

    def create(
        self,
        *,
        cores: int = 0,
        memory_mib: int = 0,
        disk_gib: int = 0,
        labels: Mapping[str, str] | None = None,
        ttl: float | None = None,
        internet_access: bool = False,
        request_id: str | None = None,
        keepalive: bool = True,
        on_lease_error: LeaseErrorCallback | None = None,
    ) -> _Creating:
        """As :meth:`sandboxd.Client.create`: ``sb = await client.create(...)``
        or ``async with client.create(...) as sb:`` (destroyed at the end); an
        asyncio task renews the lease every TTL/3."""
        req = rq.create_request(
            cores=cores,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            labels=labels,
            ttl=ttl,
            internet_access=internet_access,
            request_id=request_id,
        )

        async def make() -> AsyncSandbox:
            sb = AsyncSandbox(self, SandboxInfo._from_pb((await self._call("CreateSandbox", req, idempotent=True)).sandbox))
            if keepalive:
                sb.start_keepalive(ttl, on_lease_error=on_lease_error)
            return sb

        return _Creating(make())

    async def get(self, sandbox_id: str) -> AsyncSandbox:
        resp = await self._call("GetSandbox", pb.GetSandboxRequest(sandbox_id=sandbox_id), idempotent=True)
        return AsyncSandbox(self, SandboxInfo._from_pb(resp.sandbox))

    def sandbox(self, sandbox_id: str) -> AsyncSandbox:
        return AsyncSandbox(self, None, sandbox_id=sandbox_id)

    async def list(self, labels: Mapping[str, str] | None = None) -> list[SandboxInfo]:
        out: list[SandboxInfo] = []
        token = ""
        while True:
            resp = await self._call("ListSandboxes", rq.list_request(labels, token), idempotent=True)
            out.extend(SandboxInfo._from_pb(s) for s in resp.sandboxes)
            token = resp.next_page_token
            if not token:
                return out

    async def destroy(self, sandbox_id: str) -> None:
        await self._call("DestroySandbox", pb.DestroySandboxRequest(sandbox_id=sandbox_id), idempotent=True)


class _Creating:
    """What AsyncClient.create returns: await it, or use it with ``async with``."""

    def __init__(self, coro: Awaitable[AsyncSandbox]) -> None:
        self._coro = coro
        self._sb: AsyncSandbox | None = None

    def __await__(self) -> Generator[Any, None, AsyncSandbox]:
        return self._coro.__await__()

    async def __aenter__(self) -> AsyncSandbox:
        self._sb = await self._coro
        return self._sb

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        assert self._sb is not None
        await self._sb.__aexit__(exc_type, exc, tb)


class AsyncSandbox(AsyncCommands, AsyncFiles):
    """The asyncio twin of :class:`sandboxd.Sandbox`; its lease is renewed by an asyncio task."""

    def __init__(self, client: AsyncClient, info: SandboxInfo | None, *, sandbox_id: str | None = None) -> None:
        self.client = client
        self.info = info
        self.id: str = info.id if info is not None else (sandbox_id or "")
        self._lease_error: SandboxdError | None = None
        self._task: asyncio.Task[None] | None = None
        self._detached = False
        self._on_lease_error: LeaseErrorCallback | None = None
        self.lease_expires_at: datetime.datetime | None = info.lease_expires_at if info else None

    def __repr__(self) -> str:
        return f"AsyncSandbox({self.id!r})"

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            await self.close()
        except SandboxdError as e:
            cv.destroy_failed_note(self.id, e, exc)

    # -- lease ----------------------------------------------------------------

    def start_keepalive(self, ttl: float | None = None, *, on_lease_error: LeaseErrorCallback | None = None) -> None:
        """As :meth:`sandboxd.Sandbox.start_keepalive`, in an asyncio task
        (``on_lease_error`` may be a coroutine function)."""
        if self._task is not None:
            return
        interval = cv.keepalive_interval(ttl, self.lease_expires_at)
        self._on_lease_error = on_lease_error
        self._task = asyncio.get_running_loop().create_task(self._renew_loop(interval))
        self.client._open.add(self)

    async def _renew_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                resp = await self.client._call(
                    "KeepAlive", pb.KeepAliveRequest(sandbox_id=self.id), idempotent=True, timeout=interval, total=interval
                )
            except Exception as e:  # a SandboxdError, or anything unexpected: report it all the same
                err = self._lease_error = cv.lease_failure(self.id, e)
                cb = self._on_lease_error
                if cb is not None:
                    try:
                        r = cb(err)
                        if asyncio.iscoroutine(r):
                            await r
                    except Exception:
                        pass
                continue
            self._lease_error = None
            self.lease_expires_at = cv.expiry(resp.lease_expires_at)

    async def _stop_renewal(self) -> None:
        t, self._task = self._task, None
        if t is not None and t is not asyncio.current_task():
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
        self.client._open.discard(self)

    def _check(self) -> None:
        err, self._lease_error = self._lease_error, None
        if err is not None:
            raise err

    @property
    def lease_error(self) -> SandboxdError | None:
        return self._lease_error

    async def keep_alive(self, ttl: float | None = None) -> datetime.datetime | None:
        self._check()
        req = pb.KeepAliveRequest(sandbox_id=self.id, lease_ttl=rq.duration(ttl))
        self.lease_expires_at = cv.expiry((await self.client._call("KeepAlive", req, idempotent=True)).lease_expires_at)
        return self.lease_expires_at

    async def detach(self) -> None:
        self._detached = True
        await self._stop_renewal()

    async def close(self) -> None:
        await self._stop_renewal()
        if not self._detached:
            await self.destroy()

    async def destroy(self) -> None:
        await self._stop_renewal()
        self._detached = True
        await self.client.destroy(self.id)

    async def refresh(self) -> SandboxInfo:
        self._check()
        resp = await self.client._call("GetSandbox", pb.GetSandboxRequest(sandbox_id=self.id), idempotent=True)
        self.info = SandboxInfo._from_pb(resp.sandbox)
        return self.info

    async def set_internet_access(self, enabled: bool) -> SandboxInfo:
        self._check()
        req = pb.SetInternetAccessRequest(sandbox_id=self.id, enabled=enabled)
        self.info = SandboxInfo._from_pb((await self.client._call("SetInternetAccess", req, idempotent=True)).sandbox)
        return self.info

    async def set_egress_allowlist(self, entries: list[str]) -> SandboxInfo:
        self._check()
        req = pb.SetEgressAllowlistRequest(sandbox_id=self.id, entries=entries)
        self.info = SandboxInfo._from_pb((await self.client._call("SetEgressAllowlist", req, idempotent=True)).sandbox)
        return self.info
