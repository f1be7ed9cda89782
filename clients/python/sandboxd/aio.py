"""The asyncio client (grpc.aio): :class:`AsyncClient` and :class:`AsyncSandbox`,
with the same surface as the sync one, awaited."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import io
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from typing import IO, Any

import grpc
import grpc.aio

from . import _common as c
from ._common import TLS, Command, Destination, RetryPolicy, Source
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from ._gen.sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from .client import _expiry
from .errors import ChecksumMismatch, CommandError, LeaseError, NotFound, SandboxdError, from_rpc_error
from .types import (
    ArchiveResult,
    CommandInfo,
    CommandResult,
    ExecEvent,
    FileInfo,
    SandboxInfo,
    TransferResult,
    Utf8Decoder,
    WatchEvent,
)

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
        give_up = time.monotonic() + (self.retry.total if total is None else total)
        attempt = 0
        while True:
            try:
                return await method(req, timeout=timeout if timeout is not None else self.timeout, metadata=self._md)
            except grpc.RpcError as e:
                if idempotent and e.code() == grpc.StatusCode.UNAVAILABLE:
                    d = self.retry.delay(attempt)
                    attempt += 1
                    if time.monotonic() + d < give_up:
                        await asyncio.sleep(d)
                        continue
                raise from_rpc_error(e) from None

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
        req = c.create_request(
            cores=cores,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            labels=labels,
            ttl=ttl,
            internet_access=internet_access,
            request_id=request_id or f"py-{uuid.uuid4()}",
        )

        async def make() -> AsyncSandbox:
            resp = await self._call("CreateSandbox", req, idempotent=True)
            sb = AsyncSandbox(self, SandboxInfo._from_pb(resp.sandbox))
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
            req = pb.ListSandboxesRequest(label_selector=dict(labels or {}), page_size=1000, page_token=token)
            resp = await self._call("ListSandboxes", req, idempotent=True)
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


class AsyncExecStream:
    """A streamed command: ``async for ev in stream`` (once); ``result`` after
    the ``exited`` event; :meth:`text` for decoded text; :meth:`cancel`."""

    def __init__(self, call: Any, cmd: object = None) -> None:
        self._call = call
        self.cmd = cmd
        self.exec_id = ""
        self.pid = 0
        self.result: CommandResult | None = None

    async def __aenter__(self) -> AsyncExecStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        self._call.cancel()

    async def __aiter__(self) -> AsyncIterator[ExecEvent]:
        try:
            async for msg in self._call:
                ev = ExecEvent._from_pb(msg, (self.exec_id, self.pid))
                if ev is None:
                    continue
                if ev.kind == "started":
                    self.exec_id, self.pid = ev.exec_id, ev.pid
                elif ev.kind == "exited":
                    self.result = ev.result
                yield ev
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            if self.result is None:  # left early (break, an error): end the RPC
                self._call.cancel()

    async def text(self) -> AsyncIterator[tuple[str, str]]:
        """(stream, text) pairs decoded with a :class:`Utf8Decoder` per stream."""
        decoders = {"stdout": Utf8Decoder(), "stderr": Utf8Decoder()}
        async for ev in self:
            if ev.kind in decoders:
                s = decoders[ev.kind].feed(ev.data)
                if s:
                    yield ev.kind, s
        for kind, d in decoders.items():
            s = d.flush()
            if s:
                yield kind, s


class AsyncWatch:
    """A directory watch: ``async for ev in watch``; close() to stop."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._pending: list[WatchEvent] = []

    async def _ready(self) -> AsyncWatch:
        try:
            first = await self._call.read()
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        if first is grpc.aio.EOF:
            raise SandboxdError("watch: the stream ended before it was ready")
        self._pending = [WatchEvent._from_pb(e) for e in first.events]
        return self

    async def __aenter__(self) -> AsyncWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._call.cancel()

    async def __aiter__(self) -> AsyncIterator[WatchEvent]:
        for e in self._pending:
            yield e
        self._pending = []
        try:
            while True:
                msg = await self._call.read()
                if msg is grpc.aio.EOF:
                    return
                for e in msg.events:
                    yield WatchEvent._from_pb(e)
        except asyncio.CancelledError:
            raise
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                return
            raise from_rpc_error(e) from None


