"""Plain data returned by the client: sandboxes, command results, files."""

from __future__ import annotations

import codecs
import datetime
from dataclasses import dataclass
from typing import Any, Literal, cast

from ._gen.sandbox.v1 import sandbox_pb2 as pb

__all__ = [
    "SandboxInfo",
    "CommandResult",
    "ExecEvent",
    "FileInfo",
    "WatchEvent",
    "CommandInfo",
    "TransferResult",
    "ArchiveResult",
    "Utf8Decoder",
]


def _ts(ts: Any) -> datetime.datetime | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=datetime.timezone.utc)


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox as the server last described it."""

    id: str
    state: str  # "creating", "running", "destroying", "stopped"
    labels: dict[str, str]
    cores: int
    memory_mib: int
    disk_gib: int
    internet_access: bool
    lease_expires_at: datetime.datetime | None
    created_at: datetime.datetime | None
    provider: str
    tenant: str
    egress_allowlist: list[str]

    @classmethod
    def _from_pb(cls, s: pb.Sandbox) -> SandboxInfo:
        state = pb.Sandbox.State.Name(s.state).removeprefix("STATE_").lower()
        return cls(
            id=s.id,
            state=state,
            labels=dict(s.labels),
            cores=s.resources.cores,
            memory_mib=s.resources.memory_mib,
            disk_gib=s.resources.disk_gib,
            internet_access=s.internet_access,
            lease_expires_at=_ts(s.lease_expires_at) if s.HasField("lease_expires_at") else None,
            created_at=_ts(s.created_at) if s.HasField("created_at") else None,
            provider=s.provider,
            tenant=s.tenant,
            egress_allowlist=list(s.egress_allowlist),
        )


Reason = Literal["exited", "timeout", "cancelled", "output_limit", "unspecified"]


def _reason(r: int) -> Reason:
    name = str(pb.ExecExited.Reason.Name(r)).removeprefix("REASON_").lower()
    return cast(Reason, name)


@dataclass
class CommandResult:
    """How a command ended, with the output it produced (unless streamed).

    ``exit_code`` is None when it was killed by a signal (``signal``, e.g.
    "SIGKILL"); ``reason`` says what ended it: "exited" (by itself),
    "timeout" (its own ``timeout``), "cancelled" (the RPC ended),
    "output_limit" (``max_output_bytes``).
    """

    exit_code: int | None
    signal: str
    reason: Reason
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0
    exec_id: str = ""
    pid: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (invalid bytes replaced)."""
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def stdout_text(self) -> str:
        return self.text

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    @classmethod
    def _from_exited(cls, e: pb.ExecExited, exec_id: str = "", pid: int = 0) -> CommandResult:
        return cls(
            exit_code=e.exit_code if e.HasField("exit_code") else None,
            signal=e.signal,
            reason=_reason(e.reason),
            stdout_truncated=e.stdout_truncated,
            stderr_truncated=e.stderr_truncated,
            duration=e.duration.seconds + e.duration.nanos / 1e9,
            exec_id=exec_id,
            pid=pid,
        )


EventKind = Literal["started", "stdout", "stderr", "exited"]


@dataclass(frozen=True)
class ExecEvent:
    """One event of a streamed command (Exec or Attach).

    kind "started": ``exec_id`` and ``pid`` are set; "stdout"/"stderr": ``data``
    and ``offset`` (of its first byte in its stream); "exited": ``result``
    (without the output, which was streamed).
    """

    kind: EventKind
    data: bytes = b""
    offset: int = 0
    exec_id: str = ""
    pid: int = 0
    result: CommandResult | None = None

    @classmethod
    def _from_pb(cls, ev: Any, started: tuple[str, int]) -> ExecEvent | None:
        kind = ev.WhichOneof("event")
        if kind == "started":
            return cls("started", exec_id=ev.started.exec_id, pid=ev.started.pid)
        if kind == "stdout":
            return cls("stdout", data=ev.stdout, offset=ev.offset)
        if kind == "stderr":
            return cls("stderr", data=ev.stderr, offset=ev.offset)
        if kind == "exited":
            return cls("exited", result=CommandResult._from_exited(ev.exited, *started))
        return None


