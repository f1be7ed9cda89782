/**
 * Upload and Download end to end: checksums, offsets, an upload cut off
 * midway leaves nothing behind, chunk and header rules, error codes.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UploadRequestSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { collectExec, PROVIDERS, startE2E, type E2E, type LogLines } from "./harness.js";

type UploadMsg = MessageInitShape<typeof UploadRequestSchema>;
let e: E2E;
let id: string;
const logs: LogLines = [];

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sh = async (script: string) => (await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value: script } }))).stdout;

async function* uploadMessages(path: string, data: Buffer, chunk = 1 << 20, extra: object = {}): AsyncGenerator<UploadMsg> {
  yield { part: { case: "header", value: { sandboxId: id, path, makeParents: true, ...extra } } };
  for (let i = 0; i < data.length; i += chunk) yield { part: { case: "data", value: data.subarray(i, i + chunk) } };
}

async function download(path: string, offset = 0n) {
  const parts: Buffer[] = [];
  let info: { size: bigint; mode: number; offset: bigint } | undefined;
  let done: { bytes: bigint; sha256: string } | undefined;
  for await (const m of e.grpc.download({ sandboxId: id, path, offset })) {
    if (m.part.case === "info") info = m.part.value;
    else if (m.part.case === "data") parts.push(Buffer.from(m.part.value));
    else if (m.part.case === "done") done = m.part.value;
  }
  return { info, done, data: Buffer.concat(parts) };
}

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe.each(PROVIDERS)("Upload and Download (%s)", (provider) => {
  beforeAll(async () => {
    e = await startE2E(2, {}, provider, logs);
    id = (await e.grpc.createSandbox({})).sandbox!.id;
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("round-trips a file with matching checksums and resumes from an offset", async () => {
    const data = randomBytes(9 * 2 ** 20 + 123);
    const res = await e.grpc.upload(uploadMessages("up/big.bin", data, 4 * 2 ** 20, { mode: 0o600, expectedSha256: sha(data), expectedSize: BigInt(data.length) }));
    expect(res.bytesWritten).toBe(BigInt(data.length));
    expect(res.sha256).toBe(sha(data));
    expect((await sh("stat -c %a up/big.bin")).trim()).toBe("600");

    const d = await download("/home/sandbox/up/big.bin");
    expect(d.info).toMatchObject({ size: BigInt(data.length), mode: 0o600, offset: 0n });
    expect(d.done).toMatchObject({ bytes: BigInt(data.length), sha256: sha(data) });
    expect(d.data.equals(data)).toBe(true);

    const tail = await download("up/big.bin", 1000n);
    expect(tail.data.equals(data.subarray(1000))).toBe(true);
    expect(tail.done!.sha256).toBe(sha(data.subarray(1000)));
    expect((await failure(download("up/big.bin", BigInt(data.length + 1)))).code).toBe(Code.InvalidArgument);
  });

  it("an upload cut off midway leaves nothing at the path", async () => {
    const abort = new AbortController();
    let sent = 0;
    async function* cutOff(): AsyncGenerator<UploadMsg> {
      yield { part: { case: "header", value: { sandboxId: id, path: "cut/file.bin", makeParents: true } } };
      for (let i = 0; i < 4; i++) {
        yield { part: { case: "data", value: randomBytes(1 << 20) } };
        sent++;
      }
      abort.abort(); // the client gives up midway
      await new Promise(() => {});
    }
    expect((await failure(e.grpc.upload(cutOff(), { signal: abort.signal }))).code).toBe(Code.Canceled);
    expect(sent).toBe(4);
    let listing = "";
    for (let i = 0; i < 50; i++) {
      listing = await sh("ls -A cut");
      if (listing === "") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(listing).toBe(""); // neither the file nor its temp file
  });

  it("enforces the header-first and 4 MiB chunk rules and the expected checksum", async () => {
    const tooBig = await failure(e.grpc.upload(uploadMessages("x.bin", randomBytes(4 * 2 ** 20 + 1), 4 * 2 ** 20 + 1)));
    expect(tooBig.code).toBe(Code.InvalidArgument);
    expect(tooBig.rawMessage).toMatch(/data/);
    async function* noHeader(): AsyncGenerator<UploadMsg> {
      yield { part: { case: "data", value: Buffer.from("x") } };
    }
    const nh = await failure(e.grpc.upload(noHeader()));
    expect(nh.code).toBe(Code.InvalidArgument);
    expect(nh.rawMessage).toMatch(/header/);
    const bad = await failure(e.grpc.upload(uploadMessages("sum.bin", Buffer.from("hello"), 1 << 20, { expectedSha256: "0".repeat(64) })));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toMatch(/expected_sha256/);
    expect(await sh("test -e sum.bin && echo yes || echo no")).toBe("no\n");
  });

  it("maps file errors: missing file, directory, missing parent, unknown sandbox", async () => {
    expect((await failure(download("nope.txt"))).code).toBe(Code.NotFound);
    expect((await failure(download("/home/sandbox"))).code).toBe(Code.FailedPrecondition);
    const noParent = await failure(e.grpc.upload(uploadMessages("no/such/dir/f", Buffer.from("x"), 1, { makeParents: false })));
    expect(noParent.code).toBe(Code.NotFound);
    const unknown = e.grpc.download({ sandboxId: "sbx-nope", path: "x" });
    expect((await failure((async () => { for await (const _ of unknown); })())).code).toBe(Code.NotFound);
  });

  it("an upload into a read-only location is the user's mistake: FAILED_PRECONDITION naming the path, logged at info", async () => {
    logs.length = 0;
    for (const [path, makeParents] of [["/etc/sandboxd-upload.conf", false], ["/usr/local/new/dir/tool", true]] as const) {
      const err = await failure(e.connect1.upload(uploadMessages(path, Buffer.from("x"), 1, { makeParents })));
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.rawMessage).toContain(JSON.stringify(path));
      expect(err.rawMessage).toMatch(/read-only file system/);
    }
    expect(await sh("ls -a /etc | grep -c sandboxd-upload || true")).toBe("0\n"); // no temp file left either
    const uploads = logs.filter((l) => l.rpc === "Upload");
    expect(uploads.map((l) => [l.code, l.level])).toEqual([["FailedPrecondition", 30], ["FailedPrecondition", 30]]);
    expect(logs.filter((l) => Number(l.level) >= 50)).toEqual([]); // nothing at error level
  });
});
