"""run("true") and a 256 MiB upload through the Python library (sandboxd)
against the same through the raw generated grpcio stub, on one sandbox, in
alternating rounds. Prints JSON: exec samples in ms, upload MB/s per round.
Run by bench/sdk.ts with SANDBOXD_ADDR, SANDBOX_ID and PYTHONPATH set."""
import json
import os
import time

import grpc

import sandboxd
from sandboxd._gen.sandbox.v1 import sandbox_pb2 as pb
from sandboxd._gen.sandbox.v1 import sandbox_pb2_grpc as pb_grpc

ADDR = os.environ["SANDBOXD_ADDR"]
ID = os.environ["SANDBOX_ID"]
UPLOAD = 256 * 2**20
CHUNK = 2**20  # what both sides send per message
BLOCK = os.urandom(CHUNK)

channel = grpc.insecure_channel(ADDR, options=[("grpc.max_receive_message_length", 8 << 20)])
raw = pb_grpc.SandboxServiceStub(channel)
client = sandboxd.Client(ADDR)
sb = client.get(ID)


def raw_run() -> None:
    req = pb.ExecRequest(sandbox_id=ID, argv=pb.Argv(args=["true"]))
    for m in raw.Exec(req):
        if m.HasField("exited"):
            assert m.exited.exit_code == 0
            return
    raise RuntimeError("no exited event")


def sdk_run() -> None:
    assert sb.run(["true"]).exit_code == 0


def chunks():
    for _ in range(UPLOAD // CHUNK):
        yield BLOCK


def raw_upload() -> None:
    def reqs():
        yield pb.UploadRequest(header=pb.UploadHeader(sandbox_id=ID, path="bench-raw.bin", expected_size=UPLOAD))
        for b in chunks():
            yield pb.UploadRequest(data=b)
    assert raw.Upload(reqs()).bytes_written == UPLOAD


def sdk_upload() -> None:
    sb.upload("bench-sdk.bin", chunks())


def timed(n, fn):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


res = {"raw": [], "sdk": [], "upload_raw_mbps": [], "upload_sdk_mbps": []}
timed(30, raw_run)
timed(30, sdk_run)
for _ in range(10):
    res["raw"] += timed(30, raw_run)
    res["sdk"] += timed(30, sdk_run)
raw_upload()
sdk_upload()
for _ in range(5):
    res["upload_raw_mbps"].append(UPLOAD / 1e6 / (timed(1, raw_upload)[0] / 1000))
    res["upload_sdk_mbps"].append(UPLOAD / 1e6 / (timed(1, sdk_upload)[0] / 1000))
print(json.dumps(res))
