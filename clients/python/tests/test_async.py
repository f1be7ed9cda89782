"""The asyncio client on a live server."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

import sandboxd


async def test_async_surface(aclient: sandboxd.AsyncClient, label: dict[str, str]) -> None:
    async with aclient.create(ttl=60, labels=label) as sb:
        assert [s.id for s in await aclient.list(labels=label)] == [sb.id]
        r = await sb.run("echo hi; exit 2")
        assert (r.stdout, r.exit_code) == (b"hi\n", 2)
        with pytest.raises(sandboxd.CommandError):
            await sb.run("exit 1", check=True)

        s = sb.stream(r"printf '\xe2\x82'; sleep 0.2; printf '\xac\n'")
        text = "".join([t async for kind, t in s.text() if kind == "stdout"])
        assert text == "€\n"

        data = os.urandom(5 * 1024 * 1024 + 7)
        seen: list[int] = []
        up = await sb.upload("f.bin", data, progress=seen.append)
        assert up.sha256 == hashlib.sha256(data).hexdigest() and seen[-1] == len(data)
        buf = io.BytesIO()
        down = await sb.download("f.bin", buf)
        assert buf.getvalue() == data and down.sha256 == up.sha256
        assert await sb.read_bytes("f.bin") == data

        await sb.make_dir("d")
        with pytest.raises(sandboxd.AlreadyExists):
            await sb.make_dir("d")
        await sb.move("f.bin", "d/g.bin")
        assert [e.name for e in await sb.list_dir("d")] == ["g.bin"]
        assert (await sb.stat("d/g.bin")).size == len(data)
        await sb.remove("d", recursive=True)
        assert not await sb.exists("d")

        await sb.start("for i in 1 2; do echo $i; done", tag="t")
        a = sb.attach(tag="t")
        assert b"".join([ev.data async for ev in a if ev.kind == "stdout"]) == b"1\n2\n"
        assert any(c.tag == "t" for c in await sb.list_commands())

        with pytest.raises(sandboxd.DeadlineExceeded):
            await sb.run("sleep 10", deadline=1)
    with pytest.raises(sandboxd.NotFound):
        await aclient.get(sb.id)
