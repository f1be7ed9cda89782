import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutputLimitAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_LIMIT_ACTION_UNSPECIFIED: _ClassVar[OutputLimitAction]
    OUTPUT_LIMIT_ACTION_KILL: _ClassVar[OutputLimitAction]
    OUTPUT_LIMIT_ACTION_DISCARD: _ClassVar[OutputLimitAction]

class FileType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE_TYPE_UNSPECIFIED: _ClassVar[FileType]
    FILE_TYPE_FILE: _ClassVar[FileType]
    FILE_TYPE_DIRECTORY: _ClassVar[FileType]
    FILE_TYPE_SYMLINK: _ClassVar[FileType]
    FILE_TYPE_OTHER: _ClassVar[FileType]

class WatchEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCH_EVENT_TYPE_UNSPECIFIED: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_CREATED: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_MODIFIED: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_REMOVED: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_RENAMED: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_OVERFLOW: _ClassVar[WatchEventType]

class ArchiveFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARCHIVE_FORMAT_UNSPECIFIED: _ClassVar[ArchiveFormat]
    ARCHIVE_FORMAT_TAR: _ClassVar[ArchiveFormat]
    ARCHIVE_FORMAT_TAR_GZIP: _ClassVar[ArchiveFormat]
OUTPUT_LIMIT_ACTION_UNSPECIFIED: OutputLimitAction
OUTPUT_LIMIT_ACTION_KILL: OutputLimitAction
OUTPUT_LIMIT_ACTION_DISCARD: OutputLimitAction
FILE_TYPE_UNSPECIFIED: FileType
FILE_TYPE_FILE: FileType
FILE_TYPE_DIRECTORY: FileType
FILE_TYPE_SYMLINK: FileType
FILE_TYPE_OTHER: FileType
WATCH_EVENT_TYPE_UNSPECIFIED: WatchEventType
WATCH_EVENT_TYPE_CREATED: WatchEventType
WATCH_EVENT_TYPE_MODIFIED: WatchEventType
WATCH_EVENT_TYPE_REMOVED: WatchEventType
WATCH_EVENT_TYPE_RENAMED: WatchEventType
WATCH_EVENT_TYPE_OVERFLOW: WatchEventType
ARCHIVE_FORMAT_UNSPECIFIED: ArchiveFormat
ARCHIVE_FORMAT_TAR: ArchiveFormat
ARCHIVE_FORMAT_TAR_GZIP: ArchiveFormat

class Sandbox(_message.Message):
    __slots__ = ("id", "state", "labels", "resources", "internet_access", "lease_expires_at", "created_at", "provider", "egress_allowlist", "tenant")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Sandbox.State]
        STATE_CREATING: _ClassVar[Sandbox.State]
        STATE_RUNNING: _ClassVar[Sandbox.State]
        STATE_DESTROYING: _ClassVar[Sandbox.State]
        STATE_STOPPED: _ClassVar[Sandbox.State]
    STATE_UNSPECIFIED: Sandbox.State
    STATE_CREATING: Sandbox.State
    STATE_RUNNING: Sandbox.State
    STATE_DESTROYING: Sandbox.State
    STATE_STOPPED: Sandbox.State
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    INTERNET_ACCESS_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    EGRESS_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: Sandbox.State
    labels: _containers.ScalarMap[str, str]
    resources: Resources
    internet_access: bool
    lease_expires_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    provider: str
    egress_allowlist: _containers.RepeatedScalarFieldContainer[str]
    tenant: str
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[Sandbox.State, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., internet_access: bool = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provider: _Optional[str] = ..., egress_allowlist: _Optional[_Iterable[str]] = ..., tenant: _Optional[str] = ...) -> None: ...

class Resources(_message.Message):
    __slots__ = ("cores", "memory_mib", "disk_gib")
    CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    cores: int
    memory_mib: int
    disk_gib: int
    def __init__(self, cores: _Optional[int] = ..., memory_mib: _Optional[int] = ..., disk_gib: _Optional[int] = ...) -> None: ...

