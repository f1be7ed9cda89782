"""The sync client's commands: :class:`ExecStream` and the command methods of
:class:`sandboxd.Sandbox`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from . import _convert as cv
from . import _requests as rq
from ._common import Command
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from .types import CommandInfo, CommandResult, ExecEvent

if TYPE_CHECKING:
    from .client import Client


class ExecStream(cv.ExecState):
    """A streamed command: iterate it for :class:`ExecEvent` s (once). After the
    ``exited`` event, ``result`` holds how it ended. :meth:`text` iterates
    decoded text instead; :meth:`cancel` ends the RPC (which kills a
    foreground command and detaches from a background one)."""

    def __enter__(self) -> ExecStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def __iter__(self) -> Iterator[ExecEvent]:
        try:
            for msg in self._call:
                ev = self._event(msg)
                if ev is not None:
                    yield ev
        except grpc.RpcError as e:
            cv.raise_rpc(e)
        finally:
            self._left()

    def text(self) -> Iterator[tuple[str, str]]:
        """(stream, text) pairs, "stdout" or "stderr", decoded as UTF-8 with a
        :class:`Utf8Decoder` per stream: a character split across chunks comes
        out whole, in the later piece."""
        split = cv.TextSplit()
        for ev in self:
            pair = split.feed(ev)
            if pair is not None:
                yield pair
        yield from split.flush()


class Commands:
    """The command methods of :class:`sandboxd.Sandbox`."""

    if TYPE_CHECKING:
        client: Client
        id: str

        def _check(self) -> None: ...

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
        req = rq.exec_request(
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
        output = cv.Output()
        s = self.stream(cmd, env=env, cwd=cwd, stdin=stdin, timeout=timeout, deadline=deadline,
                        max_output_bytes=max_output_bytes, discard_over_limit=discard_over_limit)
        with s:
            for ev in s:
                output.feed(ev)
        return output.result(s.result, cmd, check)

    def start(self, cmd: Command, *, tag: str | None = None, keep_stdin_open: bool = False, **kw: Any) -> str:
        """Starts a kept background command and returns its exec id at once
        (it goes on after this; use :meth:`attach`, :meth:`write_input`,
        :meth:`signal`, :meth:`list_commands` with its tag or exec id)."""
        with self.stream(cmd, background=True, tag=tag, keep_stdin_open=keep_stdin_open, **kw) as s:
            for ev in s:
                if ev.kind == "started":
                    return ev.exec_id
        raise cv.not_started(cmd)

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
        req = rq.attach_request(self.id, tag, exec_id, stdout_offset, stderr_offset, from_earliest)
        return ExecStream(self.client._stub.Attach(req, timeout=deadline, metadata=self.client._md), tag or exec_id)

    def write_input(self, data: bytes | str, *, tag: str | None = None, exec_id: str | None = None, close: bool = False) -> None:
        """Writes to a kept command's stdin (started with ``keep_stdin_open``); ``close`` closes it after."""
        self._check()
        self.client._call("WriteInput", rq.write_input_request(self.id, data, tag, exec_id, close), idempotent=False)

    def stream_input(
        self, chunks: Iterable[bytes | str], *, tag: str | None = None, exec_id: str | None = None, close: bool = False
    ) -> None:
        """Writes each chunk to a kept command's stdin as the iterable yields it
        (one StreamInput call: the fast path for typing); ``close`` closes
        stdin at the end. Not retried."""
        self._check()
        requests = rq.input_requests(rq.command_ref(self.id, tag, exec_id), chunks, close)
        try:
            self.client._stub.StreamInput(requests, metadata=self.client._md)
        except grpc.RpcError as e:
            cv.raise_rpc(e)

    def signal(self, sig: str, *, tag: str | None = None, exec_id: str | None = None) -> None:
        """Sends a signal ("SIGTERM", "INT"...) to a kept command's process group."""
        self._check()
        self.client._call("SignalCommand", rq.signal_request(self.id, sig, tag, exec_id), idempotent=False)

    def resize_pty(self, rows: int, cols: int, *, tag: str | None = None, exec_id: str | None = None) -> None:
        """Changes a PTY command's window size (it gets SIGWINCH)."""
        self._check()
        self.client._call("ResizePty", rq.resize_request(self.id, rows, cols, tag, exec_id), idempotent=True)

    def list_commands(self) -> list[CommandInfo]:
        """The kept commands: running ones and those that ended within the last hour."""
        self._check()
        resp = self.client._call("ListCommands", pb.ListCommandsRequest(sandbox_id=self.id), idempotent=True)
        return [CommandInfo._from_pb(x) for x in resp.commands]
