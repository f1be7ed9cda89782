"""Files: upload, download, archives, file system calls."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sandboxd

MiB = 1024 * 1024


def _peak_rss_mib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux


def test_upload_download_200mb(sb: sandboxd.Sandbox, tmp_path: Path) -> None:
    size = 200 * MiB
    peak_before = _peak_rss_mib()
    local = hashlib.sha256()

    def source() -> Iterator[bytes]:  # never holds more than a chunk
        for _ in range(size // MiB):
            chunk = os.urandom(MiB)
            local.update(chunk)
            yield chunk

    up_progress: list[int] = []
    up = sb.upload("big/blob.bin", source(), progress=up_progress.append)
    assert up.size == size and up.sha256 == local.hexdigest()
    assert up_progress[-1] == size and up_progress == sorted(up_progress) and len(up_progress) > 10

    down_progress: list[int] = []
    dst = tmp_path / "blob.bin"
    down = sb.download("big/blob.bin", dst, progress=down_progress.append)
    assert down.size == size and down.sha256 == local.hexdigest() and down.resumes == 0
    assert down_progress[-1] == size and len(down_progress) > 10
    h = hashlib.sha256()
    with open(dst, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    assert h.hexdigest() == local.hexdigest()
    assert sb.run("sha256sum big/blob.bin").text.split()[0] == local.hexdigest()
    # Streamed both ways: the process's peak memory did not grow by anything near 200 MB.
    assert _peak_rss_mib() - peak_before < 100


def test_upload_sources(sb: sandboxd.Sandbox, tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    p.write_bytes(b"from a path\n")
    sb.upload("src/path.txt", p, mode=0o600)
    sb.upload("src/file.txt", io.BytesIO(b"from a file\n"))
    sb.upload("src/bytes.txt", b"from bytes\n")
    assert sb.read_bytes("src/path.txt") == b"from a path\n"
    assert sb.read_bytes("src/file.txt") == b"from a file\n"
    assert sb.read_bytes("src/bytes.txt") == b"from bytes\n"
    assert sb.stat("src/path.txt").mode == 0o600
    buf = io.BytesIO()
    assert sb.download("src/bytes.txt", buf).size == 11 and buf.getvalue() == b"from bytes\n"


def test_archives(sb: sandboxd.Sandbox, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a\n")
    (tree / "sub" / "b.txt").write_text("b\n")
    r = sb.upload_archive("proj", tree, gzip=True)
    assert r.entries >= 4
    assert sb.run("cat proj/a.txt proj/sub/b.txt", check=True).text == "a\nb\n"
    with pytest.raises(sandboxd.AlreadyExists):
        sb.upload_archive("proj", tree)
    sb.upload_archive("proj", tree, replace=True)

    out = tmp_path / "out.tar"
    d = sb.download_archive("proj", out)
    assert d.entries >= 4 and d.archive_bytes == out.stat().st_size
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"./a.txt", "./sub/b.txt"} <= names
    buf = io.BytesIO()
    sb.download_archive("proj", buf, gzip=True)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue()), mode="r:gz") as tar:
        assert "./a.txt" in tar.getnames()


def test_file_system_calls(sb: sandboxd.Sandbox) -> None:
    sb.make_dir("w/x/y", parents=True)
    sb.upload("w/x/y/f", b"123")
    info = sb.stat("w/x/y/f")
    assert (info.type, info.size, info.name) == ("file", 3, "f") and info.is_file
    assert sb.stat("w").is_dir
    names = sorted(e.path for e in sb.list_dir("w", depth=3))
    assert names == ["w/x", "w/x/y", "w/x/y/f"]
    sb.move("w/x/y/f", "w/g")
    assert not sb.exists("w/x/y/f") and sb.exists("w/g")
    sb.upload("w/h", b"")
    with pytest.raises(sandboxd.AlreadyExists):
        sb.move("w/g", "w/h")
    sb.move("w/g", "w/h", overwrite=True)
    sb.remove("w/h")
    sb.remove("w", recursive=True)
    assert not sb.exists("w")


def test_watch(sb: sandboxd.Sandbox) -> None:
    sb.make_dir("watched")
    with sb.watch("watched") as w:
        timer = threading.Timer(10, w.close)  # never hang on a missing event
        timer.start()
        sb.upload("watched/new.txt", b"x")
        seen = []
        end = time.monotonic() + 10
        for ev in w:
            seen.append((ev.type, ev.path))
            if any(p == "watched/new.txt" for _, p in seen) or time.monotonic() > end:
                break
        timer.cancel()
    assert any(p == "watched/new.txt" for _, p in seen), seen
