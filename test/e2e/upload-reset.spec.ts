/**
 * An Upload the client resets (RST_STREAM) or drops is never put in place,
 * wherever in the stream the cut falls: node ends a reset request body just
 * like a clean one, and the server must tell them apart from the HTTP/2
 * stream's state (server/api/node-request.ts), not from timing. A raw HTTP/2
 * client frames the gRPC messages itself so it can cut at exact bytes,
 * including exactly at a message boundary, where the body looks complete.
 */
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UploadRequestSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { collectExec, startE2E, type E2E, type LogLines } from "./harness.js";

const N = 10;
const CHUNK = 64 * 1024;
let e: E2E;
let id: string;
const logs: LogLines = [];

function frame(msg: Parameters<typeof create<typeof UploadRequestSchema>>[1]): Buffer {
  const body = toBinary(UploadRequestSchema, create(UploadRequestSchema, msg));
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

const header = (path: string) => frame({ part: { case: "header", value: { sandboxId: id, path, makeParents: true } } });
const data = (fill: number) => frame({ part: { case: "data", value: Buffer.alloc(CHUNK, fill) } });

/**
 * How the stream ends. Each cut is a bare RST_STREAM (or a dropped
 * connection) with no END_STREAM before it: node's own `close()` would send
 * END_STREAM first, which is a clean end followed by a cancel.
 */
type Cut = "cancel" | "internal_error" | "no_error" | "drop" | "end";

/** Sends `bytes` on one Upload stream, waits until they are on the wire, then ends it the `cut` way. */
async function send(bytes: Buffer, cut: Cut, sameTick = false): Promise<void> {
  const session = http2.connect(e.baseUrl);
  session.on("error", () => {});
  await new Promise<void>((r) => session.once("connect", () => r()));
  const abort = new AbortController();
  const headers = { ":method": "POST", ":path": "/sandbox.v1.SandboxService/Upload", "content-type": "application/grpc", te: "trailers" };
  const req = session.request(headers, { signal: abort.signal });
  req.on("error", () => {});
  req.resume();
  const closed = new Promise<void>((r) => req.once("close", () => r()));
  if (sameTick) req.write(bytes);
  else {
    if (bytes.length) await new Promise<void>((r) => req.write(bytes, () => r()));
    // Let the bytes reach the server before the cut, so it sees them first.
    await new Promise((r) => setTimeout(r, 50));
  }
  if (cut === "end") req.end();
  else if (cut === "cancel") abort.abort(); // RST_STREAM(CANCEL), as gRPC clients cancel
  else if (cut === "internal_error") req.destroy(new Error("client gave up")); // RST_STREAM(INTERNAL_ERROR)
  else if (cut === "no_error") req.destroy(); // RST_STREAM(NO_ERROR)
  else session.destroy(); // the TCP connection goes
  await closed;
  if (cut === "no_error") expect(req.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
  session.close();
}

const uploadLogs = () => logs.filter((l) => l.rpc === "Upload");

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const listing = async (dir: string) =>
  (await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value: `ls -A ${dir} 2>/dev/null; true` } }))).stdout;

describe("an Upload cut off by the client", () => {
  beforeAll(async () => {
    e = await startE2E(N, {}, "local", logs);
    id = (await e.grpc.createSandbox({}))?.sandbox!.id;
  }, 120_000);
  afterAll(async () => {
    await e?.stop();
  }, 120_000);

  const whole = (k: number, fill = 1) => Buffer.concat(Array.from({ length: k }, () => data(fill)));
  const cases: Array<[string, (path: string) => Buffer, Cut, boolean?]> = [
    ["reset before any message", () => Buffer.alloc(0), "cancel"],
    ["reset right after the header message", (p) => header(p), "cancel"],
    ["reset exactly after a whole data message", (p) => Buffer.concat([header(p), whole(1)]), "cancel"],
    ["reset exactly after many whole data messages", (p) => Buffer.concat([header(p), whole(40)]), "cancel"],
    ["reset inside a message's length prefix", (p) => Buffer.concat([header(p), whole(3), data(2).subarray(0, 3)]), "cancel"],
    ["reset inside a data message", (p) => Buffer.concat([header(p), whole(3), data(2).subarray(0, 1000)]), "cancel"],
    ["RST_STREAM(INTERNAL_ERROR) at a message boundary", (p) => Buffer.concat([header(p), whole(5)]), "internal_error"],
    ["RST_STREAM(NO_ERROR) at a message boundary, without END_STREAM", (p) => Buffer.concat([header(p), whole(5)]), "no_error"],
    ["connection dropped at a message boundary", (p) => Buffer.concat([header(p), whole(5)]), "drop"],
    // The cut in the same tick as the last bytes: the body's end and the reset arrive together.
    ["RST_STREAM(CANCEL) sent with the last whole message", (p) => Buffer.concat([header(p), whole(5)]), "cancel", true],
    ["RST_STREAM(NO_ERROR) sent with the last whole message", (p) => Buffer.concat([header(p), whole(5)]), "no_error", true],
    ["RST_STREAM(NO_ERROR) sent with a one-message upload", (p) => Buffer.concat([header(p), whole(1)]), "no_error", true],
  ];

  it.each(cases.map(([name, bytes, cut, sameTick], i) => [name, bytes, cut, sameTick, i] as const))("%s: nothing at the path", async (_name, bytes, cut, sameTick, i) => {
    const dir = `reset${i}`;
    const before = uploadLogs().length;
    await send(bytes(`${dir}/file.bin`), cut, sameTick);
    const line = await until("the Upload's log line", () => uploadLogs()[before]);
    // Never "ok". connect-node maps reset codes as gRPC does (CANCEL is CANCELLED, NO_ERROR and
    // INTERNAL_ERROR are INTERNAL); a cut our check sees first is CANCELLED.
    if (cut === "cancel" || cut === "drop") expect(line.code).toBe("Canceled");
    else expect(["Canceled", "Internal"]).toContain(line.code);
    // The temp file goes too (its removal may finish just after the RPC).
    expect(await until("an empty directory", async () => ((await listing(dir)) === "" ? "" : undefined))).toBe("");
  }, 60_000);

  it("a clean end of stream at the same boundary puts the file in place", async () => {
    const before = uploadLogs().length;
    await send(Buffer.concat([header("clean/file.bin"), whole(40, 7)]), "end");
    const line = await until("the Upload's log line", () => uploadLogs()[before]);
    expect(line.code).toBe("ok");
    const r = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value: "ls -A clean; wc -c < clean/file.bin; od -An -tu1 -N1 clean/file.bin" } }));
    expect(r.stdout.split(/\s+/).filter(Boolean)).toEqual(["file.bin", String(40 * CHUNK), "7"]);
  }, 60_000);
});
