"""The asyncio client's files: :class:`AsyncWatch` and the file methods of
:class:`sandboxd.AsyncSandbox`."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import IO, TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio

from . import _common as c
from . import _convert as cv
from . import _requests as rq
from ._common import Destination, Source
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from .errors import NotFound, SandboxdError
from .types import ArchiveResult, FileInfo, TransferResult, WatchEvent

if TYPE_CHECKING:
    from .aio import AsyncClient

Progress = Callable[[int], None]
R = TypeVar("R")


async def _receive(messages: AsyncIterable[Any], receiver: cv.Receiver[R]) -> R:
    async for msg in messages:
        result = receiver.feed(msg)
        if result is not None:
            return result
    raise receiver.unfinished()


class AsyncWatch:
    """A directory watch: ``async for ev in watch``; close() to stop."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._pending: list[WatchEvent] = []

    async def _ready(self) -> AsyncWatch:
        try:
            first = await self._call.read()
        except grpc.RpcError as e:
            cv.raise_rpc(e)
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
            if cv.is_cancelled(e):
                return
            cv.raise_rpc(e)


class AsyncFiles:
    """The file methods of :class:`sandboxd.AsyncSandbox`."""

    if TYPE_CHECKING:
        client: AsyncClient
        id: str

        def _check(self) -> None: ...

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
        resp = await self._send("Upload", rq.upload_header(self.id, remote, mode, make_parents, chunks), chunks, progress, deadline)
        return cv.upload_result(remote, resp, chunks)

    async def _send(self, method: str, header: Any, chunks: c.Chunks, progress: Progress | None, deadline: float | None) -> Any:
        """A client-streaming upload: ``header``, then the chunks; its response."""
        requests = rq.Outgoing(header, chunks, progress)
        try:
            return await getattr(self.client._stub, method)(requests.aiter(), timeout=deadline, metadata=self.client._md)
        except grpc.RpcError as e:
            cv.raise_rpc(e)
        finally:
            chunks.close()

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
        state = cv.Download(self.id, remote, f, progress, self.client.retry, deadline)
        while True:
            req, timeout = state.segment()
            try:
                return await _receive(self.client._stub.Download(req, timeout=timeout, metadata=self.client._md), state)
            except grpc.RpcError as e:
                await asyncio.sleep(state.resume(e))

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
        try:
            chunks = c.Chunks(source)
            header = rq.archive_header(self.id, remote_dir, gzip, replace, make_parents)
            resp = await self._send("UploadArchive", header, chunks, progress, deadline)
        finally:
            if tmp is not None:
                tmp.close()
        return cv.upload_archive_result(remote_dir, resp, chunks)

    async def download_archive(
        self, remote_dir: str, dst: Destination, *, gzip: bool = False, deadline: float | None = None
    ) -> ArchiveResult:
        self._check()
        f, opened = c.open_destination(dst)
        req = rq.download_archive_request(self.id, remote_dir, gzip)
        state = cv.ArchiveDownload(remote_dir, f)
        try:
            return await _receive(self.client._stub.DownloadArchive(req, timeout=deadline, metadata=self.client._md), state)
        except grpc.RpcError as e:
            cv.raise_rpc(e)
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
        backoff = cv.Backoff(self.client.retry)
        while True:
            try:
                out: list[FileInfo] = []
                async for msg in self.client._stub.ListDir(req, timeout=self.client.timeout, metadata=self.client._md):
                    out.extend(FileInfo._from_pb(e) for e in msg.entries)
                return out
            except grpc.RpcError as e:
                await asyncio.sleep(backoff.retry_unavailable(e))

    async def make_dir(self, path: str, *, parents: bool = False, mode: int | None = None) -> None:
        self._check()
        req = pb.MakeDirRequest(sandbox_id=self.id, path=path, parents=parents, mode=mode)
        await self.client._call("MakeDir", req, idempotent=False)

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        self._check()
        req = pb.RemoveRequest(sandbox_id=self.id, path=path, recursive=recursive)
        await self.client._call("Remove", req, idempotent=False)

    async def move(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        self._check()
        await self.client._call("Move", rq.move_request(self.id, src, dst, overwrite), idempotent=False)

    async def watch(self, path: str, *, recursive: bool = False) -> AsyncWatch:
        """Watches a directory; returns once the watch is in place."""
        self._check()
        req = pb.WatchRequest(sandbox_id=self.id, path=path, recursive=recursive)
        return await AsyncWatch(self.client._stub.Watch(req, metadata=self.client._md))._ready()
