"""Turning responses and events into results, and the decisions (retries,
checksums, lease failures) shared by the sync and async clients. Only the
calls, awaits and iterations stay in each client."""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Iterator
from typing import IO, Any, Callable, Generic, NoReturn, TypeVar

import grpc

from ._common import STREAM_RESUME_CODES, Chunks, RetryPolicy
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from .errors import ChecksumMismatch, CommandError, LeaseError, SandboxdError, from_rpc_error
from .types import ArchiveResult, CommandResult, ExecEvent, TransferResult, Utf8Decoder, _ts

Progress = Callable[[int], None]
R = TypeVar("R")


def expiry(ts: Any) -> datetime.datetime | None:
    return _ts(ts)


def raise_rpc(e: Any) -> NoReturn:
    """Raises the typed error for the gRPC error ``e``."""
    raise from_rpc_error(e) from None


def is_unavailable(e: Any) -> bool:
    return bool(e.code() == grpc.StatusCode.UNAVAILABLE)


def is_cancelled(e: Any) -> bool:
    return bool(e.code() == grpc.StatusCode.CANCELLED)


class Backoff:
    """When to retry: the policy's delays while they end before ``total``
    seconds (the policy's by default) and before the deadline ``end``
    (a time.monotonic() value), if any."""

    def __init__(self, policy: RetryPolicy, total: float | None = None, end: float | None = None) -> None:
        self.policy, self.end, self.attempt = policy, end, 0
        self.give_up = time.monotonic() + (policy.total if total is None else total)

    def reset(self) -> None:
        """Progress was made: the retries start over."""
        self.attempt, self.give_up = 0, time.monotonic() + self.policy.total

    def delay(self) -> float | None:
        """The wait before the next attempt, or None to give up."""
        d = self.policy.delay(self.attempt)
        self.attempt += 1
        now = time.monotonic()
        if now + d < self.give_up and (self.end is None or now + d < self.end):
            return d
        return None

    def retry_unavailable(self, e: grpc.RpcError) -> float:
        """The wait before retrying after ``e``; raises its typed error unless
        it is UNAVAILABLE and there is time left."""
        d = self.delay() if is_unavailable(e) else None
        if d is None:
            raise_rpc(e)
        return d


def keepalive_interval(ttl: float | None, lease_expires_at: datetime.datetime | None) -> float:
    """Renewals every TTL/3 (the TTL from the current expiry when None)."""
    if ttl is None:
        exp = lease_expires_at
        now = datetime.datetime.now(datetime.timezone.utc)
        ttl = max(1.0, (exp - now).total_seconds()) if exp else 60.0
    return max(0.2, ttl / 3)


def lease_failure(sandbox_id: str, e: Exception) -> LeaseError:
    msg, code = (e.message, e.code) if isinstance(e, SandboxdError) else (repr(e), None)
    err = LeaseError(f"renewing the lease of sandbox {sandbox_id} failed: {msg}", code=code)
    err.__cause__ = e
    return err


def destroy_failed_note(sandbox_id: str, error: SandboxdError, exc: BaseException | None) -> None:
    """Leaving a sandbox's block: a failed destroy is raised, unless the block
    already raised (then it is noted on that exception)."""
    if exc is None:
        raise error
    if hasattr(exc, "add_note"):
        exc.add_note(f"sandboxd: destroying sandbox {sandbox_id} failed too: {error}")


class ExecState:
    """What the sync and async exec streams share: the call, and the command's
    exec id, pid and (after its exit) result, taken from its events."""

    def __init__(self, call: Any, cmd: object = None) -> None:
        self._call = call
        self.cmd = cmd
        self.exec_id = ""
        self.pid = 0
        self.result: CommandResult | None = None

    def cancel(self) -> None:
        self._call.cancel()

    def _event(self, msg: Any) -> ExecEvent | None:
        ev = ExecEvent._from_pb(msg, (self.exec_id, self.pid))
        if ev is None:
            return None
        if ev.kind == "started":
            self.exec_id, self.pid = ev.exec_id, ev.pid
        elif ev.kind == "exited":
            self.result = ev.result
        return ev

    def _left(self) -> None:
        if self.result is None:  # left early (break, an error): end the RPC
            self._call.cancel()


class TextSplit:
    """Decodes stdout and stderr events with a :class:`Utf8Decoder` per stream."""

    def __init__(self) -> None:
        self.decoders = {"stdout": Utf8Decoder(), "stderr": Utf8Decoder()}

    def feed(self, ev: ExecEvent) -> tuple[str, str] | None:
        if ev.kind in self.decoders:
            s = self.decoders[ev.kind].feed(ev.data)
            if s:
                return ev.kind, s
        return None

    def flush(self) -> Iterator[tuple[str, str]]:
        for kind, d in self.decoders.items():
            s = d.flush()
            if s:
                yield kind, s


class Output:
    """run(): the output gathered from a command's events, and its result."""

    def __init__(self) -> None:
        self.out, self.err = bytearray(), bytearray()

    def feed(self, ev: ExecEvent) -> None:
        if ev.kind == "stdout":
            self.out += ev.data
        elif ev.kind == "stderr":
            self.err += ev.data

    def result(self, result: CommandResult | None, cmd: object, check: bool) -> CommandResult:
        if result is None:
            raise SandboxdError(f"command {cmd!r}: the stream ended without an exit status")
        result.stdout, result.stderr = bytes(self.out), bytes(self.err)
        if check and result.exit_code != 0:
            raise CommandError(result, cmd)
        return result


