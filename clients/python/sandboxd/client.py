"""The synchronous client: :class:`Client` and :class:`Sandbox`."""

from __future__ import annotations

import datetime
import hashlib
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

import grpc

from . import _common as c
from ._common import TLS, Command, Destination, RetryPolicy, Source
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from ._gen.sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from .errors import ChecksumMismatch, CommandError, LeaseError, SandboxdError, from_rpc_error
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

LeaseErrorCallback = Callable[[SandboxdError], None]
Progress = Callable[[int], None]


class Client:
    """A connection to sandboxd.

    ``addr`` is host:port (default: ``$SANDBOXD_ADDR``, else 127.0.0.1:8080);
    ``token`` an API token sent as ``authorization: Bearer`` (default
    ``$SANDBOXD_TOKEN``); ``tls`` a :class:`TLS` (or a dict with ``ca``,
    ``cert``, ``key`` paths, or True for the system's roots), plaintext when
    None; ``timeout`` the default deadline in seconds of the short calls
    (create, get, stat...; None: none). Idempotent calls are retried on
    UNAVAILABLE as ``retry`` says. Use it as a context manager, or call close().
    """

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
            self._channel = grpc.secure_channel(self.addr, t.credentials(), options=c.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(self.addr, options=c.CHANNEL_OPTIONS)
        self._stub: Any = pb_grpc.SandboxServiceStub(self._channel)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._open: weakref.WeakSet[Sandbox] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"Client({self.addr!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops the lease renewal of every sandbox still open (without
        destroying them) and closes the connection."""
        for sb in list(self._open):
            sb._stop_renewal()
        self._channel.close()

    # -- plumbing -----------------------------------------------------------

    def _call(
        self,
        name: str,
        req: Any,
        *,
        idempotent: bool,
        timeout: float | None = None,
        total: float | None = None,
        stop: threading.Event | None = None,
    ) -> Any:
        """A unary call; retried on UNAVAILABLE when idempotent (backoff with
        jitter, within ``total`` seconds, the retry policy's by default)."""
        method = getattr(self._stub, name)
        give_up = time.monotonic() + (self.retry.total if total is None else total)
        attempt = 0
        while True:
            try:
                return method(req, timeout=timeout if timeout is not None else self.timeout, metadata=self._md)
            except grpc.RpcError as e:
                if idempotent and e.code() == grpc.StatusCode.UNAVAILABLE:
                    d = self.retry.delay(attempt)
                    attempt += 1
                    if time.monotonic() + d < give_up and not (stop and stop.is_set()):
                        if stop is not None:
                            stop.wait(d)
                        else:
                            time.sleep(d)
                        if not (stop and stop.is_set()):
                            continue
                raise from_rpc_error(e) from None

    # -- sandboxes ----------------------------------------------------------

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
    ) -> Sandbox:
        """Creates a sandbox (zero resources take the server's defaults; ``ttl``
        is the lease in seconds, the server's default when None) and returns
        it once it is ready. Retried on UNAVAILABLE with one ``request_id``
        (a fresh uuid unless given), so a retry never makes a second sandbox.

        Use it as ``with client.create(...) as sb:``: leaving the block
        destroys the sandbox. Meanwhile a background thread renews its lease
        every TTL/3 (unless ``keepalive=False``)."""
        req = c.create_request(
            cores=cores,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            labels=labels,
            ttl=ttl,
            internet_access=internet_access,
            request_id=request_id or f"py-{uuid.uuid4()}",
        )
        resp = self._call("CreateSandbox", req, idempotent=True)
        sb = Sandbox(self, SandboxInfo._from_pb(resp.sandbox))
        if keepalive:
            sb.start_keepalive(ttl, on_lease_error=on_lease_error)
        return sb

    def get(self, sandbox_id: str) -> Sandbox:
        """The sandbox with this id (NotFound when it does not exist), without
        lease renewal (see :meth:`Sandbox.start_keepalive`)."""
        resp = self._call("GetSandbox", pb.GetSandboxRequest(sandbox_id=sandbox_id), idempotent=True)
        return Sandbox(self, SandboxInfo._from_pb(resp.sandbox))

    def sandbox(self, sandbox_id: str) -> Sandbox:
        """A handle on a sandbox by id, without a call (``info`` is None until refresh())."""
        return Sandbox(self, None, sandbox_id=sandbox_id)

    def list(self, labels: Mapping[str, str] | None = None) -> list[SandboxInfo]:
        """The caller's sandboxes carrying all these labels, oldest first (every page)."""
        out: list[SandboxInfo] = []
        token = ""
        while True:
            req = pb.ListSandboxesRequest(label_selector=dict(labels or {}), page_size=1000, page_token=token)
            resp = self._call("ListSandboxes", req, idempotent=True)
            out.extend(SandboxInfo._from_pb(s) for s in resp.sandboxes)
            token = resp.next_page_token
            if not token:
                return out

    def destroy(self, sandbox_id: str) -> None:
        """Destroys a sandbox; succeeds when it is already gone."""
        self._call("DestroySandbox", pb.DestroySandboxRequest(sandbox_id=sandbox_id), idempotent=True)


