"""sandboxd: a Python client for sandboxd, throw-away Linux sandboxes over gRPC.

    import sandboxd

    with sandboxd.Client() as client, client.create(ttl=60) as sb:
        print(sb.run("uname -a", check=True).text)

See README.md for the whole surface: :class:`Client` (sync) and
:class:`AsyncClient` (asyncio), typed errors under :class:`SandboxdError`.
"""

from ._common import TLS, RetryPolicy
from .aio import AsyncClient, AsyncExecStream, AsyncSandbox, AsyncWatch
from .client import Client, ExecStream, Sandbox, Watch
from .errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    ChecksumMismatch,
    CommandError,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    LeaseError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    SandboxdError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)
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

__version__ = "0.1.0"

__all__ = [
    "Aborted",
    "AlreadyExists",
    "ArchiveResult",
    "AsyncClient",
    "AsyncExecStream",
    "AsyncSandbox",
    "AsyncWatch",
    "Cancelled",
    "ChecksumMismatch",
    "Client",
    "CommandError",
    "CommandInfo",
    "CommandResult",
    "DataLoss",
    "DeadlineExceeded",
    "ExecEvent",
    "ExecStream",
    "FailedPrecondition",
    "FileInfo",
    "Internal",
    "InvalidArgument",
    "LeaseError",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "RetryPolicy",
    "Sandbox",
    "SandboxInfo",
    "SandboxdError",
    "TLS",
    "TransferResult",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "Utf8Decoder",
    "Watch",
    "WatchEvent",
]
