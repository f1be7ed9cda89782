"""What the sync and async clients share: settings, retry policy, TLS, upload
sources and download destinations (request building is in _requests)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Union

import grpc

# Re-exported: request building lives in _requests.
from ._requests import command_ref as command_ref
from ._requests import create_request as create_request
from ._requests import duration as duration
from ._requests import exec_request as exec_request

DEFAULT_ADDR = "127.0.0.1:8080"
CHUNK = 1024 * 1024  # upload data messages (the server takes up to 4 MiB)
MAX_MESSAGE = 16 * 1024 * 1024

# Reconnect quickly after the server comes back (gRPC's default backoff grows to 120 s).
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

Command = Union[str, Sequence[str]]
PathLike = Union[str, "os.PathLike[str]"]
#: What upload accepts: a local path, bytes, a binary file object, or an iterable of bytes chunks.
Source = Union[PathLike, bytes, bytearray, memoryview, IO[bytes], Iterable[bytes]]
#: What download accepts: a local path or a writable binary file object.
Destination = Union[PathLike, IO[bytes]]

STREAM_RESUME_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)


@dataclass
class RetryPolicy:
    """Retries of idempotent calls on UNAVAILABLE: exponential backoff from
    ``initial`` to ``maximum`` seconds (times ``multiplier`` per attempt, with
    jitter), given up once ``total`` seconds passed since the first attempt."""

    initial: float = 0.1
    maximum: float = 2.0
    multiplier: float = 2.0
    total: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.multiplier**attempt) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class TLS:
    """TLS settings: ``ca`` (PEM file of the CA that signed the server's
    certificate; None: the system's roots) and an optional client certificate
    (``cert`` and ``key`` PEM files) for mutual TLS."""

    ca: PathLike | None = None
    cert: PathLike | None = None
    key: PathLike | None = None

    def credentials(self) -> Any:
        def read(p: PathLike | None) -> bytes | None:
            return Path(p).read_bytes() if p is not None else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca), private_key=read(self.key), certificate_chain=read(self.cert)
        )


def resolve(addr: str | None, token: str | None, tls: TLS | Mapping[str, Any] | bool | None) -> tuple[str, tuple[tuple[str, str], ...], TLS | None]:
    addr = addr or os.environ.get("SANDBOXD_ADDR") or DEFAULT_ADDR
    token = (token if token is not None else os.environ.get("SANDBOXD_TOKEN") or "").strip()
    md: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
    t: TLS | None
    if tls is None or tls is False:
        t = None
    elif tls is True:
        t = TLS()
    elif isinstance(tls, TLS):
        t = tls
    else:
        t = TLS(**dict(tls))
    return addr, md, t


class Chunks:
    """An upload source as a sized (when known) iterator of chunks, hashing as it goes."""

    def __init__(self, src: Source, chunk: int = CHUNK) -> None:
        self.size: int | None = None
        self.sha = hashlib.sha256()
        self.done = 0
        self.expected_sha256 = ""
        self._close: IO[bytes] | None = None
        self._it: Iterator[bytes]
        if isinstance(src, (bytes, bytearray, memoryview)):
            data = bytes(src)
            self.size = len(data)
            self.expected_sha256 = hashlib.sha256(data).hexdigest()
            self._it = (data[i : i + chunk] for i in range(0, len(data), chunk))
        elif isinstance(src, (str, os.PathLike)):
            f = open(src, "rb")  # noqa: SIM115 - closed by close()
            self._close = f
            self.size = os.fstat(f.fileno()).st_size
            self._it = iter(lambda: f.read(chunk), b"")
        elif hasattr(src, "read"):
            fobj: IO[bytes] = src  # type: ignore[assignment]
            try:
                if fobj.seekable():
                    pos = fobj.tell()
                    end = fobj.seek(0, io.SEEK_END)
                    fobj.seek(pos)
                    self.size = end - pos
            except (OSError, AttributeError, ValueError):
                self.size = None
            self._it = iter(lambda: fobj.read(chunk), b"")
        else:
            self._it = _rechunk(iter(src), chunk)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = next(self._it)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"upload source yielded {type(data).__name__}, want bytes")
        data = bytes(data)
        self.sha.update(data)
        self.done += len(data)
        return data

    def close(self) -> None:
        if self._close is not None:
            self._close.close()


def _rechunk(it: Iterator[bytes], chunk: int) -> Iterator[bytes]:
    """Splits chunks above the server's message limit; small ones pass as they are."""
    for data in it:
        if len(data) <= chunk:
            yield data
        else:
            view = memoryview(data)
            for i in range(0, len(data), chunk):
                yield bytes(view[i : i + chunk])


def archive_source(src: Source, gzip: bool) -> tuple[Source, IO[bytes] | None]:
    """For upload_archive: a local directory is packed (tar, or tar.gz) into a
    temporary file first; anything else is sent as it is (already an archive)."""
    if isinstance(src, (str, os.PathLike)) and os.path.isdir(src):
        tmp = tempfile.TemporaryFile()
        with tarfile.open(fileobj=tmp, mode="w:gz" if gzip else "w") as tar:
            tar.add(os.fspath(src), arcname=".")
        tmp.seek(0)
        return tmp, tmp
    return src, None


def open_destination(dst: Destination) -> tuple[IO[bytes], bool]:
    """The file to write to and whether we opened it (and so close it)."""
    if isinstance(dst, (str, os.PathLike)):
        return open(dst, "wb"), True  # noqa: SIM115
    return dst, False
