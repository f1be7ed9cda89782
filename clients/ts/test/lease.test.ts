/** Leases: background renewal keeps a short-TTL sandbox; `await using` destroys it even when the block throws. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { NotFoundError, type Sandbox } from "../src/index.js";
import { acquireLiveLock, newClient, skipLive, sleep, uniqueLabel, releaseLiveLock } from "./helpers.js";

before(acquireLiveLock);
after(releaseLiveLock);

test("a sandbox with a 3 s lease is kept alive by the library for more than 3 TTLs", { skip: skipLive, timeout: 60_000 }, async () => {
  const client = newClient();
  const errors: unknown[] = [];
  await using sb = await client.create({ ttlMs: 3_000, labels: uniqueLabel(), onLeaseError: (e) => errors.push(e) });
  assert.equal(sb.renewing, true);
  await sleep(10_500); // no renewals by the test
  const info = await sb.refresh();
  assert.equal(info.state, "running");
  assert.ok(info.leaseExpiresAt && info.leaseExpiresAt.getTime() > Date.now(), `lease expires ${info.leaseExpiresAt?.toISOString()}`);
  assert.deepEqual(errors, []);
  const got = await client.get(sb.id);
  assert.equal(got.id, sb.id);
  const r = await sb.run("echo alive", { check: true });
  assert.equal(r.stdoutText, "alive\n");
});

test("detach stops renewing without destroying; the lease then runs out", { skip: skipLive, timeout: 60_000 }, async () => {
  const client = newClient();
  const sb = await client.create({ ttlMs: 2_000, labels: uniqueLabel() });
  try {
    sb.detach();
    assert.equal(sb.renewing, false);
    assert.equal((await client.get(sb.id)).id, sb.id); // not destroyed by detach
    const deadline = Date.now() + 20_000;
    let gone = false;
    while (!gone && Date.now() < deadline) {
      await sleep(500);
      gone = await client.get(sb.id).then(
        () => false,
        (e: unknown) => e instanceof NotFoundError,
      );
    }
    assert.ok(gone, "the sandbox outlived its lease after detach");
  } finally {
    await sb.close();
  }
});

test("a block that throws inside `await using` still destroys its sandbox", { skip: skipLive, timeout: 60_000 }, async () => {
  const client = newClient();
  let id = "";
  await assert.rejects(
    async () => {
      await using sb = await client.create({ ttlMs: 60_000, labels: uniqueLabel() });
      id = sb.id;
      await sb.run("true", { check: true });
      throw new Error("boom");
    },
    { message: "boom" },
  );
  assert.notEqual(id, "");
  await assert.rejects(client.get(id), NotFoundError);
});

test("a lease renewal that fails is reported to onLeaseError and thrown by the next call", { skip: skipLive, timeout: 60_000 }, async () => {
  const client = newClient();
  const errors: unknown[] = [];
  const sb: Sandbox = await client.create({ ttlMs: 1_500, labels: uniqueLabel(), onLeaseError: (e) => errors.push(e) });
  await client.destroy(sb.id); // behind the handle's back: the next renewal fails
  const deadline = Date.now() + 10_000;
  while (errors.length === 0 && Date.now() < deadline) await sleep(100);
  assert.ok(errors.length > 0, "no lease error reported");
  assert.ok(errors[0] instanceof NotFoundError || (errors[0] as { name?: string }).name === "FailedPreconditionError", String(errors[0]));
  assert.equal(sb.renewing, false, "renewal goes on after the sandbox is gone");
  await assert.rejects(sb.run("true"), (e: unknown) => e === errors[0]);
  await sb.close();
});
