/** Offline tests: error mapping, retry policy, SHA-256, the client's defaults. No server needed. */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AlreadyExistsError,
  CanceledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  SandboxdClient,
  SandboxdError,
  UnavailableError,
  codeName,
  toSandboxdError,
} from "../src/index.js";
import { Sha256 } from "../src/private/sha256.js";
import { withRetry } from "../src/private/retry.js";

test("ConnectError maps to the typed error of its code, keeping the server's message", () => {
  const cases: [Code, new (...a: never[]) => SandboxdError][] = [
    [Code.NotFound, NotFoundError],
    [Code.AlreadyExists, AlreadyExistsError],
    [Code.FailedPrecondition, FailedPreconditionError],
    [Code.ResourceExhausted, ResourceExhaustedError],
    [Code.Unavailable, UnavailableError],
    [Code.PermissionDenied, PermissionDeniedError],
    [Code.InvalidArgument, InvalidArgumentError],
    [Code.DeadlineExceeded, DeadlineExceededError],
    [Code.Canceled, CanceledError],
  ];
  for (const [code, cls] of cases) {
    const err = toSandboxdError(new ConnectError("the server says so", code));
    assert.ok(err instanceof cls, `${Code[code]} -> ${String(err)}`);
    assert.ok(err instanceof SandboxdError);
    assert.equal(err.code, code);
    assert.equal(err.rawMessage, "the server says so");
    assert.equal(err.message, `[${codeName(code)}] the server says so`);
    assert.ok(err.cause instanceof ConnectError);
  }
  assert.equal(codeName(Code.FailedPrecondition), "FAILED_PRECONDITION");
  const plain = new Error("local");
  assert.equal(toSandboxdError(plain), plain);
});

test("withRetry retries UNAVAILABLE with backoff, never other codes, and gives up after maxElapsedMs", async () => {
  let n = 0;
  const ok = await withRetry(
    async () => {
      if (++n < 3) throw new ConnectError("down", Code.Unavailable);
      return "up";
    },
    { maxElapsedMs: 5_000, initialDelayMs: 10, maxDelayMs: 50 },
  );
  assert.equal(ok, "up");
  assert.equal(n, 3);

  n = 0;
  await assert.rejects(
    withRetry(async () => {
      n++;
      throw new ConnectError("no", Code.NotFound);
    }, { maxElapsedMs: 5_000, initialDelayMs: 10, maxDelayMs: 50 }),
    NotFoundError,
  );
  assert.equal(n, 1);

  const t0 = Date.now();
  await assert.rejects(
    withRetry(async () => {
      throw new ConnectError("down", Code.Unavailable);
    }, { maxElapsedMs: 300, initialDelayMs: 10, maxDelayMs: 50 }),
    UnavailableError,
  );
  assert.ok(Date.now() - t0 < 2_000);

  n = 0;
  await assert.rejects(
    withRetry(async () => {
      n++;
      throw new ConnectError("down", Code.Unavailable);
    }, false),
    UnavailableError,
  );
  assert.equal(n, 1);
});

test("the portable SHA-256 matches node:crypto for every split", () => {
  for (const size of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_000]) {
    const data = randomBytes(size);
    const h = new Sha256();
    for (let off = 0; off < size; ) {
      const n = Math.min(size - off, 1 + Math.floor(Math.random() * 97));
      h.update(data.subarray(off, off + n));
      off += n;
    }
    assert.equal(h.digest(), createHash("sha256").update(data).digest("hex"), `size ${size}`);
  }
});

test("the client takes its address from SANDBOXD_ADDR, else 127.0.0.1:8080; an explicit one wins", () => {
  const saved = process.env["SANDBOXD_ADDR"];
  try {
    delete process.env["SANDBOXD_ADDR"];
    assert.equal(new SandboxdClient().address, "127.0.0.1:8080");
    process.env["SANDBOXD_ADDR"] = "10.0.0.1:9000";
    assert.equal(new SandboxdClient().address, "10.0.0.1:9000");
    assert.equal(new SandboxdClient({ address: "h:1" }).address, "h:1");
  } finally {
    if (saved === undefined) delete process.env["SANDBOXD_ADDR"];
    else process.env["SANDBOXD_ADDR"] = saved;
  }
});

test("Symbol.asyncDispose exists (natively or by the polyfill)", () => {
  assert.equal(typeof Symbol.asyncDispose, "symbol");
});

test("a call to a server that is not there fails with UnavailableError once the retry budget is spent", async () => {
  const client = new SandboxdClient({ address: "127.0.0.1:1", retry: { maxElapsedMs: 300, initialDelayMs: 10, maxDelayMs: 50 } });
  await assert.rejects(client.list(), UnavailableError);
  client.close();
});

test("a stream the server refused (HTTP/2 REFUSED_STREAM, as at a GOAWAY) is UNAVAILABLE and retried: it never ran", async () => {
  const http2 = await import("node:http2");
  const { createGrpcTransport } = await import("@connectrpc/connect-node");
  const { createClient } = await import("@connectrpc/connect");
  const { SandboxService } = await import("../src/gen/sandbox/v1/sandbox_pb.js");
  let refused = 0;
  // Refuses every stream: what a client sees of streams that crossed a server's final GOAWAY.
  const server = http2.createServer();
  server.on("stream", (stream) => {
    refused++;
    stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as { port: number }).port;
    const api = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    const raw = await api.getSandbox({ sandboxId: "sbx-1" }).catch((e: unknown) => e);
    assert.ok(raw instanceof ConnectError && raw.code === Code.Internal && raw.rawMessage.includes("NGHTTP2_REFUSED_STREAM"), String(raw));
    const err = toSandboxdError(raw);
    assert.ok(err instanceof UnavailableError, String(err));
    let calls = 0;
    await assert.rejects(
      withRetry(() => (calls++, api.getSandbox({ sandboxId: "sbx-1" })), { maxElapsedMs: 300, initialDelayMs: 10, maxDelayMs: 50 }),
      UnavailableError,
    );
    assert.ok(calls > 1 && refused > calls, `retried: ${calls} calls, ${refused} refused streams`);
  } finally {
    server.close();
  }
});
