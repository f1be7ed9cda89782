"""sandboxd end-to-end example client (grpcio, plaintext).

Creates a sandbox, streams a few commands (two of them past an output cap),
leaves a background command and comes back to it by its tag (Attach from
offset 0, ListCommands, SignalCommand), uploads a file and downloads it back
(checking size and sha256), uploads a small tree as a tar.gz and downloads it
back as a tar (UploadArchive, DownloadArchive), destroys the sandbox, and
prints "OK python".

    python -m sandboxd_client --addr 127.0.0.1:8080   (or SANDBOXD_ADDR)

With token authentication on the server, the API token comes from
SANDBOXD_TOKEN (or --token, which other users can see in ps) and goes out as
``authorization: Bearer <token>`` on every call, streaming ones too (a channel
interceptor). It is never printed.

The generated stubs live in <repo>/gen/python; this module puts that directory
on sys.path itself (override with SANDBOXD_GEN_PYTHON).
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import io
import os
import sys
import tarfile
import time
import uuid
from pathlib import Path

_GEN = Path(os.environ.get("SANDBOXD_GEN_PYTHON") or Path(__file__).resolve().parents[3] / "gen" / "python")
if str(_GEN) not in sys.path:
    sys.path.insert(0, str(_GEN))

import grpc  # noqa: E402
from google.protobuf import duration_pb2  # noqa: E402

from sandbox.v1 import sandbox_pb2 as pb  # noqa: E402
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc  # noqa: E402

FILE_SIZE = 3 * 1024 * 1024 + 12345  # a few MiB, not a multiple of the chunk size
CHUNK = 256 * 1024
FILE_PATH = "client-python/blob.bin"
TIMEOUT = 300.0  # seconds per RPC
OUTPUT_CAP = 64 * 1024  # max_output_bytes of the output-limit steps
TREE_PATH = "client-python/tree"
GREETING = b"hello from python\n"
TAR_CHUNK = 64 * 1024  # UploadArchive data messages (the server takes up to 4 MiB)


class Mismatch(Exception):
    pass


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call on the channel.

    An interceptor rather than grpc.metadata_call_credentials: call credentials
    need a secure channel (or grpc.local_channel_credentials, loopback only),
    and this example speaks plaintext h2c. Beyond loopback a token must only
    travel over TLS (grpc.secure_channel with grpc.ssl_channel_credentials).
    """

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:  # never show the token
        return "BearerToken(redacted)"

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [m for m in (details.metadata or ()) if m[0] != "authorization"]
        metadata.append(self._header)
        return _CallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready, details.compression
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._with_token(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._with_token(client_call_details), request_iterator)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise Mismatch(msg)


def run_exec(stub: pb_grpc.SandboxServiceStub, req: pb.ExecRequest, tagged: bool, *, quiet: bool = False):
    """Runs a command, collecting its output; prints it as it arrives (each chunk
    tagged with its stream name if tagged) unless quiet."""
    out, err, exited = bytearray(), bytearray(), None
    for ev in stub.Exec(req, timeout=TIMEOUT):
        kind = ev.WhichOneof("event")
        if kind == "started":
            print(f"[started exec_id={ev.started.exec_id} pid={ev.started.pid}]", flush=True)
        elif kind == "stdout":
            out += ev.stdout
            if quiet:
                pass
            elif tagged:
                print(f"[stdout] {ev.stdout!r}", flush=True)
            else:
                sys.stdout.buffer.write(ev.stdout)
                sys.stdout.flush()
        elif kind == "stderr":
            err += ev.stderr
            if quiet:
                pass
            elif tagged:
                print(f"[stderr] {ev.stderr!r}", flush=True)
            else:
                sys.stderr.buffer.write(ev.stderr)
                sys.stderr.flush()
        elif kind == "exited":
            exited = ev.exited
    check(exited is not None, "exec stream ended without an exited event")
    code = exited.exit_code if exited.HasField("exit_code") else None
    print(
        f"[exited reason={pb.ExecExited.Reason.Name(exited.reason)} exit_code={code} "
        f"signal={exited.signal!r} duration={exited.duration.ToTimedelta()}]",
        flush=True,
    )
    return bytes(out), bytes(err), exited