class CreateSandboxRequest(_message.Message):
    __slots__ = ("resources", "internet_access", "labels", "lease_ttl", "request_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    INTERNET_ACCESS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    resources: Resources
    internet_access: bool
    labels: _containers.ScalarMap[str, str]
    lease_ttl: _duration_pb2.Duration
    request_id: str
    def __init__(self, resources: _Optional[_Union[Resources, _Mapping]] = ..., internet_access: bool = ..., labels: _Optional[_Mapping[str, str]] = ..., lease_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSandboxResponse(_message.Message):
    __slots__ = ("sandbox",)
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ...) -> None: ...

class GetSandboxRequest(_message.Message):
    __slots__ = ("sandbox_id",)
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    def __init__(self, sandbox_id: _Optional[str] = ...) -> None: ...

class GetSandboxResponse(_message.Message):
    __slots__ = ("sandbox",)
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ...) -> None: ...

class ListSandboxesRequest(_message.Message):
    __slots__ = ("label_selector", "page_size", "page_token")
    class LabelSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    label_selector: _containers.ScalarMap[str, str]
    page_size: int
    page_token: str
    def __init__(self, label_selector: _Optional[_Mapping[str, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSandboxesResponse(_message.Message):
    __slots__ = ("sandboxes", "next_page_token")
    SANDBOXES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sandboxes: _containers.RepeatedCompositeFieldContainer[Sandbox]
    next_page_token: str
    def __init__(self, sandboxes: _Optional[_Iterable[_Union[Sandbox, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DestroySandboxRequest(_message.Message):
    __slots__ = ("sandbox_id",)
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    def __init__(self, sandbox_id: _Optional[str] = ...) -> None: ...

class DestroySandboxResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KeepAliveRequest(_message.Message):
    __slots__ = ("sandbox_id", "lease_ttl")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    lease_ttl: _duration_pb2.Duration
    def __init__(self, sandbox_id: _Optional[str] = ..., lease_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class KeepAliveResponse(_message.Message):
    __slots__ = ("lease_expires_at",)
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    lease_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetInternetAccessRequest(_message.Message):
    __slots__ = ("sandbox_id", "enabled")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    enabled: bool
    def __init__(self, sandbox_id: _Optional[str] = ..., enabled: bool = ...) -> None: ...

class SetInternetAccessResponse(_message.Message):
    __slots__ = ("sandbox",)
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ...) -> None: ...

class SetEgressAllowlistRequest(_message.Message):
    __slots__ = ("sandbox_id", "entries")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    entries: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sandbox_id: _Optional[str] = ..., entries: _Optional[_Iterable[str]] = ...) -> None: ...

class SetEgressAllowlistResponse(_message.Message):
    __slots__ = ("sandbox",)
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    sandbox: Sandbox
    def __init__(self, sandbox: _Optional[_Union[Sandbox, _Mapping]] = ...) -> None: ...

class Argv(_message.Message):
    __slots__ = ("args",)
    ARGS_FIELD_NUMBER: _ClassVar[int]
    args: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, args: _Optional[_Iterable[str]] = ...) -> None: ...

class ExecRequest(_message.Message):
    __slots__ = ("sandbox_id", "argv", "shell", "env", "cwd", "stdin", "timeout", "max_output_bytes", "output_limit_action", "background", "keep_stdin_open", "pty", "tag", "retain_bytes")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    SHELL_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    CWD_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LIMIT_ACTION_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    KEEP_STDIN_OPEN_FIELD_NUMBER: _ClassVar[int]
    PTY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    RETAIN_BYTES_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    argv: Argv
    shell: str
    env: _containers.ScalarMap[str, str]
    cwd: str
    stdin: bytes
    timeout: _duration_pb2.Duration
    max_output_bytes: int
    output_limit_action: OutputLimitAction
    background: bool
    keep_stdin_open: bool
    pty: PtySize
    tag: str
    retain_bytes: int
    def __init__(self, sandbox_id: _Optional[str] = ..., argv: _Optional[_Union[Argv, _Mapping]] = ..., shell: _Optional[str] = ..., env: _Optional[_Mapping[str, str]] = ..., cwd: _Optional[str] = ..., stdin: _Optional[bytes] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_output_bytes: _Optional[int] = ..., output_limit_action: _Optional[_Union[OutputLimitAction, str]] = ..., background: bool = ..., keep_stdin_open: bool = ..., pty: _Optional[_Union[PtySize, _Mapping]] = ..., tag: _Optional[str] = ..., retain_bytes: _Optional[int] = ...) -> None: ...

class PtySize(_message.Message):
    __slots__ = ("rows", "cols", "term")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    term: str
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ..., term: _Optional[str] = ...) -> None: ...

class CommandRef(_message.Message):
    __slots__ = ("sandbox_id", "exec_id", "tag")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    EXEC_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    exec_id: str
    tag: str
    def __init__(self, sandbox_id: _Optional[str] = ..., exec_id: _Optional[str] = ..., tag: _Optional[str] = ...) -> None: ...

class AttachRequest(_message.Message):
    __slots__ = ("command", "stdout_offset", "stderr_offset", "from_earliest")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    STDOUT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    STDERR_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FROM_EARLIEST_FIELD_NUMBER: _ClassVar[int]
    command: CommandRef
    stdout_offset: int
    stderr_offset: int
    from_earliest: bool
    def __init__(self, command: _Optional[_Union[CommandRef, _Mapping]] = ..., stdout_offset: _Optional[int] = ..., stderr_offset: _Optional[int] = ..., from_earliest: bool = ...) -> None: ...

class AttachResponse(_message.Message):
    __slots__ = ("offset", "started", "stdout", "stderr", "exited")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    offset: int
    started: ExecStarted
    stdout: bytes
    stderr: bytes
    exited: ExecExited
    def __init__(self, offset: _Optional[int] = ..., started: _Optional[_Union[ExecStarted, _Mapping]] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., exited: _Optional[_Union[ExecExited, _Mapping]] = ...) -> None: ...

class WriteInputRequest(_message.Message):
    __slots__ = ("command", "data", "close")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    command: CommandRef
    data: bytes
    close: bool
    def __init__(self, command: _Optional[_Union[CommandRef, _Mapping]] = ..., data: _Optional[bytes] = ..., close: bool = ...) -> None: ...

class WriteInputResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamInputRequest(_message.Message):
    __slots__ = ("command", "data", "close")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    command: CommandRef
    data: bytes
    close: bool
    def __init__(self, command: _Optional[_Union[CommandRef, _Mapping]] = ..., data: _Optional[bytes] = ..., close: bool = ...) -> None: ...

class StreamInputResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SignalCommandRequest(_message.Message):
    __slots__ = ("command", "signal")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    command: CommandRef
    signal: str
    def __init__(self, command: _Optional[_Union[CommandRef, _Mapping]] = ..., signal: _Optional[str] = ...) -> None: ...

class SignalCommandResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResizePtyRequest(_message.Message):
    __slots__ = ("command", "size")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    command: CommandRef
    size: PtySize
    def __init__(self, command: _Optional[_Union[CommandRef, _Mapping]] = ..., size: _Optional[_Union[PtySize, _Mapping]] = ...) -> None: ...

class ResizePtyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCommandsRequest(_message.Message):
    __slots__ = ("sandbox_id",)
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    def __init__(self, sandbox_id: _Optional[str] = ...) -> None: ...

class ListCommandsResponse(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[CommandInfo]
    def __init__(self, commands: _Optional[_Iterable[_Union[CommandInfo, _Mapping]]] = ...) -> None: ...

class CommandInfo(_message.Message):
    __slots__ = ("exec_id", "tag", "args", "started_at", "running", "exited", "stdout_earliest", "stdout_end", "stderr_earliest", "stderr_end", "pty", "pid")
    EXEC_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_EARLIEST_FIELD_NUMBER: _ClassVar[int]
    STDOUT_END_FIELD_NUMBER: _ClassVar[int]
    STDERR_EARLIEST_FIELD_NUMBER: _ClassVar[int]
    STDERR_END_FIELD_NUMBER: _ClassVar[int]
    PTY_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    exec_id: str
    tag: str
    args: _containers.RepeatedScalarFieldContainer[str]
    started_at: _timestamp_pb2.Timestamp
    running: bool
    exited: ExecExited
    stdout_earliest: int
    stdout_end: int
    stderr_earliest: int
    stderr_end: int
    pty: bool
    pid: int
    def __init__(self, exec_id: _Optional[str] = ..., tag: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., running: bool = ..., exited: _Optional[_Union[ExecExited, _Mapping]] = ..., stdout_earliest: _Optional[int] = ..., stdout_end: _Optional[int] = ..., stderr_earliest: _Optional[int] = ..., stderr_end: _Optional[int] = ..., pty: bool = ..., pid: _Optional[int] = ...) -> None: ...

class ExecResponse(_message.Message):
    __slots__ = ("offset", "started", "stdout", "stderr", "exited")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    offset: int
    started: ExecStarted
    stdout: bytes
    stderr: bytes
    exited: ExecExited
    def __init__(self, offset: _Optional[int] = ..., started: _Optional[_Union[ExecStarted, _Mapping]] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., exited: _Optional[_Union[ExecExited, _Mapping]] = ...) -> None: ...

class ExecStarted(_message.Message):
    __slots__ = ("exec_id", "pid")
    EXEC_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    exec_id: str
    pid: int
    def __init__(self, exec_id: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class ExecExited(_message.Message):
    __slots__ = ("reason", "exit_code", "signal", "stdout_truncated", "stderr_truncated", "duration")
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REASON_UNSPECIFIED: _ClassVar[ExecExited.Reason]
        REASON_EXITED: _ClassVar[ExecExited.Reason]
        REASON_TIMEOUT: _ClassVar[ExecExited.Reason]
        REASON_CANCELLED: _ClassVar[ExecExited.Reason]
        REASON_OUTPUT_LIMIT: _ClassVar[ExecExited.Reason]
    REASON_UNSPECIFIED: ExecExited.Reason
    REASON_EXITED: ExecExited.Reason
    REASON_TIMEOUT: ExecExited.Reason
    REASON_CANCELLED: ExecExited.Reason
    REASON_OUTPUT_LIMIT: ExecExited.Reason
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    STDERR_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    reason: ExecExited.Reason
    exit_code: int
    signal: str
    stdout_truncated: bool
    stderr_truncated: bool
    duration: _duration_pb2.Duration
    def __init__(self, reason: _Optional[_Union[ExecExited.Reason, str]] = ..., exit_code: _Optional[int] = ..., signal: _Optional[str] = ..., stdout_truncated: bool = ..., stderr_truncated: bool = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("sandbox_id", "path", "mode", "make_parents", "expected_size", "expected_sha256")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAKE_PARENTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    mode: int
    make_parents: bool
    expected_size: int
    expected_sha256: str
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., mode: _Optional[int] = ..., make_parents: bool = ..., expected_size: _Optional[int] = ..., expected_sha256: _Optional[str] = ...) -> None: ...

class UploadResponse(_message.Message):
    __slots__ = ("bytes_written", "sha256")
    BYTES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    bytes_written: int
    sha256: str
    def __init__(self, bytes_written: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class DownloadRequest(_message.Message):
    __slots__ = ("sandbox_id", "path", "offset")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    offset: int
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class DownloadResponse(_message.Message):
    __slots__ = ("info", "data", "done")
    INFO_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    info: DownloadInfo
    data: bytes
    done: DownloadDone
    def __init__(self, info: _Optional[_Union[DownloadInfo, _Mapping]] = ..., data: _Optional[bytes] = ..., done: _Optional[_Union[DownloadDone, _Mapping]] = ...) -> None: ...

class DownloadInfo(_message.Message):
    __slots__ = ("size", "mode", "offset")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    size: int
    mode: int
    offset: int
    def __init__(self, size: _Optional[int] = ..., mode: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class DownloadDone(_message.Message):
    __slots__ = ("bytes", "sha256")
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    sha256: str
    def __init__(self, bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class FileInfo(_message.Message):
    __slots__ = ("name", "path", "type", "size", "mode", "uid", "gid", "mtime", "symlink_target")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    SYMLINK_TARGET_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    type: FileType
    size: int
    mode: int
    uid: int
    gid: int
    mtime: _timestamp_pb2.Timestamp
    symlink_target: str
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., type: _Optional[_Union[FileType, str]] = ..., size: _Optional[int] = ..., mode: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., mtime: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., symlink_target: _Optional[str] = ...) -> None: ...

class StatRequest(_message.Message):
    __slots__ = ("sandbox_id", "path", "follow_symlinks")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_SYMLINKS_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    follow_symlinks: bool
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., follow_symlinks: bool = ...) -> None: ...

class StatResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: FileInfo
    def __init__(self, info: _Optional[_Union[FileInfo, _Mapping]] = ...) -> None: ...

class ListDirRequest(_message.Message):
    __slots__ = ("sandbox_id", "path", "depth")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    depth: int
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class ListDirResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[FileInfo]
    def __init__(self, entries: _Optional[_Iterable[_Union[FileInfo, _Mapping]]] = ...) -> None: ...

class MakeDirRequest(_message.Message):
    __slots__ = ("sandbox_id", "path", "parents", "mode")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    parents: bool
    mode: int
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., parents: bool = ..., mode: _Optional[int] = ...) -> None: ...

class MakeDirResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveRequest(_message.Message):
    __slots__ = ("sandbox_id", "path", "recursive")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    recursive: bool
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., recursive: bool = ...) -> None: ...

class RemoveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MoveRequest(_message.Message):
    __slots__ = ("sandbox_id", "to", "overwrite")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    to: str
    overwrite: bool
    def __init__(self, sandbox_id: _Optional[str] = ..., to: _Optional[str] = ..., overwrite: bool = ..., **kwargs) -> None: ...

class MoveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("sandbox_id", "path", "recursive")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    recursive: bool
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., recursive: bool = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("path", "type", "old_path", "time", "is_dir")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OLD_PATH_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    IS_DIR_FIELD_NUMBER: _ClassVar[int]
    path: str
    type: WatchEventType
    old_path: str
    time: _timestamp_pb2.Timestamp
    is_dir: bool
    def __init__(self, path: _Optional[str] = ..., type: _Optional[_Union[WatchEventType, str]] = ..., old_path: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., is_dir: bool = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("ready", "events")
    READY_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    events: _containers.RepeatedCompositeFieldContainer[WatchEvent]
    def __init__(self, ready: bool = ..., events: _Optional[_Iterable[_Union[WatchEvent, _Mapping]]] = ...) -> None: ...

class UploadArchiveRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: UploadArchiveHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[UploadArchiveHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadArchiveHeader(_message.Message):
    __slots__ = ("sandbox_id", "path", "format", "replace", "make_parents")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    MAKE_PARENTS_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    format: ArchiveFormat
    replace: bool
    make_parents: bool
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., format: _Optional[_Union[ArchiveFormat, str]] = ..., replace: bool = ..., make_parents: bool = ...) -> None: ...

class UploadArchiveResponse(_message.Message):
    __slots__ = ("entries", "archive_bytes", "file_bytes")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    entries: int
    archive_bytes: int
    file_bytes: int
    def __init__(self, entries: _Optional[int] = ..., archive_bytes: _Optional[int] = ..., file_bytes: _Optional[int] = ...) -> None: ...

class DownloadArchiveRequest(_message.Message):
    __slots__ = ("sandbox_id", "path", "format")
    SANDBOX_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    sandbox_id: str
    path: str
    format: ArchiveFormat
    def __init__(self, sandbox_id: _Optional[str] = ..., path: _Optional[str] = ..., format: _Optional[_Union[ArchiveFormat, str]] = ...) -> None: ...

class DownloadArchiveResponse(_message.Message):
    __slots__ = ("data", "done")
    DATA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    done: DownloadArchiveDone
    def __init__(self, data: _Optional[bytes] = ..., done: _Optional[_Union[DownloadArchiveDone, _Mapping]] = ...) -> None: ...

class DownloadArchiveDone(_message.Message):
    __slots__ = ("bytes", "sha256", "entries", "changed_while_reading")
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHANGED_WHILE_READING_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    sha256: str
    entries: int
    changed_while_reading: bool
    def __init__(self, bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., entries: _Optional[int] = ..., changed_while_reading: bool = ...) -> None: ...