class AsyncSandbox:
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
            if exc is None:
                raise
            if hasattr(exc, "add_note"):
                exc.add_note(f"sandboxd: destroying sandbox {self.id} failed too: {e}")

    # -- lease ----------------------------------------------------------------

    def start_keepalive(self, ttl: float | None = None, *, on_lease_error: LeaseErrorCallback | None = None) -> None:
        """As :meth:`sandboxd.Sandbox.start_keepalive`, in an asyncio task
        (``on_lease_error`` may be a coroutine function)."""
        if self._task is not None:
            return
        if ttl is None:
            exp = self.lease_expires_at
            now = datetime.datetime.now(datetime.timezone.utc)
            ttl = max(1.0, (exp - now).total_seconds()) if exp else 60.0
        self._on_lease_error = on_lease_error
        self._task = asyncio.get_running_loop().create_task(self._renew_loop(max(0.2, ttl / 3)))
        self.client._open.add(self)

    async def _renew_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                resp = await self.client._call(
                    "KeepAlive", pb.KeepAliveRequest(sandbox_id=self.id), idempotent=True, timeout=interval, total=interval
                )
            except Exception as e:  # a SandboxdError, or anything unexpected: report it all the same
                msg, code = (e.message, e.code) if isinstance(e, SandboxdError) else (repr(e), None)
                err = LeaseError(f"renewing the lease of sandbox {self.id} failed: {msg}", code=code)
                err.__cause__ = e
                self._lease_error = err
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
            self.lease_expires_at = _expiry(resp.lease_expires_at)

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
        resp = await self.client._call(
            "KeepAlive", pb.KeepAliveRequest(sandbox_id=self.id, lease_ttl=c.duration(ttl)), idempotent=True
        )
        self.lease_expires_at = _expiry(resp.lease_expires_at)
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

    # -- commands -------------------------------------------------------------

    def stream(
        self,
        cmd: Command,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_output_bytes: int = 0,
        discard_over_limit: bool = False,
        background: bool = False,
        keep_stdin_open: bool = False,
        tag: str | None = None,
        retain_bytes: int = 0,
        pty: tuple[int, int] | None = None,
    ) -> AsyncExecStream:
        self._check()
        req = c.exec_request(
            self.id,
            cmd,
            env=env,
            cwd=cwd,
            stdin=stdin,
            timeout=timeout,
            max_output_bytes=max_output_bytes,
            discard_over_limit=discard_over_limit,
            background=background,
            keep_stdin_open=keep_stdin_open,
            tag=tag,
            retain_bytes=retain_bytes,
            pty=pty,
        )
        return AsyncExecStream(self.client._stub.Exec(req, timeout=deadline, metadata=self.client._md), cmd)

    async def run(
        self,
        cmd: Command,
        *,
        check: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_output_bytes: int = 0,
        discard_over_limit: bool = False,
    ) -> CommandResult:
        out, err = bytearray(), bytearray()
        s = self.stream(
            cmd,
            env=env,
            cwd=cwd,
            stdin=stdin,
            timeout=timeout,
            deadline=deadline,
            max_output_bytes=max_output_bytes,
            discard_over_limit=discard_over_limit,
        )
        async with s:
            async for ev in s:
                if ev.kind == "stdout":
                    out += ev.data
                elif ev.kind == "stderr":
                    err += ev.data
        if s.result is None:
            raise SandboxdError(f"command {cmd!r}: the stream ended without an exit status")
        s.result.stdout, s.result.stderr = bytes(out), bytes(err)
        if check and s.result.exit_code != 0:
            raise CommandError(s.result, cmd)
        return s.result

    async def start(self, cmd: Command, *, tag: str | None = None, keep_stdin_open: bool = False, **kw: Any) -> str:
        s = self.stream(cmd, background=True, tag=tag, keep_stdin_open=keep_stdin_open, **kw)
        try:
            async for ev in s:
                if ev.kind == "started":
                    return ev.exec_id
        finally:
            s.cancel()
        raise SandboxdError(f"command {cmd!r}: the stream ended before the command started")

    def attach(
        self,
        *,
        tag: str | None = None,
        exec_id: str | None = None,
        stdout_offset: int = 0,
        stderr_offset: int = 0,
        from_earliest: bool = False,
        deadline: float | None = None,
    ) -> AsyncExecStream:
        self._check()
        req = pb.AttachRequest(
            command=c.command_ref(self.id, tag, exec_id),
            stdout_offset=stdout_offset,
            stderr_offset=stderr_offset,
            from_earliest=from_earliest,
        )
        return AsyncExecStream(self.client._stub.Attach(req, timeout=deadline, metadata=self.client._md), tag or exec_id)

    async def write_input(
        self, data: bytes | str, *, tag: str | None = None, exec_id: str | None = None, close: bool = False
    ) -> None:
        self._check()
        req = pb.WriteInputRequest(
            command=c.command_ref(self.id, tag, exec_id), data=data.encode() if isinstance(data, str) else data, close=close
        )
        await self.client._call("WriteInput", req, idempotent=False)

    async def stream_input(
        self,
        chunks: Iterable[bytes | str] | AsyncIterable[bytes | str],
        *,
        tag: str | None = None,
        exec_id: str | None = None,
        close: bool = False,
    ) -> None:
        """As :meth:`sandboxd.Sandbox.stream_input`; ``chunks`` may be an async iterable."""
        self._check()
        ref = c.command_ref(self.id, tag, exec_id)

        async def requests() -> AsyncIterator[pb.StreamInputRequest]:
            yield pb.StreamInputRequest(command=ref)
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    yield pb.StreamInputRequest(data=chunk.encode() if isinstance(chunk, str) else chunk)
            else:
                for chunk in chunks:
                    yield pb.StreamInputRequest(data=chunk.encode() if isinstance(chunk, str) else chunk)
            if close:
                yield pb.StreamInputRequest(close=True)

        try:
            await self.client._stub.StreamInput(requests(), metadata=self.client._md)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def signal(self, sig: str, *, tag: str | None = None, exec_id: str | None = None) -> None:
        self._check()
        req = pb.SignalCommandRequest(command=c.command_ref(self.id, tag, exec_id), signal=sig)
        await self.client._call("SignalCommand", req, idempotent=False)

    async def resize_pty(self, rows: int, cols: int, *, tag: str | None = None, exec_id: str | None = None) -> None:
        self._check()
        req = pb.ResizePtyRequest(command=c.command_ref(self.id, tag, exec_id), size=pb.PtySize(rows=rows, cols=cols))
        await self.client._call("ResizePty", req, idempotent=True)

    async def list_commands(self) -> list[CommandInfo]:
        self._check()
        resp = await self.client._call("ListCommands", pb.ListCommandsRequest(sandbox_id=self.id), idempotent=True)
        return [CommandInfo._from_pb(x) for x in resp.commands]

    # -- files ------------------------------------------------------------------

    async def upload(
        self,
        remote: str,
        src: Source,
        *,
        mode: int = 0,
        make_parents: bool = True,
        progress: Progress | None = None,
        deadline: float | None = None,
    ) -> TransferResult:
        """As :meth:`sandboxd.Sandbox.upload` (local reads happen on the event loop)."""
        self._check()
        chunks = c.Chunks(src)
        header = pb.UploadHeader(
            sandbox_id=self.id, path=remote, mode=mode, make_parents=make_parents, expected_sha256=chunks.expected_sha256
        )
        if chunks.size is not None:
            header.expected_size = chunks.size
        try:
            resp = await self.client._stub.Upload(
                _requests(pb.UploadRequest(header=header), chunks, pb.UploadRequest, progress),
                timeout=deadline,
                metadata=self.client._md,
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            chunks.close()
        local = chunks.sha.hexdigest()
        if resp.sha256 != local or resp.bytes_written != chunks.done:
            raise ChecksumMismatch(
                f"upload {remote}: server wrote {resp.bytes_written} bytes sha256 {resp.sha256}, sent {chunks.done} sha256 {local}"
            )
        return TransferResult(size=resp.bytes_written, sha256=local)

    async def write_bytes(self, remote: str, data: bytes, **kw: Any) -> TransferResult:
        return await self.upload(remote, data, **kw)

    async def download(
        self, remote: str, dst: Destination, *, progress: Progress | None = None, deadline: float | None = None
    ) -> TransferResult:
        """As :meth:`sandboxd.Sandbox.download`, resuming a cut-off stream from the offset reached."""
        self._check()
        f, opened = c.open_destination(dst)
        try:
            return await self._download(remote, f, progress, deadline)
        finally:
            if opened:
                f.close()

    async def read_bytes(self, remote: str, **kw: Any) -> bytes:
        buf = io.BytesIO()
        await self.download(remote, buf, **kw)
        return buf.getvalue()

    async def _download(
        self, remote: str, f: IO[bytes], progress: Progress | None, deadline: float | None
    ) -> TransferResult:
        retry = self.client.retry
        end = None if deadline is None else time.monotonic() + deadline
        offset, whole, resumes, attempt = 0, hashlib.sha256(), 0, 0
        size, mode = -1, 0
        give_up = time.monotonic() + retry.total
        while True:
            seg, seg_bytes = hashlib.sha256(), 0
            req = pb.DownloadRequest(sandbox_id=self.id, path=remote, offset=offset)
            timeout = None if end is None else max(0.0, end - time.monotonic())
            try:
                async for msg in self.client._stub.Download(req, timeout=timeout, metadata=self.client._md):
                    kind = msg.WhichOneof("part")
                    if kind == "data":
                        f.write(msg.data)
                        whole.update(msg.data)
                        seg.update(msg.data)
                        seg_bytes += len(msg.data)
                        offset += len(msg.data)
                        attempt, give_up = 0, time.monotonic() + retry.total
                        if progress is not None:
                            progress(offset)
                    elif kind == "info":
                        size, mode = msg.info.size, msg.info.mode
                        if msg.info.offset != offset:
                            raise ChecksumMismatch(f"download {remote}: data starts at {msg.info.offset}, asked {offset}")
                    elif kind == "done":
                        if msg.done.sha256 != seg.hexdigest() or msg.done.bytes != seg_bytes or offset != size:
                            raise ChecksumMismatch(
                                f"download {remote}: server sent {msg.done.bytes} bytes sha256 {msg.done.sha256}, "
                                f"received {seg_bytes} sha256 {seg.hexdigest()} ({offset} of {size} in all)"
                            )
                        return TransferResult(size=offset, sha256=whole.hexdigest(), mode=mode, resumes=resumes)
                raise SandboxdError(f"download {remote}: the stream ended without its done message")
            except grpc.RpcError as e:
                if e.code() in c.STREAM_RESUME_CODES:
                    d = retry.delay(attempt)
                    attempt += 1
                    if time.monotonic() + d < give_up and (end is None or time.monotonic() + d < end):
                        await asyncio.sleep(d)
                        resumes += 1
                        continue
                raise from_rpc_error(e) from None

    async def upload_archive(
        self,
        remote_dir: str,
        src: Source,
        *,
        gzip: bool = False,
        replace: bool = False,
        make_parents: bool = True,
        progress: Progress | None = None,
        deadline: float | None = None,
    ) -> ArchiveResult:
        self._check()
        source, tmp = c.archive_source(src, gzip)
        chunks = c.Chunks(source)
        header = pb.UploadArchiveHeader(
            sandbox_id=self.id,
            path=remote_dir,
            format=pb.ARCHIVE_FORMAT_TAR_GZIP if gzip else pb.ARCHIVE_FORMAT_TAR,
            replace=replace,
            make_parents=make_parents,
        )
        try:
            resp = await self.client._stub.UploadArchive(
                _requests(pb.UploadArchiveRequest(header=header), chunks, pb.UploadArchiveRequest, progress),
                timeout=deadline,
                metadata=self.client._md,
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            chunks.close()
            if tmp is not None:
                tmp.close()
        if resp.archive_bytes != chunks.done:
            raise ChecksumMismatch(f"upload_archive {remote_dir}: server got {resp.archive_bytes} bytes, sent {chunks.done}")
        return ArchiveResult(
            entries=resp.entries, archive_bytes=resp.archive_bytes, file_bytes=resp.file_bytes, sha256=chunks.sha.hexdigest()
        )

    async def download_archive(
        self, remote_dir: str, dst: Destination, *, gzip: bool = False, deadline: float | None = None
    ) -> ArchiveResult:
        self._check()
        f, opened = c.open_destination(dst)
        req = pb.DownloadArchiveRequest(
            sandbox_id=self.id, path=remote_dir, format=pb.ARCHIVE_FORMAT_TAR_GZIP if gzip else pb.ARCHIVE_FORMAT_TAR
        )
        h, n = hashlib.sha256(), 0
        try:
            async for msg in self.client._stub.DownloadArchive(req, timeout=deadline, metadata=self.client._md):
                if msg.WhichOneof("part") == "data":
                    f.write(msg.data)
                    h.update(msg.data)
                    n += len(msg.data)
                elif msg.WhichOneof("part") == "done":
                    d = msg.done
                    if d.sha256 != h.hexdigest() or d.bytes != n:
                        raise ChecksumMismatch(
                            f"download_archive {remote_dir}: server sent {d.bytes} bytes sha256 {d.sha256}, got {n} {h.hexdigest()}"
                        )
                    return ArchiveResult(
                        entries=d.entries, archive_bytes=n, sha256=d.sha256, changed_while_reading=d.changed_while_reading
                    )
            raise SandboxdError(f"download_archive {remote_dir}: the stream ended without its done message")
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            if opened:
                f.close()

    async def stat(self, path: str, *, follow_symlinks: bool = False) -> FileInfo:
        self._check()
        req = pb.StatRequest(sandbox_id=self.id, path=path, follow_symlinks=follow_symlinks)
        return FileInfo._from_pb((await self.client._call("Stat", req, idempotent=True)).info)

    async def exists(self, path: str) -> bool:
        try:
            await self.stat(path)
            return True
        except NotFound:
            return False

    async def list_dir(self, path: str, *, depth: int = 0) -> list[FileInfo]:
        self._check()
        req = pb.ListDirRequest(sandbox_id=self.id, path=path, depth=depth)
        retry = self.client.retry
        give_up, attempt = time.monotonic() + retry.total, 0
        while True:
            try:
                out: list[FileInfo] = []
                async for msg in self.client._stub.ListDir(req, timeout=self.client.timeout, metadata=self.client._md):
                    out.extend(FileInfo._from_pb(e) for e in msg.entries)
                return out
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    d = retry.delay(attempt)
                    attempt += 1
                    if time.monotonic() + d < give_up:
                        await asyncio.sleep(d)
                        continue
                raise from_rpc_error(e) from None

    async def make_dir(self, path: str, *, parents: bool = False, mode: int | None = None) -> None:
        self._check()
        req = pb.MakeDirRequest(sandbox_id=self.id, path=path, parents=parents, mode=mode)
        await self.client._call("MakeDir", req, idempotent=False)

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        self._check()
        await self.client._call(
            "Remove", pb.RemoveRequest(sandbox_id=self.id, path=path, recursive=recursive), idempotent=False
        )

    async def move(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        self._check()
        req = pb.MoveRequest(sandbox_id=self.id, to=dst, overwrite=overwrite)
        setattr(req, "from", src)
        await self.client._call("Move", req, idempotent=False)

    async def watch(self, path: str, *, recursive: bool = False) -> AsyncWatch:
        """Watches a directory; returns once the watch is in place."""
        self._check()
        req = pb.WatchRequest(sandbox_id=self.id, path=path, recursive=recursive)
        return await AsyncWatch(self.client._stub.Watch(req, metadata=self.client._md))._ready()


async def _requests(header: Any, chunks: Iterator[bytes], cls: Any, progress: Progress | None) -> AsyncIterator[Any]:
    yield header
    done = 0
    for data in chunks:
        yield cls(data=data)
        done += len(data)
        if progress is not None:
            progress(done)
