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

test("a copied SHA-256 (portable and node:crypto) goes on independently from the same state", async () => {
  const { newHasher } = await import("../src/private/sha256.js");
  const head = randomBytes(1000);
  const [a, b] = [randomBytes(777), randomBytes(64)];
  for (const h of [new Sha256(), await newHasher()]) {
    h.update(head.subarray(0, 500));
    h.update(head.subarray(500));
    const c = h.copy();
    h.update(a);
    c.update(b);
    assert.equal(h.digest(), createHash("sha256").update(head).update(a).digest("hex"));
    assert.equal(c.digest(), createHash("sha256").update(head).update(b).digest("hex"));
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
  // connect-node 2.1's error for a stream that crossed the server's GOAWAY (test/proxy/connection-age.spec.ts meets it for real).
  const refused = () => new ConnectError("Stream closed with error code NGHTTP2_REFUSED_STREAM", Code.Internal);
  assert.ok(toSandboxdError(refused()) instanceof UnavailableError);
  let calls = 0;
  const ok = await withRetry(async () => {
    if (++calls < 3) throw refused();
    return "served";
  }, { maxElapsedMs: 5_000, initialDelayMs: 10, maxDelayMs: 50 });
  assert.equal(ok, "served");
  assert.equal(calls, 3);
  // Any other INTERNAL stays INTERNAL, and is not retried.
  calls = 0;
  await assert.rejects(withRetry(async () => {
    calls++;
    throw new ConnectError("the server broke", Code.Internal);
  }, { maxElapsedMs: 5_000, initialDelayMs: 10, maxDelayMs: 50 }), (e: unknown) => e instanceof SandboxdError && e.code === Code.Internal);
  assert.equal(calls, 1);
});