class Utf8Decoder:
    """Incremental UTF-8 decoding of a byte stream that arrives in chunks: a
    character split across chunks is held back until its last byte arrives,
    never decoded as two replacement characters. Invalid bytes become U+FFFD.

    >>> d = Utf8Decoder()
    >>> d.feed(b"\\xe2\\x82") + d.feed(b"\\xac\\n") + d.flush()
    '€\\n'
    """

    def __init__(self, errors: str = "replace") -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors=errors)

    def feed(self, data: bytes) -> str:
        return self._dec.decode(data)

    def flush(self) -> str:
        """The end of the stream: what is held back (an incomplete character) as U+FFFD."""
        return self._dec.decode(b"", final=True)


_FILE_TYPES = {
    pb.FILE_TYPE_FILE: "file",
    pb.FILE_TYPE_DIRECTORY: "directory",
    pb.FILE_TYPE_SYMLINK: "symlink",
    pb.FILE_TYPE_OTHER: "other",
}


@dataclass(frozen=True)
class FileInfo:
    """A path as the sandbox sees it. ``type``: "file", "directory", "symlink", "other"."""

    name: str
    path: str
    type: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: datetime.datetime | None
    symlink_target: str

    @property
    def is_dir(self) -> bool:
        return self.type == "directory"

    @property
    def is_file(self) -> bool:
        return self.type == "file"

    @classmethod
    def _from_pb(cls, f: pb.FileInfo) -> FileInfo:
        return cls(
            name=f.name,
            path=f.path,
            type=_FILE_TYPES.get(f.type, "unspecified"),
            size=f.size,
            mode=f.mode,
            uid=f.uid,
            gid=f.gid,
            mtime=_ts(f.mtime) if f.HasField("mtime") else None,
            symlink_target=f.symlink_target,
        )


@dataclass(frozen=True)
class WatchEvent:
    """A change under a watched directory. ``type``: "created", "modified",
    "removed", "renamed" (``old_path`` set) or "overflow" (events were lost:
    re-list the directory)."""

    path: str
    type: str
    old_path: str
    is_dir: bool
    time: datetime.datetime | None

    @classmethod
    def _from_pb(cls, e: pb.WatchEvent) -> WatchEvent:
        return cls(
            path=e.path,
            type=pb.WatchEventType.Name(e.type).removeprefix("WATCH_EVENT_TYPE_").lower(),
            old_path=e.old_path,
            is_dir=e.is_dir,
            time=_ts(e.time) if e.HasField("time") else None,
        )


@dataclass(frozen=True)
class CommandInfo:
    """A kept command (ListCommands)."""

    exec_id: str
    tag: str
    args: list[str]
    running: bool
    pid: int
    pty: bool
    started_at: datetime.datetime | None
    result: CommandResult | None
    stdout_earliest: int
    stdout_end: int
    stderr_earliest: int
    stderr_end: int

    @classmethod
    def _from_pb(cls, c: pb.CommandInfo) -> CommandInfo:
        return cls(
            exec_id=c.exec_id,
            tag=c.tag,
            args=list(c.args),
            running=c.running,
            pid=c.pid,
            pty=c.pty,
            started_at=_ts(c.started_at) if c.HasField("started_at") else None,
            result=CommandResult._from_exited(c.exited, c.exec_id, c.pid) if c.HasField("exited") else None,
            stdout_earliest=c.stdout_earliest,
            stdout_end=c.stdout_end,
            stderr_earliest=c.stderr_earliest,
            stderr_end=c.stderr_end,
        )


@dataclass(frozen=True)
class TransferResult:
    """A finished upload or download: bytes moved and their (verified) sha256.
    For a download, ``size`` is the whole file's, ``mode`` its permission bits
    and ``resumes`` how many times a cut-off stream was resumed."""

    size: int
    sha256: str
    mode: int = 0
    resumes: int = 0


@dataclass(frozen=True)
class ArchiveResult:
    """A finished archive transfer: ``entries`` in it, ``archive_bytes`` of the
    archive, ``file_bytes`` (upload: sum of regular file sizes), ``sha256`` of
    the archive bytes (download) and ``changed_while_reading`` (download)."""

    entries: int
    archive_bytes: int
    file_bytes: int = 0
    sha256: str = ""
    changed_while_reading: bool = False
