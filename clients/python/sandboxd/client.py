"""The synchronous client: :class:`Client` and :class:`Sandbox`."""

from __future__ import annotations

import datetime
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from . import _common as c
from . import _convert as cv
from . import _requests as rq
from ._commands import Commands, ExecStream
from ._common import TLS, RetryPolicy
from ._files import Files, Watch
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from ._gen.sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from .errors import SandboxdError
from .types import SandboxInfo

__all__ = ["Client", "ExecStream", "LeaseErrorCallback", "Progress", "Sandbox", "Watch"]

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
        backoff = cv.Backoff(self.retry, total)
        while True:
            try:
                return method(req, timeout=timeout if timeout is not None else self.timeout, metadata=self._md)
            except grpc.RpcError as e:
                d = backoff.delay() if idempotent and cv.is_unavailable(e) else None
                if d is not None and not (stop and stop.is_set()):
                    if stop is not None:
                        stop.wait(d)
                    else:
                        time.sleep(d)
                    if not (stop and stop.is_set()):
                        continue
                cv.raise_rpc(e)

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
        req = rq.create_request(
            cores=cores,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            labels=labels,
            ttl=ttl,
            internet_access=internet_access,
            request_id=request_id,
        )
        sb = Sandbox(self, SandboxInfo._from_pb(self._call("CreateSandbox", req, idempotent=True).sandbox))
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
            resp = self._call("ListSandboxes", rq.list_request(labels, token), idempotent=True)
            out.extend(SandboxInfo._from_pb(s) for s in resp.sandboxes)
            token = resp.next_page_token
            if not token:
                return out

    def destroy(self, sandbox_id: str) -> None:
        """Destroys a sandbox; succeeds when it is already gone."""
        self._call("DestroySandbox", pb.DestroySandboxRequest(sandbox_id=sandbox_id), idempotent=True)


class Sandbox(Commands, Files):
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
            cv.destroy_failed_note(self.id, e, exc)

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
        interval = cv.keepalive_interval(ttl, self.lease_expires_at)
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
                err = cv.lease_failure(self.id, e)
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
                self.lease_expires_at = cv.expiry(resp.lease_expires_at)

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
        req = pb.KeepAliveRequest(sandbox_id=self.id, lease_ttl=rq.duration(ttl))
        self.lease_expires_at = cv.expiry(self.client._call("KeepAlive", req, idempotent=True).lease_expires_at)
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
