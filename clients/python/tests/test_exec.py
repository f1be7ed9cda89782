"""Commands: run, stream, the UTF-8 helper, kept commands."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import sandboxd


def test_run_shell_and_argv(sb: sandboxd.Sandbox) -> None:
    r = sb.run("echo out; echo err >&2; exit 3")
    assert (r.stdout, r.stderr, r.exit_code, r.reason) == (b"out\n", b"err\n", 3, "exited")
    assert r.text == "out\n" and r.stderr_text == "err\n" and not r.ok
    r = sb.run(["printf", "%s|", "a b", "$HOME"], env={"X": "1"})
    assert r.stdout == b"a b|$HOME|"
    r = sb.run("echo $X; pwd", env={"X": "y"}, cwd="/tmp", check=True)
    assert r.text == "y\n/tmp\n"
    assert sb.run("cat", stdin="fed").stdout == b"fed"


def test_command_timeout_kills(sb: sandboxd.Sandbox) -> None:
    r = sb.run("sleep 10", timeout=0.5)
    assert r.reason == "timeout" and r.exit_code is None and r.signal


def test_check_raises_command_error(sb: sandboxd.Sandbox) -> None:
    with pytest.raises(sandboxd.CommandError) as ei:
        sb.run("echo no >&2; exit 7", check=True)
    assert ei.value.exit_code == 7 and ei.value.result.stderr == b"no\n"
    assert isinstance(ei.value, sandboxd.SandboxdError)


def test_stream_utf8_split_across_chunks(sb: sandboxd.Sandbox) -> None:
    cmd = r"printf '\xe2\x82'; sleep 0.2; printf '\xac\n'"
    chunks = [ev.data for ev in sb.stream(cmd) if ev.kind == "stdout"]
    assert len(chunks) >= 2 and b"".join(chunks) == b"\xe2\x82\xac\n"  # really split
    s = sb.stream(cmd)
    text = "".join(t for kind, t in s.text() if kind == "stdout")
    assert text == "€\n"
    assert s.result is not None and s.result.exit_code == 0


def test_stream_events(sb: sandboxd.Sandbox) -> None:
    kinds = [ev.kind for ev in sb.stream(["echo", "x"])]
    assert kinds[0] == "started" and kinds[-1] == "exited" and "stdout" in kinds


def test_kept_commands(sb: sandboxd.Sandbox) -> None:
    exec_id = sb.start("for i in 1 2 3; do echo $i; sleep 0.2; done", tag="counter")
    listed = [c for c in sb.list_commands() if c.tag == "counter"]
    assert len(listed) == 1 and listed[0].exec_id == exec_id
    s = sb.attach(tag="counter")
    out = b"".join(ev.data for ev in s if ev.kind == "stdout")
    assert out == b"1\n2\n3\n" and s.result is not None and s.result.exit_code == 0

    sb.start("cat", tag="repl", keep_stdin_open=True)
    sb.write_input("hello\n", tag="repl")
    sb.write_input(b"bye\n", tag="repl", close=True)
    s = sb.attach(tag="repl")
    assert b"".join(ev.data for ev in s if ev.kind == "stdout") == b"hello\nbye\n"

    sb.start(["sleep", "60"], tag="sleeper")
    sb.signal("SIGTERM", tag="sleeper")
    s = sb.attach(tag="sleeper")
    list(s)
    assert s.result is not None and s.result.signal == "SIGTERM"


def test_leaving_a_stream_early_kills_the_command(sb: sandboxd.Sandbox) -> None:
    import time

    for ev in sb.stream(["sleep", "37"]):
        if ev.kind == "started":
            break
    for _ in range(50):
        if sb.run(["pgrep", "-f", "sleep 37"]).exit_code == 1:
            return
        time.sleep(0.1)
    pytest.fail("sleep 37 still runs after the stream was left")


def test_pty(sb: sandboxd.Sandbox) -> None:
    out = b"".join(ev.data for ev in sb.stream("stty size", pty=(24, 80)) if ev.kind == "stdout")
    assert out.strip() == b"24 80"
    sb.start("read x; stty size", tag="tty", pty=(24, 80), keep_stdin_open=True)
    sb.resize_pty(30, 100, tag="tty")
    sb.write_input("\n", tag="tty")
    out = b"".join(ev.data for ev in sb.attach(tag="tty") if ev.kind == "stdout")
    assert b"30 100" in out


def test_stream_input(sb: sandboxd.Sandbox) -> None:
    sb.start("cat", tag="cat", keep_stdin_open=True)
    chunks: list[bytes | str] = [b"a", "b", b"c\n"]
    sb.stream_input(iter(chunks), tag="cat", close=True)
    out = b"".join(ev.data for ev in sb.attach(tag="cat") if ev.kind == "stdout")
    assert out == b"abc\n"


async def test_stream_input_async(aclient: sandboxd.AsyncClient, label: dict[str, str]) -> None:
    async with aclient.create(ttl=60, labels=label) as sb:
        await sb.start("cat", tag="cat", keep_stdin_open=True)

        async def gen() -> AsyncIterator[bytes | str]:
            yield b"x"
            yield "y\n"

        await sb.stream_input(gen(), tag="cat", close=True)
        a = sb.attach(tag="cat")
        assert b"".join([ev.data async for ev in a if ev.kind == "stdout"]) == b"xy\n"
