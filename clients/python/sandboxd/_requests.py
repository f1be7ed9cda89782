"""Building the request messages, shared by the sync and async clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable

from google.protobuf import duration_pb2

from ._gen.sandbox.v1 import sandbox_pb2 as pb
from .errors import from_rpc_error

if TYPE_CHECKING:
    from ._common import Chunks, Command


def duration(seconds: float | None) -> Any:
    if seconds is None:
        return None
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def data(chunk: bytes | str) -> bytes:
    return chunk.encode() if isinstance(chunk, str) else chunk


def create_request(
    *,
    cores: int,
    memory_mib: int,
    disk_gib: int,
    labels: Mapping[str, str] | None,
    ttl: float | None,
    internet_access: bool,
    request_id: str | None,
) -> pb.CreateSandboxRequest:
    """CreateSandbox's request; one ``request_id`` (a fresh uuid unless given)
    for all its retries, so a retry never makes a second sandbox."""
    return pb.CreateSandboxRequest(
        resources=pb.Resources(cores=cores, memory_mib=memory_mib, disk_gib=disk_gib),
        internet_access=internet_access,
        labels=dict(labels or {}),
        lease_ttl=duration(ttl),
        request_id=request_id or f"py-{uuid.uuid4()}",
    )


def list_request(labels: Mapping[str, str] | None, token: str) -> pb.ListSandboxesRequest:
    return pb.ListSandboxesRequest(label_selector=dict(labels or {}), page_size=1000, page_token=token)


def exec_request(
    sandbox_id: str,
    cmd: Command,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin: bytes | str | None = None,
    timeout: float | None = None,
    max_output_bytes: int = 0,
    discard_over_limit: bool = False,
    background: bool = False,
    keep_stdin_open: bool = False,
    tag: str | None = None,
    retain_bytes: int = 0,
    pty: tuple[int, int] | None = None,
) -> pb.ExecRequest:
    req = pb.ExecRequest(
        sandbox_id=sandbox_id,
        env=dict(env or {}),
        cwd=cwd or "",
        stdin=data(stdin or b""),
        timeout=duration(timeout),
        max_output_bytes=max_output_bytes,
        output_limit_action=pb.OUTPUT_LIMIT_ACTION_DISCARD if discard_over_limit else pb.OUTPUT_LIMIT_ACTION_UNSPECIFIED,
        background=background,
        keep_stdin_open=keep_stdin_open,
        tag=tag or "",
        retain_bytes=retain_bytes,
    )
    if pty is not None:
        req.pty.CopyFrom(pb.PtySize(rows=pty[0], cols=pty[1]))
    if isinstance(cmd, str):
        req.shell = cmd
    else:
        req.argv.CopyFrom(pb.Argv(args=list(cmd)))
    return req


def command_ref(sandbox_id: str, tag: str | None, exec_id: str | None) -> pb.CommandRef:
    """A kept command, by its tag or its exec id (exactly one)."""
    if (tag is None) == (exec_id is None):
        raise ValueError("name the command by exactly one of tag= and exec_id=")
    if tag is not None:
        return pb.CommandRef(sandbox_id=sandbox_id, tag=tag)
    return pb.CommandRef(sandbox_id=sandbox_id, exec_id=exec_id)


def attach_request(
    sandbox_id: str, tag: str | None, exec_id: str | None, stdout_offset: int, stderr_offset: int, from_earliest: bool
) -> pb.AttachRequest:
    return pb.AttachRequest(
        command=command_ref(sandbox_id, tag, exec_id),
        stdout_offset=stdout_offset,
        stderr_offset=stderr_offset,
        from_earliest=from_earliest,
    )


def write_input_request(
    sandbox_id: str, chunk: bytes | str, tag: str | None, exec_id: str | None, close: bool
) -> pb.WriteInputRequest:
    return pb.WriteInputRequest(command=command_ref(sandbox_id, tag, exec_id), data=data(chunk), close=close)


def input_requests(ref: pb.CommandRef, chunks: Iterable[bytes | str], close: bool) -> Iterator[pb.StreamInputRequest]:
    """StreamInput's messages: the command, then each chunk, then close when asked."""
    yield pb.StreamInputRequest(command=ref)
    for chunk in chunks:
        yield pb.StreamInputRequest(data=data(chunk))
    if close:
        yield pb.StreamInputRequest(close=True)


def signal_request(sandbox_id: str, sig: str, tag: str | None, exec_id: str | None) -> pb.SignalCommandRequest:
    return pb.SignalCommandRequest(command=command_ref(sandbox_id, tag, exec_id), signal=sig)


def resize_request(sandbox_id: str, rows: int, cols: int, tag: str | None, exec_id: str | None) -> pb.ResizePtyRequest:
    return pb.ResizePtyRequest(command=command_ref(sandbox_id, tag, exec_id), size=pb.PtySize(rows=rows, cols=cols))


def archive_format(gzip: bool) -> Any:
    return pb.ARCHIVE_FORMAT_TAR_GZIP if gzip else pb.ARCHIVE_FORMAT_TAR


def upload_header(sandbox_id: str, remote: str, mode: int, make_parents: bool, chunks: Chunks) -> pb.UploadRequest:
    """The first Upload message: the size when known ahead, the sha256 for bytes."""
    header = pb.UploadHeader(
        sandbox_id=sandbox_id, path=remote, mode=mode, make_parents=make_parents, expected_sha256=chunks.expected_sha256
    )
    if chunks.size is not None:
        header.expected_size = chunks.size
    return pb.UploadRequest(header=header)


def archive_header(
    sandbox_id: str, remote_dir: str, gzip: bool, replace: bool, make_parents: bool
) -> pb.UploadArchiveRequest:
    header = pb.UploadArchiveHeader(
        sandbox_id=sandbox_id, path=remote_dir, format=archive_format(gzip), replace=replace, make_parents=make_parents
    )
    return pb.UploadArchiveRequest(header=header)


def download_archive_request(sandbox_id: str, remote_dir: str, gzip: bool) -> pb.DownloadArchiveRequest:
    return pb.DownloadArchiveRequest(sandbox_id=sandbox_id, path=remote_dir, format=archive_format(gzip))


def move_request(sandbox_id: str, src: str, dst: str, overwrite: bool) -> pb.MoveRequest:
    req = pb.MoveRequest(sandbox_id=sandbox_id, to=dst, overwrite=overwrite)
    setattr(req, "from", src)
    return req


class Outgoing:
    """A client-streaming upload's messages: the header message, then one of
    its type per chunk (``data``), ``progress(bytes_done)`` after each. What
    the source raised is kept in ``failure`` (grpc would swallow it into
    CANCELLED)."""

    def __init__(self, header: Any, chunks: Chunks, progress: Callable[[int], None] | None) -> None:
        self.header, self.chunks, self.cls, self.progress = header, chunks, type(header), progress
        self.failure: list[BaseException] = []

    def __iter__(self) -> Iterator[Any]:
        try:
            yield self.header
            for chunk in self.chunks:
                yield self.cls(data=chunk)
                if self.progress is not None:
                    self.progress(self.chunks.done)
        except BaseException as e:
            self.failure.append(e)
            raise

    async def aiter(self) -> AsyncIterator[Any]:
        yield self.header
        for chunk in self.chunks:
            yield self.cls(data=chunk)
            if self.progress is not None:
                self.progress(self.chunks.done)

    def error(self, e: Any) -> BaseException:
        """What to raise for the RPC error ``e``: the source's own failure first."""
        return self.failure[0] if self.failure else from_rpc_error(e)