class ExecStream:
    """A streamed command: iterate it for :class:`ExecEvent` s (once). After the
    ``exited`` event, ``result`` holds how it ended. :meth:`text` iterates
    decoded text instead; :meth:`cancel` ends the RPC (which kills a
    foreground command and detaches from a background one)."""

    def __init__(self, call: Any, cmd: object = None) -> None:
        self._call = call
        self.cmd = cmd
        self.exec_id = ""
        self.pid = 0
        self.result: CommandResult | None = None

    def __enter__(self) -> ExecStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        self._call.cancel()

    def __iter__(self) -> Iterator[ExecEvent]:
        try:
            for msg in self._call:
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

    def text(self) -> Iterator[tuple[str, str]]:
        """(stream, text) pairs, "stdout" or "stderr", decoded as UTF-8 with a
        :class:`Utf8Decoder` per stream: a character split across chunks comes
        out whole, in the later piece."""
        decoders = {"stdout": Utf8Decoder(), "stderr": Utf8Decoder()}
        for ev in self:
            if ev.kind in decoders:
                s = decoders[ev.kind].feed(ev.data)
                if s:
                    yield ev.kind, s
        for kind, d in decoders.items():
            s = d.flush()
            if s:
                yield kind, s


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
            raise from_rpc_error(e) from None
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
            if e.code() == grpc.StatusCode.CANCELLED:
                return
            raise from_rpc_error(e) from None


