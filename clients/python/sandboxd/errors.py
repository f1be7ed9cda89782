"""Typed errors: one class per gRPC status code, all under :class:`SandboxdError`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from .types import CommandResult


class SandboxdError(Exception):
    """Any error from sandboxd or this library.

    ``code`` is the gRPC status code (a ``grpc.StatusCode``; None for errors
    made by the library itself, such as :class:`CommandError`) and
    ``message`` the server's message.
    """

    code: Any = None

    def __init__(self, message: str = "", *, code: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        name = getattr(self.code, "name", None)
        return f"{name}: {self.message}" if name else self.message


class Cancelled(SandboxdError):
    code = grpc.StatusCode.CANCELLED


class Unknown(SandboxdError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(SandboxdError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(SandboxdError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(SandboxdError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(SandboxdError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(SandboxdError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(SandboxdError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(SandboxdError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(SandboxdError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(SandboxdError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(SandboxdError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(SandboxdError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(SandboxdError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(SandboxdError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(SandboxdError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ChecksumMismatch(SandboxdError):
    """A transfer's sha256 (or size) did not match on both ends."""


class LeaseError(SandboxdError):
    """Renewing the sandbox's lease failed; ``__cause__`` is the renewal's error
    and ``code`` its status code."""


class CommandError(SandboxdError):
    """A command run with ``check=True`` did not exit with 0 (like
    ``subprocess.CalledProcessError``): ``result`` has its output and status."""

    def __init__(self, result: CommandResult, cmd: object) -> None:
        self.result = result
        self.cmd = cmd
        how = f"exit code {result.exit_code}" if result.exit_code is not None else f"{result.reason} {result.signal}".strip()
        super().__init__(f"command {cmd!r} failed: {how}")

    @property
    def exit_code(self) -> int | None:
        return self.result.exit_code


_BY_CODE: dict[Any, type[SandboxdError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def from_rpc_error(err: Any) -> SandboxdError:
    """The typed error for a ``grpc.RpcError`` (sync or aio)."""
    try:
        code = err.code()
        details = err.details() or ""
    except Exception:  # an RpcError without status (should not happen)
        return SandboxdError(str(err))
    cls = _BY_CODE.get(code, SandboxdError)
    e = cls(details, code=code)
    e.__cause__ = err
    return e