def expect_exit(exited: pb.ExecExited, code: int, what: str) -> None:
    check(
        exited.reason == pb.ExecExited.REASON_EXITED and exited.HasField("exit_code") and exited.exit_code == code,
        f"{what}: exited reason={pb.ExecExited.Reason.Name(exited.reason)} "
        f"exit_code={exited.exit_code if exited.HasField('exit_code') else None} signal={exited.signal!r}, want code {code}",
    )


def attach(stub: pb_grpc.SandboxServiceStub, ref: pb.CommandRef):
    """Reads a kept command's stdout from offset 0 until its exit, checking that
    every chunk's offset continues the previous one."""
    out, exited = bytearray(), None
    for ev in stub.Attach(pb.AttachRequest(command=ref), timeout=TIMEOUT):
        kind = ev.WhichOneof("event")
        if kind == "stdout":
            check(ev.offset == len(out), f"attach: stdout chunk at offset {ev.offset}, want {len(out)}")
            out += ev.stdout
        elif kind == "exited":
            exited = ev.exited
    check(exited is not None, "attach stream ended without an exited event")
    return bytes(out), exited


def kept_commands(stub: pb_grpc.SandboxServiceStub, sandbox_id: str) -> None:
    """Starts a background command with a tag, detaches after its first line
    (cancelling the Exec stream does not stop a background command), sees it
    running in ListCommands, re-attaches by tag from offset 0 and gets every
    line and the exit; then ends a second background command, `sleep 60`, with
    SignalCommand SIGTERM."""
    tag = "counter"
    call = stub.Exec(
        pb.ExecRequest(
            sandbox_id=sandbox_id, shell="for i in 1 2 3; do echo $i; sleep 1; done", background=True, tag=tag
        ),
        timeout=TIMEOUT,
    )
    started, first = None, None
    try:
        for ev in call:
            kind = ev.WhichOneof("event")
            if kind == "started":
                started = ev.started
            elif kind == "stdout":
                check(ev.offset == 0, f"exec background: first stdout chunk at offset {ev.offset}, want 0")
                first = ev.stdout
                break
            elif kind == "stderr":
                raise Mismatch(f"exec background: unexpected stderr {ev.stderr!r}")
            elif kind == "exited":
                raise Mismatch(f"exec background: exited before its first line ({ev.exited})")
    finally:
        call.cancel()  # detach: it goes on running
    check(
        started is not None and started.exec_id != "" and first is not None and first.startswith(b"1\n"),
        f"exec background: started {started}, first stdout {first!r}; want an exec id and b'1\\n'",
    )
    print(f"[background tag={tag} exec_id={started.exec_id} pid={started.pid}: first line {first!r}, detached]", flush=True)

    commands = stub.ListCommands(pb.ListCommandsRequest(sandbox_id=sandbox_id), timeout=TIMEOUT).commands
    listed = [c for c in commands if c.tag == tag]
    check(
        len(listed) == 1 and listed[0].exec_id == started.exec_id and listed[0].running,
        f"ListCommands: {listed}, want {started.exec_id} running with tag {tag}",
    )
    print(f"[list: tag={tag} running={listed[0].running}, {listed[0].stdout_end} stdout bytes so far]", flush=True)

    out, exited = attach(stub, pb.CommandRef(sandbox_id=sandbox_id, tag=tag))
    print(f"[attach tag={tag} from offset 0: {out!r}, exit_code={exited.exit_code}]", flush=True)
    check(out == b"1\n2\n3\n", f"attach {tag}: stdout {out!r}, want b'1\\n2\\n3\\n'")
    expect_exit(exited, 0, f"attach {tag}")

    # A second one, ended by a signal to its process group.
    sleeper = "sleeper"
    call = stub.Exec(
        pb.ExecRequest(sandbox_id=sandbox_id, argv=pb.Argv(args=["sleep", "60"]), background=True, tag=sleeper),
        timeout=TIMEOUT,
    )
    try:
        ev = next(call)
        check(ev.WhichOneof("event") == "started", f"exec sleep: first event {ev}, want started")
    finally:
        call.cancel()
    ref = pb.CommandRef(sandbox_id=sandbox_id, tag=sleeper)
    stub.SignalCommand(pb.SignalCommandRequest(command=ref, signal="SIGTERM"), timeout=TIMEOUT)
    _, exited = attach(stub, ref)
    print(f"[signal SIGTERM to tag={sleeper}: exited signal={exited.signal!r} after {exited.duration.ToTimedelta()}]", flush=True)
    check(
        exited.signal == "SIGTERM" and not exited.HasField("exit_code"),
        f"{sleeper}: exited {exited}, want ended by SIGTERM",
    )


