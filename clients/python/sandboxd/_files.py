"""The sync client's files: :class:`Watch` and the file methods of
:class:`sandboxd.Sandbox`."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

import grpc

from . import _common as c
from . import _convert as cv
from . import _requests as rq
from ._common import Destination, Source
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from .errors import NotFound
from .types import ArchiveResult, FileInfo, TransferResult, WatchEvent

if TYPE_CHECKING:
    from .client import Client

Progress = Callable[[int], None]
R = TypeVar("R")


def _receive(messages: Iterable[Any], receiver: cv.Receiver[R]) -> R:
    for msg in messages:
        result = receiver.feed(msg)
        if result is not None:
            return result
    raise receiver.unfinished()


class Watch:
    """A directory watch (iterate it for :class:`WatchEvent` s); changes after
    :meth:`Sandbox.watch` returned are reported. Close it (or leave its
    ``with`` block) to stop."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._it = iter(call)
        try:
            first = next(self._it)
        except grpc.RpcError as e:
            cv.raise_rpc(e)
        self._pending = [WatchEvent._from_pb(e) for e in first.events]

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._call.cancel()

    def __iter__(self) -> Iterator[WatchEvent]:
        yield from self._pending
        self._pending = []
        try:
            for msg in self._it:
                for e in msg.events:
                    yield WatchEvent._from_pb(e)
        except grpc.RpcError as e:
            if cv.is_cancelled(e):
                return
            cv.raise_rpc(e)