def not_started(cmd: object) -> SandboxdError:
    return SandboxdError(f"command {cmd!r}: the stream ended before the command started")


def upload_result(remote: str, resp: Any, chunks: Chunks) -> TransferResult:
    local = chunks.sha.hexdigest()
    if resp.sha256 != local or resp.bytes_written != chunks.done:
        raise ChecksumMismatch(
            f"upload {remote}: server wrote {resp.bytes_written} bytes sha256 {resp.sha256}, sent {chunks.done} sha256 {local}"
        )
    return TransferResult(size=resp.bytes_written, sha256=local)


def upload_archive_result(remote_dir: str, resp: Any, chunks: Chunks) -> ArchiveResult:
    if resp.archive_bytes != chunks.done:
        raise ChecksumMismatch(f"upload_archive {remote_dir}: server got {resp.archive_bytes} bytes, sent {chunks.done}")
    return ArchiveResult(
        entries=resp.entries, archive_bytes=resp.archive_bytes, file_bytes=resp.file_bytes, sha256=chunks.sha.hexdigest()
    )


class Receiver(Generic[R]):
    """A server-streaming transfer: :meth:`feed` takes each message until it
    returns the result; :meth:`unfinished` is the error of a stream that
    ended without one."""

    def feed(self, msg: Any) -> R | None:
        raise NotImplementedError

    def unfinished(self) -> SandboxdError:
        raise NotImplementedError


class Download(Receiver[TransferResult]):
    """A download that resumes a cut-off stream from the offset reached:
    :meth:`segment` gives each stream's request and timeout, :meth:`feed`
    takes its messages (writing the data to ``f``) until the result, and
    :meth:`resume` decides on a failed stream."""

    def __init__(
        self,
        sandbox_id: str,
        remote: str,
        f: IO[bytes],
        progress: Progress | None,
        retry: RetryPolicy,
        deadline: float | None,
    ) -> None:
        self.sandbox_id, self.remote, self.f, self.progress = sandbox_id, remote, f, progress
        self.end = None if deadline is None else time.monotonic() + deadline
        self.backoff = Backoff(retry, end=self.end)
        self.offset, self.whole, self.resumes = 0, hashlib.sha256(), 0
        self.size, self.mode = -1, 0
        self.seg, self.seg_bytes = hashlib.sha256(), 0

    def segment(self) -> tuple[pb.DownloadRequest, float | None]:
        self.seg, self.seg_bytes = hashlib.sha256(), 0
        req = pb.DownloadRequest(sandbox_id=self.sandbox_id, path=self.remote, offset=self.offset)
        return req, None if self.end is None else max(0.0, self.end - time.monotonic())

    def feed(self, msg: Any) -> TransferResult | None:
        kind = msg.WhichOneof("part")
        if kind == "data":
            self.f.write(msg.data)
            self.whole.update(msg.data)
            self.seg.update(msg.data)
            self.seg_bytes += len(msg.data)
            self.offset += len(msg.data)
            self.backoff.reset()
            if self.progress is not None:
                self.progress(self.offset)
        elif kind == "info":
            self.size, self.mode = msg.info.size, msg.info.mode
            if msg.info.offset != self.offset:
                raise ChecksumMismatch(f"download {self.remote}: data starts at {msg.info.offset}, asked {self.offset}")
        elif kind == "done":
            seg = self.seg.hexdigest()
            if msg.done.sha256 != seg or msg.done.bytes != self.seg_bytes or self.offset != self.size:
                raise ChecksumMismatch(
                    f"download {self.remote}: server sent {msg.done.bytes} bytes sha256 {msg.done.sha256}, "
                    f"received {self.seg_bytes} sha256 {seg} ({self.offset} of {self.size} in all)"
                )
            return TransferResult(size=self.offset, sha256=self.whole.hexdigest(), mode=self.mode, resumes=self.resumes)
        return None

    def unfinished(self) -> SandboxdError:
        return SandboxdError(f"download {self.remote}: the stream ended without its done message")

    def resume(self, e: grpc.RpcError) -> float:
        """The wait before resuming after ``e``; raises its typed error when
        it is not resumable or the time is up."""
        d = self.backoff.delay() if e.code() in STREAM_RESUME_CODES else None
        if d is None:
            raise_rpc(e)
        self.resumes += 1
        return d


class ArchiveDownload(Receiver[ArchiveResult]):
    """download_archive: writes the data messages to ``f``, checks the sha256."""

    def __init__(self, remote_dir: str, f: IO[bytes]) -> None:
        self.remote_dir, self.f, self.h, self.n = remote_dir, f, hashlib.sha256(), 0

    def feed(self, msg: Any) -> ArchiveResult | None:
        if msg.WhichOneof("part") == "data":
            self.f.write(msg.data)
            self.h.update(msg.data)
            self.n += len(msg.data)
        elif msg.WhichOneof("part") == "done":
            d, n, h = msg.done, self.n, self.h
            if d.sha256 != h.hexdigest() or d.bytes != n:
                raise ChecksumMismatch(
                    f"download_archive {self.remote_dir}: server sent {d.bytes} bytes sha256 {d.sha256}, got {n} {h.hexdigest()}"
                )
            return ArchiveResult(entries=d.entries, archive_bytes=n, sha256=d.sha256, changed_while_reading=d.changed_while_reading)
        return None

    def unfinished(self) -> SandboxdError:
        return SandboxdError(f"download_archive {self.remote_dir}: the stream ended without its done message")