def upload_requests(sandbox_id: str, data: bytes, sha: str):
    yield pb.UploadRequest(
        header=pb.UploadHeader(
            sandbox_id=sandbox_id,
            path=FILE_PATH,
            mode=0o644,
            make_parents=True,
            expected_size=len(data),
            expected_sha256=sha,
        )
    )
    view = memoryview(data)
    for off in range(0, len(data), CHUNK):
        yield pb.UploadRequest(data=bytes(view[off : off + CHUNK]))


def tree_archive() -> tuple[bytes, int]:
    """The archive step's tar.gz, made in memory with tarfile and gzip, and the
    number of entries in it (no "./" root entry)."""
    now = int(time.time())  # an int: a float mtime would need a pax header
    members = [  # name, type, mode, contents, link target
        ("src/", tarfile.DIRTYPE, 0o755, b"", ""),
        ("src/main.txt", tarfile.REGTYPE, 0o644, GREETING, ""),
        ("src/run.sh", tarfile.REGTYPE, 0o755, b"#!/bin/sh\necho ok\n", ""),
        ("src/link", tarfile.SYMTYPE, 0o777, b"", "main.txt"),
    ]
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=now) as gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, kind, mode, body, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.size, info.mtime, info.linkname = kind, mode, len(body), now, link
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue(), len(members)


def upload_archive_requests(header: pb.UploadArchiveHeader, data: bytes):
    yield pb.UploadArchiveRequest(header=header)
    for off in range(0, len(data), TAR_CHUNK):
        yield pb.UploadArchiveRequest(data=data[off : off + TAR_CHUNK])


def archives(stub: pb_grpc.SandboxServiceStub, sandbox_id: str) -> None:
    """Uploads the tree_archive tar.gz to TREE_PATH, checks the tree with a
    command, downloads it back as a plain tar (checking bytes, sha256 and the
    entries) and sees a second upload without replace refused with ALREADY_EXISTS."""
    tgz, sent = tree_archive()
    header = pb.UploadArchiveHeader(
        sandbox_id=sandbox_id, path=TREE_PATH, format=pb.ARCHIVE_FORMAT_TAR_GZIP, make_parents=True
    )
    ur = stub.UploadArchive(upload_archive_requests(header, tgz), timeout=TIMEOUT)
    check(
        ur.entries == sent and ur.archive_bytes == len(tgz),
        f"UploadArchive: {ur.entries} entries, {ur.archive_bytes} archive bytes; want {sent} and {len(tgz)}",
    )

    shell = f"cat {TREE_PATH}/src/main.txt && stat -c %a {TREE_PATH}/src/run.sh && readlink {TREE_PATH}/src/link"
    out, _, exited = run_exec(stub, pb.ExecRequest(sandbox_id=sandbox_id, shell=shell), False, quiet=True)
    expect_exit(exited, 0, "archive check")
    want = GREETING + b"755\nmain.txt\n"
    check(out == want, f"archive check: stdout {out!r}, want {want!r}")

    data, done = bytearray(), None
    req = pb.DownloadArchiveRequest(sandbox_id=sandbox_id, path=TREE_PATH, format=pb.ARCHIVE_FORMAT_TAR)
    for msg in stub.DownloadArchive(req, timeout=TIMEOUT):
        kind = msg.WhichOneof("part")
        if kind == "data":
            data += msg.data
        elif kind == "done":
            done = msg.done
    check(done is not None, "DownloadArchive: stream ended without a done message")
    local = hashlib.sha256(data).hexdigest()
    check(
        done.bytes == len(data) and done.sha256 == local,
        f"DownloadArchive: done says {done.bytes} bytes sha256 {done.sha256}; received {len(data)} bytes sha256 {local}",
    )
    with tarfile.open(fileobj=io.BytesIO(bytes(data)), mode="r:") as tar:
        members = {m.name: m for m in tar.getmembers()}
        main, link = members.get("./src/main.txt"), members.get("./src/link")
        content = tar.extractfile(main).read() if main is not None and main.isfile() else None
    check(
        content == GREETING and link is not None and link.issym() and link.linkname == "main.txt" and done.entries == len(members),
        f"DownloadArchive: ./src/main.txt {content!r}, ./src/link {link and (link.type, link.linkname)}, "
        f"{len(members)} entries (done says {done.entries}); want {GREETING!r}, a symlink to main.txt",
    )

    try:
        stub.UploadArchive(upload_archive_requests(header, tgz), timeout=TIMEOUT)
        code = None
    except grpc.RpcError as e:
        code = e.code()
    check(code == grpc.StatusCode.ALREADY_EXISTS, f"UploadArchive again without replace: {code}, want ALREADY_EXISTS")
    print(
        f"[archive: {ur.entries} entries up ({len(tgz)} bytes tar.gz), {len(members)} down ({len(data)} bytes tar), "
        "sha256 ok, ALREADY_EXISTS on re-upload]",
        flush=True,
    )


