/** Typed errors for each status code the server sends, and CommandError. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  AlreadyExistsError,
  Code,
  CommandError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  SandboxdError,
  type Sandbox,
  type SandboxdClient,
} from "../src/index.js";
import { acquireLiveLock, newClient, skipLive, uniqueLabel, releaseLiveLock } from "./helpers.js";

let client: SandboxdClient;
let sb: Sandbox;

before(async () => {
  await acquireLiveLock();
  if (skipLive) return;
  client = newClient();
  sb = await client.create({ ttlMs: 60_000, labels: uniqueLabel() });
});
after(async () => {
  try {
    await sb?.close();
  } finally {
    releaseLiveLock();
  }
});

test("NotFoundError: get of an unknown id", { skip: skipLive }, async () => {
  const err = await client.get("sbx-does-not-exist").catch((e: unknown) => e);
  assert.ok(err instanceof NotFoundError);
  assert.ok(err instanceof SandboxdError);
  assert.equal(err.code, Code.NotFound);
  assert.match(err.rawMessage, /sbx-does-not-exist/);
});

test("AlreadyExistsError: makeDir twice", { skip: skipLive }, async () => {
  await sb.makeDir("twice");
  const err = await sb.makeDir("twice").catch((e: unknown) => e);
  assert.ok(err instanceof AlreadyExistsError, String(err));
  assert.equal(err.code, Code.AlreadyExists);
});

test("FailedPreconditionError: remove a non-empty directory without recursive", { skip: skipLive }, async () => {
  await sb.makeDir("full/sub", { parents: true });
  await assert.rejects(sb.remove("full"), FailedPreconditionError);
  await sb.remove("full", { recursive: true });
  await assert.rejects(sb.stat("full"), NotFoundError);
});

test("InvalidArgumentError: an empty path", { skip: skipLive }, async () => {
  const err = await sb.stat("").catch((e: unknown) => e);
  assert.ok(err instanceof InvalidArgumentError, String(err));
  assert.equal(err.code, Code.InvalidArgument);
});

test("CommandError: check on a non-zero exit", { skip: skipLive }, async () => {
  const err = await sb.run("echo oops >&2; exit 7", { check: true }).catch((e: unknown) => e);
  assert.ok(err instanceof CommandError, String(err));
  assert.equal(err.exitCode, 7);
  assert.equal(err.result.stderrText, "oops\n");
  assert.match(err.message, /exit code 7: oops/);
  // Without check it is a result, not an error.
  const r = await sb.run(["sh", "-c", "exit 7"]);
  assert.equal(r.exitCode, 7);
  assert.equal(r.reason, "exited");
});

test("DeadlineExceededError: the RPC deadline on sleep 10", { skip: skipLive }, async () => {
  const t0 = Date.now();
  await assert.rejects(sb.run("sleep 10", { deadlineMs: 1_000 }), DeadlineExceededError);
  assert.ok(Date.now() - t0 < 8_000);
});

test("the command's own timeout ends it with reason timeout; with check it is a CommandError", { skip: skipLive }, async () => {
  const r = await sb.run("sleep 10", { timeoutMs: 500 });
  assert.equal(r.reason, "timeout");
  assert.equal(r.exitCode, null);
  await assert.rejects(sb.run("sleep 10", { timeoutMs: 500, check: true }), CommandError);
});

test("CanceledError: an aborted signal", { skip: skipLive }, async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  await assert.rejects(sb.run("sleep 10", { signal: ac.signal }), (e: unknown) => e instanceof SandboxdError && e.code === Code.Canceled);
});
