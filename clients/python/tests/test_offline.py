"""Unit tests that need no server."""

from __future__ import annotations

import grpc
import pytest

import sandboxd
from sandboxd._common import Chunks, RetryPolicy, exec_request
from sandboxd.errors import from_rpc_error


def test_utf8_decoder_never_splits_a_character() -> None:
    d = sandboxd.Utf8Decoder()
    euro = "€".encode()
    assert d.feed(euro[:1]) == ""
    assert d.feed(euro[1:2]) == ""
    assert d.feed(euro[2:] + b"\n") == "€\n"
    assert d.feed(b"\xe2\x82") == ""
    assert d.flush() == "\ufffd"


def test_chunks_sized_sources(tmp_path: object) -> None:
    c = Chunks(b"x" * 2_500_000)
    assert c.size == 2_500_000 and c.expected_sha256
    assert [len(x) for x in c] == [1048576, 1048576, 402848]
    g = Chunks(iter([b"a" * 5_000_000, b"b"]))
    assert g.size is None
    assert sum(len(x) for x in g) == 5_000_001 and g.done == 5_000_001


def test_exec_request_shell_or_argv() -> None:
    assert exec_request("s", "echo hi").shell == "echo hi"
    assert list(exec_request("s", ["echo", "hi"]).argv.args) == ["echo", "hi"]
    assert exec_request("s", "x", timeout=1.5).timeout.ToNanoseconds() == 1_500_000_000


def test_backoff_grows_and_is_capped() -> None:
    p = RetryPolicy(initial=0.1, maximum=1.0)
    assert 0.05 <= p.delay(0) <= 0.1
    assert 0.5 <= p.delay(10) <= 1.0


class FakeRpcError(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.NOT_FOUND, sandboxd.NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, sandboxd.AlreadyExists),
        (grpc.StatusCode.FAILED_PRECONDITION, sandboxd.FailedPrecondition),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, sandboxd.ResourceExhausted),
        (grpc.StatusCode.UNAVAILABLE, sandboxd.Unavailable),
        (grpc.StatusCode.PERMISSION_DENIED, sandboxd.PermissionDenied),
        (grpc.StatusCode.INVALID_ARGUMENT, sandboxd.InvalidArgument),
        (grpc.StatusCode.DEADLINE_EXCEEDED, sandboxd.DeadlineExceeded),
    ],
)
def test_error_types(code: grpc.StatusCode, cls: type[sandboxd.SandboxdError]) -> None:
    e = from_rpc_error(FakeRpcError(code, "the message"))
    assert type(e) is cls and isinstance(e, sandboxd.SandboxdError)
    assert e.code == code and e.message == "the message"
