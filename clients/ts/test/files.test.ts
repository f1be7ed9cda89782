/** Uploads and downloads (200 MB streamed, checksummed, with progress), archives, file-system calls. */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { after, before, test } from "node:test";
import { AlreadyExistsError, IntegrityError, InvalidArgumentError, type Sandbox, type SandboxdClient } from "../src/index.js";
import { acquireLiveLock, newClient, skipLive, uniqueLabel, releaseLiveLock } from "./helpers.js";
import { ustar } from "./tar.js";

let client: SandboxdClient;
let sb: Sandbox;
let dir = "";

before(async () => {
  await acquireLiveLock();
  dir = await mkdtemp(join(tmpdir(), "sandboxd-ts-"));
  if (skipLive) return;
  client = newClient();
  sb = await client.create({ ttlMs: 60_000, diskGib: 1, labels: uniqueLabel() });
});
after(async () => {
  try {
    await sb?.close();
    await rm(dir, { recursive: true, force: true });
  } finally {
    releaseLiveLock();
  }
});

const MiB = 1024 * 1024;

/** `mib` MiB of varied bytes, made one chunk at a time (never all in memory), and their sha256. */
function generated(mib: number): { chunks: () => AsyncGenerator<Uint8Array>; sha256: string; size: number } {
  const base = randomBytes(MiB);
  const block = (i: number) => {
    const b = Buffer.from(base); // a fresh 1 MiB per chunk, varied by its index
    for (let off = 0; off < MiB; off += 4096) b.writeUInt32LE(i, off);
    return b;
  };
  // The hash pass costs CPU, not memory: chunks are made again for the upload.
  const h = createHash("sha256");
  for (let i = 0; i < mib; i++) h.update(block(i));
  return {
    chunks: async function* () {
      for (let i = 0; i < mib; i++) yield block(i);
    },
    sha256: h.digest("hex"),
    size: mib * MiB,
  };
}

/** A Writable that only hashes and counts. */
function hashingSink(): { sink: Writable; digest: () => string; bytes: () => number } {
  const h = createHash("sha256");
  let n = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      n += chunk.length;
      cb();
    },
  });
  return { sink, digest: () => h.digest("hex"), bytes: () => n };
}

test("200 MB upload from a generator and download to a stream, with progress and sha256", { skip: skipLive, timeout: 300_000 }, async () => {
  const data = generated(200);
  const progress: number[] = [];
  const up = await sb.upload("big/blob.bin", data.chunks(), { onProgress: (n) => progress.push(n) });
  assert.equal(up.bytesWritten, data.size);
  assert.equal(up.sha256, data.sha256);
  assert.equal(progress.at(-1), data.size);
  assert.ok(progress.every((n, i) => i === 0 || n > progress[i - 1]!), "upload progress not increasing");

  const { sink, digest, bytes } = hashingSink();
  const downProgress: number[] = [];
  const down = await sb.download("big/blob.bin", sink, { onProgress: (n) => downProgress.push(n) });
  assert.equal(down.size, data.size);
  assert.equal(down.sha256, data.sha256);
  assert.equal(bytes(), data.size);
  assert.equal(digest(), data.sha256);
  assert.equal(downProgress.at(-1), data.size);
  assert.equal(down.attempts, 1);
  await sb.remove("big/blob.bin");
});

test("upload from a local path, download to a local path, bytes in memory", { skip: skipLive, timeout: 60_000 }, async () => {
  const local = join(dir, "src.bin");
  const content = Buffer.alloc(3 * MiB + 12345, 7);
  await writeFile(local, content);
  const up = await sb.upload("paths/a.bin", local, { mode: 0o600 });
  assert.equal(up.bytesWritten, content.length);
  assert.equal((await sb.stat("paths/a.bin")).mode, 0o600);
  const dest = join(dir, "dest.bin");
  const down = await sb.download("paths/a.bin", dest);
  assert.equal(down.sha256, createHash("sha256").update(content).digest("hex"));
  assert.ok(Buffer.from(await readFile(dest)).equals(content));
  await sb.writeFile("paths/hello.txt", "héllo\n");
  assert.equal(new TextDecoder().decode(await sb.readFile("paths/hello.txt")), "héllo\n");
  await assert.rejects(sb.readFile("paths/missing"), (e: unknown) => (e as { name?: string }).name === "NotFoundError");
});

test("an upload whose checksum is wrong is refused and leaves nothing", { skip: skipLive }, async () => {
  await assert.rejects(sb.upload("bad.bin", new Uint8Array([1, 2, 3]), { sha256: "0".repeat(64) }), InvalidArgumentError);
  await assert.rejects(sb.stat("bad.bin"), (e: unknown) => (e as { name?: string }).name === "NotFoundError");
  assert.ok(new IntegrityError(15, "x") instanceof Error);
});

test("archives: uploadArchive a tar.gz, downloadArchive back, AlreadyExists without replace", { skip: skipLive, timeout: 60_000 }, async () => {
  const tgz = gzipSync(
    ustar([
      { name: "src/", type: "5", mode: 0o755, body: Buffer.alloc(0) },
      { name: "src/main.txt", type: "0", mode: 0o644, body: Buffer.from("hello\n") },
    ]),
  );
  const up = await sb.uploadArchive("tree", tgz, { gzip: true });
  assert.equal(up.entries, 2);
  assert.equal(up.archiveBytes, tgz.length);
  assert.equal((await sb.run("cat tree/src/main.txt", { check: true })).stdoutText, "hello\n");
  await assert.rejects(sb.uploadArchive("tree", tgz, { gzip: true }), AlreadyExistsError);
  await sb.uploadArchive("tree", tgz, { gzip: true, replace: true });

  const down = await sb.downloadArchive("tree");
  assert.ok(down.data && down.data.length === down.bytes);
  assert.equal(down.sha256, createHash("sha256").update(down.data).digest("hex"));
  assert.ok(Buffer.from(down.data).includes("hello\n"));
  const dest = join(dir, "tree.tar.gz");
  const gz = await sb.downloadArchive("tree", dest, { gzip: true });
  assert.equal((await readFile(dest)).length, gz.bytes);
});

test("stat, listDir, makeDir, move, remove, watch", { skip: skipLive, timeout: 60_000 }, async () => {
  await sb.makeDir("fs/a/b", { parents: true });
  await sb.writeFile("fs/a/one.txt", "1");
  const st = await sb.stat("fs/a");
  assert.equal(st.type, "directory");
  const names = (await sb.listDir("fs/a")).map((e) => e.name).sort();
  assert.deepEqual(names, ["b", "one.txt"]);
  const deep = await sb.listDir("fs", { depth: 3 });
  assert.ok(deep.some((e) => e.path === "fs/a/one.txt"));
  await sb.move("fs/a/one.txt", "fs/a/two.txt");
  await assert.rejects(sb.stat("fs/a/one.txt"), (e: unknown) => (e as { name?: string }).name === "NotFoundError");

  await using watcher = await sb.watch("fs", { recursive: true });
  await sb.writeFile("fs/a/b/new.txt", "x");
  let seen = false;
  for await (const ev of watcher) {
    if (ev.path.endsWith("new.txt")) {
      seen = true;
      break;
    }
  }
  assert.ok(seen);
  await sb.remove("fs", { recursive: true });
  await assert.rejects(sb.stat("fs"), (e: unknown) => (e as { name?: string }).name === "NotFoundError");
});