def scenario(stub: pb_grpc.SandboxServiceStub) -> None:
    req = pb.CreateSandboxRequest(
        resources=pb.Resources(cores=1, memory_mib=256, disk_gib=1),
        labels={"client": "python"},
        lease_ttl=duration_pb2.Duration(seconds=600),
        request_id=f"client-python-{uuid.uuid4()}",
    )
    sb = stub.CreateSandbox(req, timeout=TIMEOUT).sandbox
    print(
        f'created sandbox {sb.id} (state {pb.Sandbox.State.Name(sb.state)}, provider "{sb.provider}", tenant "{sb.tenant}")',
        flush=True,
    )
    check(sb.id != "", "CreateSandbox returned an empty sandbox id")
    try:
        check(sb.state == pb.Sandbox.STATE_RUNNING, f"sandbox state {pb.Sandbox.State.Name(sb.state)}, want STATE_RUNNING")

        # Renew the lease to 20 minutes: it runs at least that long, at most 1.5 times.
        before = time.time()
        ka = stub.KeepAlive(pb.KeepAliveRequest(sandbox_id=sb.id, lease_ttl=duration_pb2.Duration(seconds=1200)), timeout=TIMEOUT)
        exp = ka.lease_expires_at.ToDatetime().replace(tzinfo=datetime.timezone.utc).timestamp()
        check(before + 1200 <= exp <= time.time() + 1800, f"KeepAlive: lease expires at {exp}, want 20 to 30 minutes from now")
        print(f"lease renewed until {ka.lease_expires_at.ToJsonString()}", flush=True)

        # Let it reach one private service (a database on the LAN), then clear the list again.
        eg = stub.SetEgressAllowlist(pb.SetEgressAllowlistRequest(sandbox_id=sb.id, entries=["10.1.2.3:5432"]), timeout=TIMEOUT)
        allow = list(eg.sandbox.egress_allowlist)
        check(len(allow) == 1 and "5432" in allow[0], f"SetEgressAllowlist: allowlist {allow}, want the one entry")
        eg = stub.SetEgressAllowlist(pb.SetEgressAllowlistRequest(sandbox_id=sb.id), timeout=TIMEOUT)
        check(list(eg.sandbox.egress_allowlist) == [], "SetEgressAllowlist: clearing left entries")
        print("egress allowlist set and cleared", flush=True)

        out, _, exited = run_exec(stub, pb.ExecRequest(sandbox_id=sb.id, argv=pb.Argv(args=["uname", "-a"])), False)
        expect_exit(exited, 0, "uname")
        check(len(out) > 0, "uname: no stdout")

        out, err, exited = run_exec(
            stub, pb.ExecRequest(sandbox_id=sb.id, shell="echo out; echo err >&2; exit 3"), True
        )
        expect_exit(exited, 3, "shell")
        check(out == b"out\n" and err == b"err\n", f"shell: stdout {out!r} stderr {err!r}, want b'out\\n' and b'err\\n'")

        # Output past max_output_bytes: by default (KILL) the command is killed once
        # it goes past the cap, and exactly the cap's worth of stdout arrives.
        out, _, exited = run_exec(
            stub,
            pb.ExecRequest(
                sandbox_id=sb.id,
                argv=pb.Argv(args=["yes", "sandboxd"]),
                max_output_bytes=OUTPUT_CAP,
                timeout=duration_pb2.Duration(seconds=60),  # fail fast should the cap not stop it
            ),
            False,
            quiet=True,
        )
        reason = pb.ExecExited.Reason.Name(exited.reason)
        print(f"[output limit: {len(out)} bytes, reason={reason}]", flush=True)
        check(
            exited.reason == pb.ExecExited.REASON_OUTPUT_LIMIT and exited.stdout_truncated and len(out) == OUTPUT_CAP,
            f"yes: exited reason={reason} signal={exited.signal!r} stdout_truncated={exited.stdout_truncated} "
            f"with {len(out)} stdout bytes, want REASON_OUTPUT_LIMIT, truncated, {OUTPUT_CAP} bytes",
        )
        # With DISCARD the rest is dropped and the command runs to its end.
        out, err, exited = run_exec(
            stub,
            pb.ExecRequest(
                sandbox_id=sb.id,
                shell="head -c 100000 /dev/zero; echo done >&2",
                max_output_bytes=OUTPUT_CAP,
                output_limit_action=pb.OUTPUT_LIMIT_ACTION_DISCARD,
            ),
            False,
            quiet=True,
        )
        print(
            f"[output limit discard: {len(out)} bytes, stdout_truncated={exited.stdout_truncated}, stderr {err!r}]",
            flush=True,
        )
        expect_exit(exited, 0, "discard")
        check(
            exited.stdout_truncated and len(out) == OUTPUT_CAP and err == b"done\n",
            f"discard: stdout_truncated={exited.stdout_truncated} with {len(out)} stdout bytes, stderr {err!r}; "
            f"want truncated, {OUTPUT_CAP} bytes, b'done\\n'",
        )

        kept_commands(stub, sb.id)

        data = os.urandom(FILE_SIZE)
        want = hashlib.sha256(data).hexdigest()
        ur = stub.Upload(upload_requests(sb.id, data, want), timeout=TIMEOUT)
        print(f"uploaded {ur.bytes_written} bytes to {FILE_PATH}, sha256 {ur.sha256}", flush=True)
        check(
            ur.bytes_written == len(data) and ur.sha256 == want,
            f"upload: server says {ur.bytes_written} bytes sha256 {ur.sha256}, want {len(data)} {want}",
        )

        h, got, info, done = hashlib.sha256(), 0, None, None
        for msg in stub.Download(pb.DownloadRequest(sandbox_id=sb.id, path=FILE_PATH), timeout=TIMEOUT):
            kind = msg.WhichOneof("part")
            if kind == "info":
                info = msg.info
            elif kind == "data":
                h.update(msg.data)
                got += len(msg.data)
            elif kind == "done":
                done = msg.done
        local = h.hexdigest()
        check(info is not None and done is not None, f"download: info present={info is not None} done present={done is not None}")
        print(
            f"downloaded {got} bytes (info size {info.size} mode {info.mode:o}), "
            f"done sha256 {done.sha256}, local sha256 {local}",
            flush=True,
        )
        check(
            info.size == len(data) and got == len(data) and done.bytes == len(data),
            f"download: sizes info {info.size} received {got} done {done.bytes}, want {len(data)}",
        )
        check(done.sha256 == want and local == want, f"download: sha256 done {done.sha256} local {local}, want {want}")

        archives(stub, sb.id)
    finally:
        try:
            stub.DestroySandbox(pb.DestroySandboxRequest(sandbox_id=sb.id), timeout=60)
            print(f"destroyed sandbox {sb.id}", flush=True)
        except grpc.RpcError as e:
            print(f"DestroySandbox {sb.id}: {e.code()} {e.details()}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sandboxd_client", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--addr",
        default=os.environ.get("SANDBOXD_ADDR") or "127.0.0.1:8080",
        help="sandboxd address host:port, plaintext h2c (env SANDBOXD_ADDR; default 127.0.0.1:8080)",
    )
    ap.add_argument(
        "--token",
        default=None,
        help="API token sent as 'authorization: Bearer <token>' (env SANDBOXD_TOKEN; none: no header)",
    )
    args = ap.parse_args(argv)
    token = (args.token or os.environ.get("SANDBOXD_TOKEN") or "").strip()
    try:
        with grpc.insecure_channel(args.addr) as channel:
            intercepted = grpc.intercept_channel(channel, BearerToken(token)) if token else channel
            scenario(pb_grpc.SandboxServiceStub(intercepted))
    except grpc.RpcError as e:
        print(f"FAIL python: {e.code()} {e.details()}", file=sys.stderr)
        return 1
    except Mismatch as e:
        print(f"FAIL python: {e}", file=sys.stderr)
        return 1
    print("OK python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