class Files:
    """The file methods of :class:`sandboxd.Sandbox`."""

    if TYPE_CHECKING:
        client: Client
        id: str

        def _check(self) -> None: ...

    def upload(
        self,
        remote: str,
        src: Source,
        *,
        mode: int = 0,
        make_parents: bool = True,
        progress: Progress | None = None,
        deadline: float | None = None,
    ) -> TransferResult:
        """Writes ``src`` (a local path, bytes, a binary file or an iterable of
        bytes) to ``remote``, streamed in chunks; ``progress(bytes_done)``
        after each (called from gRPC's sending thread). The server's sha256 is checked against the one computed
        here (ChecksumMismatch); the size is sent ahead when known (and the
        sha256 for bytes), so a mismatch leaves nothing at the path. Not retried."""
        self._check()
        chunks = c.Chunks(src)
        resp = self._send("Upload", rq.upload_header(self.id, remote, mode, make_parents, chunks), chunks, progress, deadline)
        return cv.upload_result(remote, resp, chunks)

    def _send(self, method: str, header: Any, chunks: c.Chunks, progress: Progress | None, deadline: float | None) -> Any:
        """A client-streaming upload: ``header``, then the chunks; its response."""
        requests = rq.Outgoing(header, chunks, progress)
        try:
            return getattr(self.client._stub, method)(iter(requests), timeout=deadline, metadata=self.client._md)
        except grpc.RpcError as e:
            raise requests.error(e) from None
        finally:
            chunks.close()

    def write_bytes(self, remote: str, data: bytes, **kw: Any) -> TransferResult:
        return self.upload(remote, data, **kw)

    def download(
        self, remote: str, dst: Destination, *, progress: Progress | None = None, deadline: float | None = None
    ) -> TransferResult:
        """Reads ``remote`` into ``dst`` (a local path or a writable binary
        file), ``progress(bytes_done)`` after each chunk. A stream cut off
        midway (UNAVAILABLE, a broken stream) is resumed from the offset
        reached, as the retry policy allows; the server's sha256 of the last
        stretch and the total size are checked (ChecksumMismatch). On an
        error, what was written to ``dst`` so far stays there."""
        self._check()
        f, opened = c.open_destination(dst)
        try:
            return self._download(remote, f, progress, deadline)
        finally:
            if opened:
                f.close()

    def read_bytes(self, remote: str, **kw: Any) -> bytes:
        """The whole file's bytes."""
        buf = io.BytesIO()
        self.download(remote, buf, **kw)
        return buf.getvalue()

    def _download(self, remote: str, f: IO[bytes], progress: Progress | None, deadline: float | None) -> TransferResult:
        state = cv.Download(self.id, remote, f, progress, self.client.retry, deadline)
        while True:
            req, timeout = state.segment()
            try:
                return _receive(self.client._stub.Download(req, timeout=timeout, metadata=self.client._md), state)
            except grpc.RpcError as e:
                time.sleep(state.resume(e))

    def upload_archive(
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
        """Unpacks a tar (``gzip``: tar.gz) archive into the new directory
        ``remote_dir``; ``src`` is a local directory (packed here first) or
        the archive as a path, bytes, file or iterable. ``replace`` swaps out
        an existing directory (else AlreadyExists). Not retried."""
        self._check()
        source, tmp = c.archive_source(src, gzip)
        try:
            chunks = c.Chunks(source)
            header = rq.archive_header(self.id, remote_dir, gzip, replace, make_parents)
            resp = self._send("UploadArchive", header, chunks, progress, deadline)
        finally:
            if tmp is not None:
                tmp.close()
        return cv.upload_archive_result(remote_dir, resp, chunks)

    def download_archive(
        self, remote_dir: str, dst: Destination, *, gzip: bool = False, deadline: float | None = None
    ) -> ArchiveResult:
        """Writes the directory as a tar (``gzip``: tar.gz) archive to ``dst``
        (a local path or a writable binary file), checking its sha256."""
        self._check()
        f, opened = c.open_destination(dst)
        req = rq.download_archive_request(self.id, remote_dir, gzip)
        state = cv.ArchiveDownload(remote_dir, f)
        try:
            return _receive(self.client._stub.DownloadArchive(req, timeout=deadline, metadata=self.client._md), state)
        except grpc.RpcError as e:
            cv.raise_rpc(e)
        finally:
            if opened:
                f.close()

    def stat(self, path: str, *, follow_symlinks: bool = False) -> FileInfo:
        self._check()
        req = pb.StatRequest(sandbox_id=self.id, path=path, follow_symlinks=follow_symlinks)
        return FileInfo._from_pb(self.client._call("Stat", req, idempotent=True).info)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
            return True
        except NotFound:
            return False

    def list_dir(self, path: str, *, depth: int = 0) -> list[FileInfo]:
        """A directory's entries (``depth`` > 1: recursive). Retried as a whole on UNAVAILABLE."""
        self._check()
        req = pb.ListDirRequest(sandbox_id=self.id, path=path, depth=depth)
        backoff = cv.Backoff(self.client.retry)
        while True:
            try:
                return [
                    FileInfo._from_pb(e)
                    for msg in self.client._stub.ListDir(req, timeout=self.client.timeout, metadata=self.client._md)
                    for e in msg.entries
                ]
            except grpc.RpcError as e:
                time.sleep(backoff.retry_unavailable(e))

    def make_dir(self, path: str, *, parents: bool = False, mode: int | None = None) -> None:
        """mkdir (``parents``: mkdir -p). AlreadyExists when it exists."""
        self._check()
        req = pb.MakeDirRequest(sandbox_id=self.id, path=path, parents=parents, mode=mode)
        self.client._call("MakeDir", req, idempotent=False)

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Removes a file, symlink or empty directory (``recursive``: any directory)."""
        self._check()
        self.client._call("Remove", pb.RemoveRequest(sandbox_id=self.id, path=path, recursive=recursive), idempotent=False)

    def move(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        """Renames ``src`` to ``dst`` (AlreadyExists unless ``overwrite``). Not retried."""
        self._check()
        self.client._call("Move", rq.move_request(self.id, src, dst, overwrite), idempotent=False)

    def watch(self, path: str, *, recursive: bool = False) -> Watch:
        """Watches a directory; returns once the watch is in place."""
        self._check()
        req = pb.WatchRequest(sandbox_id=self.id, path=path, recursive=recursive)
        return Watch(self.client._stub.Watch(req, metadata=self.client._md))
