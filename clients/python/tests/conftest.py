"""Live-server tests: they need a running sandboxd at $SANDBOXD_ADDR (else
every test is skipped) and, for the restart tests, its test control endpoint
at $SANDBOXD_TEST_CONTROL (test/fixtures/live-server.ts prints both)."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

import sandboxd

ADDR = os.environ.get("SANDBOXD_ADDR")
CONTROL = os.environ.get("SANDBOXD_TEST_CONTROL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ADDR:
        skip = pytest.mark.skip(reason="SANDBOXD_ADDR is not set (no live sandboxd)")
        for item in items:
            if "tests" in str(item.fspath) and "test_offline" not in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture
def client() -> Iterator[sandboxd.Client]:
    with sandboxd.Client(timeout=60) as c:
        yield c


@pytest.fixture
async def aclient() -> AsyncIterator[sandboxd.AsyncClient]:
    async with sandboxd.AsyncClient(timeout=60) as c:
        yield c


@pytest.fixture
def label() -> dict[str, str]:
    """A label unique to the test, to find its sandboxes."""
    return {"pytest": uuid.uuid4().hex[:16]}


@pytest.fixture
def sb(client: sandboxd.Client, label: dict[str, str]) -> Iterator[sandboxd.Sandbox]:
    with client.create(ttl=60, labels=label) as s:
        yield s


@dataclass
class Restart:
    """A POST /restart running in a thread."""

    thread: threading.Thread
    status: int | None = None
    body: str = ""
    errors: list[BaseException] = field(default_factory=list)

    def wait(self, timeout: float = 120) -> None:
        self.thread.join(timeout)

    def ok(self) -> bool:
        return self.status == 200


def restart_server() -> Restart:
    """Starts POST $SANDBOXD_TEST_CONTROL/restart (kill -9, start again on the same address) in a thread."""
    if not CONTROL:
        pytest.skip("SANDBOXD_TEST_CONTROL is not set")

    def post() -> None:
        req = urllib.request.Request(f"{CONTROL}/restart", method="POST", data=b"")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                r.status, r.body = resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            r.status, r.body = e.code, e.read().decode(errors="replace")
        except BaseException as e:  # noqa: BLE001 - reported by the test
            r.errors.append(e)

    r = Restart(threading.Thread(target=post, name="restart", daemon=True))
    r.thread.start()
    return r


def wait_down(timeout: float = 15) -> bool:
    """Waits until nothing accepts connections at SANDBOXD_ADDR (the kill happened)."""
    assert ADDR
    host, port = ADDR.rsplit(":", 1)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
        except OSError:
            return True
        time.sleep(0.02)
    return False


def restart_failed(r: Restart) -> str:
    return f"POST /restart answered {r.status} {r.errors or ''}: {r.body.strip()[:300]!r}"
