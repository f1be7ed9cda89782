/**
 * Riding through a sandboxd restart (kill -9 and start again, through the
 * live server's control endpoint): idempotent calls and a create retried with
 * the same request id, and a download cut off mid-way that resumes.
 *
 * Run this file on its own or with --test-concurrency=1: the restart also
 * cuts the other files' calls.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import { UnavailableError } from "../src/index.js";
import { acquireLiveLock, newClient, restartServer, skipControl, sleep, uniqueLabel, releaseLiveLock } from "./helpers.js";

const MiB = 1024 * 1024;

before(acquireLiveLock);
after(releaseLiveLock);

/** Resolves once sandboxd refuses calls (the restart has killed it). */
async function waitDown(timeoutMs = 10_000): Promise<void> {
  const probe = newClient({ retry: false, timeoutMs: 1_000 });
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      try {
        await probe.list({ labels: { "ts-client-probe": "none" } });
      } catch (e) {
        if (e instanceof UnavailableError || (e as { code?: number }).code === 10) return;
      }
      await sleep(20);
    }
    throw new Error("sandboxd did not go down after /restart");
  } finally {
    probe.close();
  }
}

/**
 * Restarts sandboxd and runs `during` once it is down (the calls in it are
 * retried until it is back); whatever happens, returns with sandboxd serving.
 */
async function duringRestart<T>(during: () => Promise<T>): Promise<T> {
  const restarted = restartServer();
  const back = restarted.catch(() => {});
  try {
    await waitDown();
    const [result] = await Promise.all([during(), restarted]);
    return result;
  } finally {
    await back;
  }
}

test("idempotent calls issued while sandboxd is down succeed once it is back", { skip: skipControl, timeout: 120_000 }, async () => {
  const client = newClient();
  await using sb = await client.create({ ttlMs: 60_000, labels: uniqueLabel() });
  await sb.writeFile("kept.txt", "still here\n");
  const t0 = Date.now();
  const [info, listed, st, entries] = await duringRestart(() =>
    Promise.all([sb.refresh(), client.list({ labels: sb.info.labels }), sb.stat("kept.txt"), sb.listDir(".")]),
  );
  console.log(`# idempotent calls rode through the restart in ${Date.now() - t0} ms`);
  assert.equal(info.id, sb.id);
  assert.deepEqual(listed.map((s) => s.id), [sb.id]);
  assert.equal(st.size, 11);
  assert.ok(entries.some((e) => e.name === "kept.txt"));
  assert.equal((await sb.run("cat kept.txt", { check: true })).stdoutText, "still here\n");
});

test("a create issued while sandboxd is down is retried with the same request id: exactly one sandbox", { skip: skipControl, timeout: 120_000 }, async () => {
  const client = newClient();
  const label = uniqueLabel();
  try {
    const t0 = Date.now();
    const sb = await duringRestart(() => client.create({ ttlMs: 60_000, labels: label }));
    console.log(`# create rode through the restart in ${Date.now() - t0} ms`);
    const found = await client.list({ labels: label });
    assert.deepEqual(found.map((s) => s.id), [sb.id], "exactly one sandbox for the create retried across the restart");
    assert.equal((await sb.run("echo new", { check: true })).stdoutText, "new\n");
  } finally {
    for (const s of await client.list({ labels: label })) await client.destroy(s.id);
  }
});

test("a download cut off mid-way by a restart resumes from the offset reached; the bytes match", { skip: skipControl, timeout: 180_000 }, async () => {
  const client = newClient();
  await using sb = await client.create({ ttlMs: 60_000, labels: uniqueLabel() });
  const size = 64 * MiB;
  const base = randomBytes(MiB);
  const want = createHash("sha256");
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < size / MiB; i++) {
      const b = Buffer.from(base);
      b.writeUInt32LE(i, 0);
      want.update(b);
      yield b;
    }
  }
  await sb.upload("cut.bin", chunks());
  const wantSha = want.digest("hex");

  // The sink stalls after 8 MiB until the restart is over, so the stream is cut mid-way for sure.
  const got = createHash("sha256");
  let received = 0;
  let restart: Promise<void> | undefined;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      got.update(chunk);
      received += chunk.length;
      if (received >= 8 * MiB && !restart) {
        restart = restartServer();
        restart.then(() => cb(), cb);
        return;
      }
      cb();
    },
  });
  const res = await sb.download("cut.bin", sink);
  assert.ok(restart, "the download finished before the restart was triggered");
  await restart;
  assert.ok(res.attempts > 1, `expected a resumed download, took ${res.attempts} attempt(s)`);
  assert.equal(received, size);
  assert.equal(res.size, size);
  assert.equal(res.sha256, wantSha);
  assert.equal(got.digest("hex"), wantSha);
});
