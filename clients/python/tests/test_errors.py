"""Typed errors from a live server."""

from __future__ import annotations

import pytest

import sandboxd


def test_typed_errors(client: sandboxd.Client, sb: sandboxd.Sandbox) -> None:
    with pytest.raises(sandboxd.NotFound) as nf:
        client.get("sbx-doesnotexist")
    assert nf.value.code.name == "NOT_FOUND" and "not found" in nf.value.message

    with pytest.raises(sandboxd.NotFound):
        sb.stat("no/such/file")

    sb.make_dir("d")
    with pytest.raises(sandboxd.AlreadyExists):
        sb.make_dir("d")

    sb.upload("d/f", b"x")
    with pytest.raises(sandboxd.FailedPrecondition):
        sb.remove("d")
    sb.remove("d", recursive=True)

    with pytest.raises(sandboxd.InvalidArgument):
        sb.stat("")

    with pytest.raises(sandboxd.CommandError):
        sb.run("false", check=True)

    with pytest.raises(sandboxd.DeadlineExceeded):
        sb.run("sleep 10", deadline=1)

    for e in (sandboxd.NotFound, sandboxd.AlreadyExists, sandboxd.FailedPrecondition, sandboxd.InvalidArgument,
              sandboxd.CommandError, sandboxd.DeadlineExceeded, sandboxd.ResourceExhausted, sandboxd.Unavailable,
              sandboxd.PermissionDenied):
        assert issubclass(e, sandboxd.SandboxdError)


async def test_typed_errors_async(aclient: sandboxd.AsyncClient) -> None:
    with pytest.raises(sandboxd.NotFound):
        await aclient.get("sbx-doesnotexist")
