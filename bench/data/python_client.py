"""The Python side of the data-path benchmark: a long-lived client program
that measures sandboxd's data path the way a Python user's service sees it,
through the client library ``sandboxd`` (not the raw generated stubs).

It is started and driven by bench/data-path.ts (the TypeScript orchestrator,
which creates the sandbox, owns its lease and destroys it) as

    PYTHONPATH=clients/python SANDBOXD_ADDR=host:port SANDBOX_ID=sbx-... \\
        .tools/venv/bin/python bench/data/python_client.py

It connects once (one channel for its whole life), attaches to the sandbox
with ``client.get`` (no lease renewal; it is detached, so nothing here ever
destroys it), prints ``{"ready": true}``, then answers each JSON command read
from stdin (one per line) with exactly one JSON line on stdout:

    {"op":"exec","n":30}                      -> {"ms":[...]}  n sequential sb.run(["true"])
    {"op":"stream","bytes":N}                 -> {"ms":t,"bytes":count}  sb.stream(head -c N /dev/zero),
                                                 stdout counted and dropped as it arrives
    {"op":"upload","local":L,"remote":R}      -> {"ms":t,"bytes":n}  sb.upload(R, L) (streamed from the file)
    {"op":"download","remote":R,"local":L}    -> {"ms":t,"bytes":n}  sb.download(R, L) (streamed to the file)
    {"op":"concurrent","n":100,"args":[...]}  -> {"ms":[...],"failures":k}  n sb.run(args) at once, each
                                                 must exit 0 with stdout b"ok\\n"
    {"op":"quit"}                             -> {"ok":true}, then exit 0

A failed op answers {"error":"..."} and the program keeps serving. Times are
milliseconds (time.perf_counter). Anything other than the answers goes to
stderr: file descriptor 1 is pointed at stderr at start, so a stray print or
library log cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sandboxd

# Keep the real stdout for the protocol only; everything else written to fd 1
# (or sys.stdout) lands on stderr.
_proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def answer(obj: dict[str, Any]) -> None:
    _proto.write(json.dumps(obj, separators=(",", ":")) + "\n")
    _proto.flush()


def log(msg: str) -> None:
    print(f"python_client: {msg}", file=sys.stderr, flush=True)


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def int_arg(cmd: dict[str, Any], key: str) -> int:
    v = cmd.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError(f"{key!r} must be a non-negative integer, got {v!r}")
    return v


def str_arg(cmd: dict[str, Any], key: str) -> str:
    v = cmd.get(key)
    if not isinstance(v, str) or not v:
        raise ValueError(f"{key!r} must be a non-empty string, got {v!r}")
    return v


class Bench:
    def __init__(self, sb: sandboxd.Sandbox) -> None:
        self.sb = sb

    def op_exec(self, cmd: dict[str, Any]) -> dict[str, Any]:
        n = int_arg(cmd, "n")
        out: list[float] = []
        for i in range(n):
            t0 = time.perf_counter()
            r = self.sb.run(["true"])
            out.append(ms_since(t0))
            if r.exit_code != 0:
                raise RuntimeError(f"run #{i} of true: exit_code={r.exit_code} signal={r.signal!r} reason={r.reason}")
        return {"ms": out}

    def op_stream(self, cmd: dict[str, Any]) -> dict[str, Any]:
        size = int_arg(cmd, "bytes")
        count = 0
        t0 = time.perf_counter()
        # sb.stream yields each output chunk as an event; nothing is kept (run() would gather it all).
        with self.sb.stream(["head", "-c", str(size), "/dev/zero"]) as s:
            for ev in s:
                if ev.kind == "stdout":
                    count += len(ev.data)
        t = ms_since(t0)
        res = s.result
        if res is None:
            raise RuntimeError("stream ended without an exit status")
        if res.exit_code != 0:
            raise RuntimeError(f"head exited with exit_code={res.exit_code} signal={res.signal!r} reason={res.reason}")
        return {"ms": t, "bytes": count}

    def op_upload(self, cmd: dict[str, Any]) -> dict[str, Any]:
        local, remote = str_arg(cmd, "local"), str_arg(cmd, "remote")
        t0 = time.perf_counter()
        res = self.sb.upload(remote, local)  # a path: read and sent in the library's 1 MiB chunks
        return {"ms": ms_since(t0), "bytes": res.size}

    def op_download(self, cmd: dict[str, Any]) -> dict[str, Any]:
        remote, local = str_arg(cmd, "remote"), str_arg(cmd, "local")
        t0 = time.perf_counter()
        res = self.sb.download(remote, local)  # a path: opened, written as chunks arrive, closed on return
        return {"ms": ms_since(t0), "bytes": res.size}

    def op_concurrent(self, cmd: dict[str, Any]) -> dict[str, Any]:
        n = int_arg(cmd, "n")
        args = cmd.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            raise ValueError(f"'args' must be a non-empty list of strings, got {args!r}")
        if n == 0:
            return {"ms": [], "failures": 0}
        gate = threading.Barrier(n)
        errors: list[str] = []

        def one(i: int) -> tuple[float, bool]:
            try:
                gate.wait(timeout=60)  # every worker is up: start all together
            except threading.BrokenBarrierError:
                pass
            t0 = time.perf_counter()
            try:
                r = self.sb.run(args)
                ok = r.exit_code == 0 and r.stdout == b"ok\n"
                why = "" if ok else f"exit_code={r.exit_code} reason={r.reason} stdout={r.stdout[:80]!r}"
            except Exception as e:  # noqa: BLE001 - a failure to count, not to raise
                ok, why = False, f"{type(e).__name__}: {e}"
            t = ms_since(t0)
            if not ok:
                errors.append(f"#{i}: {why}")
            return t, ok

        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="concurrent") as pool:
            results = list(pool.map(one, range(n)))
        failures = sum(1 for _, ok in results if not ok)
        if failures:
            log(f"concurrent: {failures}/{n} failed, e.g. " + "; ".join(errors[:3]))
        return {"ms": [t for t, _ in results], "failures": failures}


def main() -> int:
    addr = os.environ["SANDBOXD_ADDR"]
    sandbox_id = os.environ["SANDBOX_ID"]
    client = sandboxd.Client(addr)  # plaintext, one channel for the program's life
    sb = client.get(sandbox_id)  # GetSandbox: no keepalive thread is started
    sb.detach()  # never renew, never destroy: the orchestrator owns the sandbox
    bench = Bench(sb)
    ops = {
        "exec": bench.op_exec,
        "stream": bench.op_stream,
        "upload": bench.op_upload,
        "download": bench.op_download,
        "concurrent": bench.op_concurrent,
    }
    answer({"ready": True})
    try:
        while True:
            line = sys.stdin.readline()
            if not line:
                log("stdin closed; exiting")
                return 0
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
                if not isinstance(cmd, dict):
                    raise ValueError("a command must be a JSON object")
                op = cmd.get("op")
                if op == "quit":
                    answer({"ok": True})
                    return 0
                fn = ops.get(op) if isinstance(op, str) else None
                if fn is None:
                    raise ValueError(f"unknown op {op!r}")
                reply = fn(cmd)
            except Exception as e:  # noqa: BLE001 - every failure is an answer, and we keep serving
                traceback.print_exc(file=sys.stderr)
                reply = {"error": f"{type(e).__name__}: {e}"}
            answer(reply)
    finally:
        client.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the orchestrator went away
        sys.exit(1)
