"""The asyncio client's commands: :class:`AsyncExecStream` and the command
methods of :class:`sandboxd.AsyncSandbox`."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from . import _convert as cv
from . import _requests as rq
from ._common import Command
from ._gen.sandbox.v1 import sandbox_pb2 as pb
from .types import CommandInfo, CommandResult, ExecEvent

if TYPE_CHECKING:
    from .aio import AsyncClient


class AsyncExecStream(cv.ExecState):
    """A streamed command: ``async for ev in stream`` (once); ``result`` after
    the ``exited`` event; :meth:`text` for decoded text; :meth:`cancel`."""

    async def __aenter__(self) -> AsyncExecStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()

    async def __aiter__(self) -> AsyncIterator[ExecEvent]:
        try:
            async for msg in self._call:
                ev = self._event(msg)
                if ev is not None:
                    yield ev
        except grpc.RpcError as e:
            cv.raise_rpc(e)
        finally:
            self._left()

    async def text(self) -> AsyncIterator[tuple[str, str]]:
        """(stream, text) pairs decoded with a :class:`Utf8Decoder` per stream."""
        split = cv.TextSplit()
        async for ev in self:
            pair = split.feed(ev)
            if pair is not None:
                yield pair
        for pair in split.flush():
            yield pair


class AsyncCommands:
    """The command methods of :class:`sandboxd.AsyncSandbox`."""

    if TYPE_CHECKING:
        client: AsyncClient
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
    ) -> AsyncExecStream:
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
        output = cv.Output()
        s = self.stream(cmd, env=env, cwd=cwd, stdin=stdin, timeout=timeout, deadline=deadline,
                        max_output_bytes=max_output_bytes, discard_over_limit=discard_over_limit)
        async with s:
            async for ev in s:
                output.feed(ev)
        return output.result(s.result, cmd, check)

    async def start(self, cmd: Command, *, tag: str | None = None, keep_stdin_open: bool = False, **kw: Any) -> str:
        async with self.stream(cmd, background=True, tag=tag, keep_stdin_open=keep_stdin_open, **kw) as s:
            async for ev in s:
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
    ) -> AsyncExecStream:
        self._check()
        req = rq.attach_request(self.id, tag, exec_id, stdout_offset, stderr_offset, from_earliest)
        return AsyncExecStream(self.client._stub.Attach(req, timeout=deadline, metadata=self.client._md), tag or exec_id)

    async def write_input(
        self, data: bytes | str, *, tag: str | None = None, exec_id: str | None = None, close: bool = False
    ) -> None:
        self._check()
        await self.client._call("WriteInput", rq.write_input_request(self.id, data, tag, exec_id, close), idempotent=False)

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
        ref = rq.command_ref(self.id, tag, exec_id)

        async def requests() -> AsyncIterator[pb.StreamInputRequest]:
            if isinstance(chunks, AsyncIterable):
                yield pb.StreamInputRequest(command=ref)
                async for chunk in chunks:
                    yield pb.StreamInputRequest(data=rq.data(chunk))
                if close:
                    yield pb.StreamInputRequest(close=True)
            else:
                for msg in rq.input_requests(ref, chunks, close):
                    yield msg

        try:
            await self.client._stub.StreamInput(requests(), metadata=self.client._md)
        except grpc.RpcError as e:
            cv.raise_rpc(e)

    async def signal(self, sig: str, *, tag: str | None = None, exec_id: str | None = None) -> None:
        self._check()
        await self.client._call("SignalCommand", rq.signal_request(self.id, sig, tag, exec_id), idempotent=False)

    async def resize_pty(self, rows: int, cols: int, *, tag: str | None = None, exec_id: str | None = None) -> None:
        self._check()
        await self.client._call("ResizePty", rq.resize_request(self.id, rows, cols, tag, exec_id), idempotent=True)

    async def list_commands(self) -> list[CommandInfo]:
        self._check()
        resp = await self.client._call("ListCommands", pb.ListCommandsRequest(sandbox_id=self.id), idempotent=True)
        return [CommandInfo._from_pb(x) for x in resp.commands]