class Sandbox:
    """One sandbox. From :meth:`Client.create` (then it renews its lease in
    the background, and leaving its ``with`` block destroys it) or
    :meth:`Client.get`. Every call on it first raises a pending
    :class:`LeaseError` (a failed renewal not followed by a good one)."""

    def __init__(self, client: Client, info: SandboxInfo | None, *, sandbox_id: str | None = None) -> None:
        self.client = client
        self.info = info
        self.id: str = info.id if info is not None else (sandbox_id or "")
        self._lock = threading.Lock()
        self._lease_error: SandboxdError | None = None
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._detached = False
        self._on_lease_error: LeaseErrorCallback | None = None
        self.lease_expires_at: datetime.datetime | None = info.lease_expires_at if info else None

    def __repr__(self) -> str:
        return f"Sandbox({self.id!r})"

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self.close()
        except SandboxdError as e:
            if exc is None:
                raise
            if hasattr(exc, "add_note"):
                exc.add_note(f"sandboxd: destroying sandbox {self.id} failed too: {e}")

    # -- lease ----------------------------------------------------------------

    def start_keepalive(self, ttl: float | None = None, *, on_lease_error: LeaseErrorCallback | None = None) -> None:
        """Renews the lease in a background thread every TTL/3 (``ttl``: the
        sandbox's, from its current expiry when None) until close(), detach()
        or destroy(). A failed renewal is passed to ``on_lease_error`` at once,
        kept, and raised as :class:`LeaseError` from the next call on the
        sandbox unless a later renewal succeeded first; it is tried again at
        the next tick."""
        if self._thread is not None:
            return
        if ttl is None:
            exp = self.lease_expires_at
            now = datetime.datetime.now(datetime.timezone.utc)
            ttl = max(1.0, (exp - now).total_seconds()) if exp else 60.0
        interval = max(0.2, ttl / 3)
        self._on_lease_error = on_lease_error
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_loop, args=(interval, self._stop), name=f"sandboxd-keepalive-{self.id}", daemon=True
        )
        self.client._open.add(self)
        self._thread.start()

    def _renew_loop(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                resp = self.client._call(
                    "KeepAlive",
                    pb.KeepAliveRequest(sandbox_id=self.id),
                    idempotent=True,
                    timeout=interval,
                    total=interval,
                    stop=stop,
                )
            except Exception as e:  # a SandboxdError, or anything unexpected: report it all the same
                if stop.is_set():
                    return
                msg, code = (e.message, e.code) if isinstance(e, SandboxdError) else (repr(e), None)
                err = LeaseError(f"renewing the lease of sandbox {self.id} failed: {msg}", code=code)
                err.__cause__ = e
                with self._lock:
                    self._lease_error = err
                cb = self._on_lease_error
                if cb is not None:
                    try:
                        cb(err)
                    except Exception:  # a broken callback must not stop the renewals
                        pass
                continue
            with self._lock:
                self._lease_error = None
                self.lease_expires_at = _expiry(resp.lease_expires_at)

    def _stop_renewal(self) -> None:
        if self._stop is not None:
            self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()
        self._thread = None
        self.client._open.discard(self)

    def _check(self) -> None:
        with self._lock:
            err, self._lease_error = self._lease_error, None
        if err is not None:
            raise err

    @property
    def lease_error(self) -> SandboxdError | None:
        """The pending renewal failure, if any (not cleared by reading it)."""
        return self._lease_error

    def keep_alive(self, ttl: float | None = None) -> datetime.datetime | None:
        """Renews the lease once (``ttl`` in seconds replaces the sandbox's TTL
        for this and later renewals) and returns the new expiry."""
        self._check()
        resp = self.client._call(
            "KeepAlive", pb.KeepAliveRequest(sandbox_id=self.id, lease_ttl=c.duration(ttl)), idempotent=True
        )
        self.lease_expires_at = _expiry(resp.lease_expires_at)
        return self.lease_expires_at

    def detach(self) -> None:
        """Stops renewing the lease and makes close() (and leaving the ``with``
        block) leave the sandbox be: it lives on until its lease runs out."""
        self._detached = True
        self._stop_renewal()

    def close(self) -> None:
        """Stops the lease renewal and destroys the sandbox, unless detached."""
        self._stop_renewal()
        if not self._detached:
            self.destroy()

    def destroy(self) -> None:
        """Destroys the sandbox now (idempotent)."""
        self._stop_renewal()
        self._detached = True
        self.client.destroy(self.id)

    def refresh(self) -> SandboxInfo:
        """Reloads ``info`` from the server."""
        self._check()
        resp = self.client._call("GetSandbox", pb.GetSandboxRequest(sandbox_id=self.id), idempotent=True)
        self.info = SandboxInfo._from_pb(resp.sandbox)
        return self.info

    def set_internet_access(self, enabled: bool) -> SandboxInfo:
        self._check()
        req = pb.SetInternetAccessRequest(sandbox_id=self.id, enabled=enabled)
        self.info = SandboxInfo._from_pb(self.client._call("SetInternetAccess", req, idempotent=True).sandbox)
        return self.info

    def set_egress_allowlist(self, entries: list[str]) -> SandboxInfo:
        self._check()
        req = pb.SetEgressAllowlistRequest(sandbox_id=self.id, entries=entries)
        self.info = SandboxInfo._from_pb(self.client._call("SetEgressAllowlist", req, idempotent=True).sandbox)
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
    ) -> ExecStream:
        """Runs a command (a str: bash command line; a list: argv) and streams
        its events. ``timeout``: the command's own limit in seconds (it is
        killed); ``deadline``: the RPC's (DeadlineExceeded). ``background``,
        ``keep_stdin_open``, ``tag``, ``pty`` (rows, cols: a terminal; stderr
        goes to stdout) make a kept command (see :meth:`start`). Not retried."""
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
        return ExecStream(self.client._stub.Exec(req, timeout=deadline, metadata=self.client._md), cmd)

    def run(
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
        """Runs a command to its end and returns its output and status; with
        ``check``, a non-zero exit (or a kill) raises :class:`CommandError`."""
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
        with s:
            for ev in s:
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

    def start(self, cmd: Command, *, tag: str | None = None, keep_stdin_open: bool = False, **kw: Any) -> str:
        """Starts a kept background command and returns its exec id at once
        (it goes on after this; use :meth:`attach`, :meth:`write_input`,
        :meth:`signal`, :meth:`list_commands` with its tag or exec id)."""
        s = self.stream(cmd, background=True, tag=tag, keep_stdin_open=keep_stdin_open, **kw)
        try:
            for ev in s:
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
    ) -> ExecStream:
        """Streams a kept command's output from these offsets to its exit."""
        self._check()
        req = pb.AttachRequest(
            command=c.command_ref(self.id, tag, exec_id),
            stdout_offset=stdout_offset,
            stderr_offset=stderr_offset,
            from_earliest=from_earliest,
        )
        return ExecStream(self.client._stub.Attach(req, timeout=deadline, metadata=self.client._md), tag or exec_id)

    def write_input(self, data: bytes | str, *, tag: str | None = None, exec_id: str | None = None, close: bool = False) -> None:
        """Writes to a kept command's stdin (started with ``keep_stdin_open``); ``close`` closes it after."""
        self._check()
        req = pb.WriteInputRequest(
            command=c.command_ref(self.id, tag, exec_id), data=data.encode() if isinstance(data, str) else data, close=close
        )
        self.client._call("WriteInput", req, idempotent=False)

    def stream_input(
        self, chunks: Iterable[bytes | str], *, tag: str | None = None, exec_id: str | None = None, close: bool = False
    ) -> None:
        """Writes each chunk to a kept command's stdin as the iterable yields it
        (one StreamInput call: the fast path for typing); ``close`` closes
        stdin at the end. Not retried."""
        self._check()
        ref = c.command_ref(self.id, tag, exec_id)

        def requests() -> Iterator[pb.StreamInputRequest]:
            yield pb.StreamInputRequest(command=ref)
            for chunk in chunks:
                yield pb.StreamInputRequest(data=chunk.encode() if isinstance(chunk, str) else chunk)
            if close:
                yield pb.StreamInputRequest(close=True)

        try:
            self.client._stub.StreamInput(requests(), metadata=self.client._md)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def signal(self, sig: str, *, tag: str | None = None, exec_id: str | None = None) -> None:
        """Sends a signal ("SIGTERM", "INT"...) to a kept command's process group."""
        self._check()
        req = pb.SignalCommandRequest(command=c.command_ref(self.id, tag, exec_id), signal=sig)
        self.client._call("SignalCommand", req, idempotent=False)

    def resize_pty(self, rows: int, cols: int, *, tag: str | None = None, exec_id: str | None = None) -> None:
        """Changes a PTY command's window size (it gets SIGWINCH)."""
        self._check()
        req = pb.ResizePtyRequest(command=c.command_ref(self.id, tag, exec_id), size=pb.PtySize(rows=rows, cols=cols))
        self.client._call("ResizePty", req, idempotent=True)

    def list_commands(self) -> list[CommandInfo]:
        """The kept commands: running ones and those that ended within the last hour."""
        self._check()
        resp = self.client._call("ListCommands", pb.ListCommandsRequest(sandbox_id=self.id), idempotent=True)
        return [CommandInfo._from_pb(x) for x in resp.commands]

    # -- files ------------------------------------------------------------------

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
        header = pb.UploadHeader(
            sandbox_id=self.id, path=remote, mode=mode, make_parents=make_parents, expected_sha256=chunks.expected_sha256
        )
        if chunks.size is not None:
            header.expected_size = chunks.size
        failure: list[BaseException] = []

        def requests() -> Iterator[pb.UploadRequest]:
            try:
                yield pb.UploadRequest(header=header)
                for data in chunks:
                    yield pb.UploadRequest(data=data)
                    if progress is not None:
                        progress(chunks.done)
            except BaseException as e:  # grpc would swallow it into CANCELLED
                failure.append(e)
                raise

        try:
            resp = self.client._stub.Upload(requests(), timeout=deadline, metadata=self.client._md)
        except grpc.RpcError as e:
            if failure:
                raise failure[0] from None
            raise from_rpc_error(e) from None
        finally:
            chunks.close()
        local = chunks.sha.hexdigest()
        if resp.sha256 != local or resp.bytes_written != chunks.done:
            raise ChecksumMismatch(
                f"upload {remote}: server wrote {resp.bytes_written} bytes sha256 {resp.sha256}, sent {chunks.done} sha256 {local}"
            )
        return TransferResult(size=resp.bytes_written, sha256=local)

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
        import io

        buf = io.BytesIO()
        self.download(remote, buf, **kw)
        return buf.getvalue()

    def _download(self, remote: str, f: IO[bytes], progress: Progress | None, deadline: float | None) -> TransferResult:
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
                for msg in self.client._stub.Download(req, timeout=timeout, metadata=self.client._md):
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
                        time.sleep(d)
                        resumes += 1
                        continue
                raise from_rpc_error(e) from None

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
        chunks = c.Chunks(source)
        header = pb.UploadArchiveHeader(
            sandbox_id=self.id,
            path=remote_dir,
            format=pb.ARCHIVE_FORMAT_TAR_GZIP if gzip else pb.ARCHIVE_FORMAT_TAR,
            replace=replace,
            make_parents=make_parents,
        )
        failure: list[BaseException] = []

        def requests() -> Iterator[pb.UploadArchiveRequest]:
            try:
                yield pb.UploadArchiveRequest(header=header)
                for data in chunks:
                    yield pb.UploadArchiveRequest(data=data)
                    if progress is not None:
                        progress(chunks.done)
            except BaseException as e:
                failure.append(e)
                raise

        try:
            resp = self.client._stub.UploadArchive(requests(), timeout=deadline, metadata=self.client._md)
        except grpc.RpcError as e:
            if failure:
                raise failure[0] from None
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

    def download_archive(
        self, remote_dir: str, dst: Destination, *, gzip: bool = False, deadline: float | None = None
    ) -> ArchiveResult:
        """Writes the directory as a tar (``gzip``: tar.gz) archive to ``dst``
        (a local path or a writable binary file), checking its sha256."""
        self._check()
        f, opened = c.open_destination(dst)
        req = pb.DownloadArchiveRequest(
            sandbox_id=self.id, path=remote_dir, format=pb.ARCHIVE_FORMAT_TAR_GZIP if gzip else pb.ARCHIVE_FORMAT_TAR
        )
        h, n = hashlib.sha256(), 0
        try:
            for msg in self.client._stub.DownloadArchive(req, timeout=deadline, metadata=self.client._md):
                if msg.WhichOneof("part") == "data":
                    f.write(msg.data)
                    h.update(msg.data)
                    n += len(msg.data)
                elif msg.WhichOneof("part") == "done":
                    d = msg.done
                    if d.sha256 != h.hexdigest() or d.bytes != n:
                        raise ChecksumMismatch(f"download_archive {remote_dir}: server sent {d.bytes} bytes sha256 {d.sha256}, got {n} {h.hexdigest()}")
                    return ArchiveResult(
                        entries=d.entries, archive_bytes=n, sha256=d.sha256, changed_while_reading=d.changed_while_reading
                    )
            raise SandboxdError(f"download_archive {remote_dir}: the stream ended without its done message")
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            if opened:
                f.close()

    def stat(self, path: str, *, follow_symlinks: bool = False) -> FileInfo:
        self._check()
        req = pb.StatRequest(sandbox_id=self.id, path=path, follow_symlinks=follow_symlinks)
        return FileInfo._from_pb(self.client._call("Stat", req, idempotent=True).info)

    def exists(self, path: str) -> bool:
        from .errors import NotFound

        try:
            self.stat(path)
            return True
        except NotFound:
            return False

    def list_dir(self, path: str, *, depth: int = 0) -> list[FileInfo]:
        """A directory's entries (``depth`` > 1: recursive). Retried as a whole on UNAVAILABLE."""
        self._check()
        req = pb.ListDirRequest(sandbox_id=self.id, path=path, depth=depth)
        retry = self.client.retry
        give_up, attempt = time.monotonic() + retry.total, 0
        while True:
            try:
                return [
                    FileInfo._from_pb(e)
                    for msg in self.client._stub.ListDir(req, timeout=self.client.timeout, metadata=self.client._md)
                    for e in msg.entries
                ]
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    d = retry.delay(attempt)
                    attempt += 1
                    if time.monotonic() + d < give_up:
                        time.sleep(d)
                        continue
                raise from_rpc_error(e) from None

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
        req = pb.MoveRequest(sandbox_id=self.id, to=dst, overwrite=overwrite)
        setattr(req, "from", src)
        self.client._call("Move", req, idempotent=False)

    def watch(self, path: str, *, recursive: bool = False) -> Watch:
        """Watches a directory; returns once the watch is in place."""
        self._check()
        req = pb.WatchRequest(sandbox_id=self.id, path=path, recursive=recursive)
        return Watch(self.client._stub.Watch(req, metadata=self.client._md))


def _expiry(ts: Any) -> datetime.datetime | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=datetime.timezone.utc)
