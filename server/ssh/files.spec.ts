import { createCipheriv, createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSandboxError } from "../errors.js";
import { download, type DownloadEvent } from "./download.js";
import { startSpecSandbox, type SpecSandbox } from "./spec-sandbox.js";
import { upload } from "./upload.js";

let sb: SpecSandbox;
beforeAll(async () => {
  sb = await startSpecSandbox();
});
afterAll(async () => {
  await sb?.stop();
});

/** Deterministic pseudo-random bytes (AES-CTR keystream), generated chunk by chunk, never held whole. */
async function* generated(total: number, chunk = 1 << 20, hash?: ReturnType<typeof createHash>, delayMs = 0) {
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, 1), Buffer.alloc(16, 2));
  const zeros = Buffer.alloc(chunk);
  for (let sent = 0; sent < total; ) {
    const n = Math.min(chunk, total - sent);
    const data = cipher.update(n === chunk ? zeros : zeros.subarray(0, n));
    hash?.update(data);
    sent += n;
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    yield data;
  }
}

async function fetchAll(path: string, offset = 0): Promise<{ info: DownloadEvent; data: Buffer; done: DownloadEvent }> {
  const parts: Buffer[] = [];
  let info: DownloadEvent | undefined;
  let done: DownloadEvent | undefined;
  for await (const e of download(sb.registry, sb.id, { path, offset })) {
    if (e.type === "info") info = e;
    else if (e.type === "data") parts.push(e.data);
    else done = e;
  }
  return { info: info!, data: Buffer.concat(parts), done: done! };
}

const put = (path: string, data: Buffer | string, extra: Partial<Parameters<typeof upload>[2]> = {}, on = sb) =>
  upload(on.registry, on.id, {
    path,
    source: (async function* () {
      yield Buffer.from(data);
    })(),
    ...extra,
  });

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const ls = async (dir: string, on = sb) => (await on.sh(`ls -A '${dir}'`)).split("\n").filter(Boolean).sort();

describe("files", () => {
  it("round-trips 1 GiB with sha256 and flat memory", async () => {
    const size = 1 << 30;
    const path = `${sb.workDir}/big.bin`;
    const sent = createHash("sha256");
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const probe = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      let t0 = performance.now();
      const up = await upload(sb.registry, sb.id, { path, source: generated(size, 1 << 20, sent), expectedSize: size });
      const upSecs = (performance.now() - t0) / 1000;
      expect(up.bytesWritten).toBe(size);
      expect(up.sha256).toBe(sent.digest("hex"));
      expect((await sb.sh(`sha256sum '${path}'`)).split(" ")[0]).toBe(up.sha256);

      t0 = performance.now();
      const got = createHash("sha256");
      let bytes = 0;
      let done: DownloadEvent | undefined;
      for await (const e of download(sb.registry, sb.id, { path })) {
        if (e.type === "info") expect(e).toMatchObject({ size, offset: 0, length: size });
        if (e.type === "data") {
          got.update(e.data);
          bytes += e.data.length;
        }
        if (e.type === "done") done = e;
      }
      const downSecs = (performance.now() - t0) / 1000;
      expect(bytes).toBe(size);
      expect(done).toEqual({ type: "done", bytes: size, sha256: up.sha256 });
      expect(got.digest("hex")).toBe(up.sha256);
      console.log(
        `1 GiB: upload ${(1024 / upSecs).toFixed(0)} MiB/s, download ${(1024 / downSecs).toFixed(0)} MiB/s, ` +
          `rss +${((peak - base) / 1e6).toFixed(0)} MB`,
      );
      expect(peak - base).toBeLessThan(200e6);
    } finally {
      clearInterval(probe);
      await sb.sh(`rm -f '${path}'`);
    }
  });

  it("leaves nothing on checksum or size mismatch, keeping an existing file intact", async () => {
    const dir = `${sb.workDir}/mismatch`;
    await sb.sh(`mkdir '${dir}' && printf old > '${dir}/f'`);
    await expect(put(`${dir}/f`, "new content", { expectedSha256: sha("other") })).rejects.toMatchObject({
      kind: "invalid_argument",
      field: "expectedSha256",
    });
    await expect(put(`${dir}/f`, "new content", { expectedSize: 3 })).rejects.toMatchObject({ field: "expectedSize" });
    await expect(put(`${dir}/g`, "new content", { expectedSize: 100 })).rejects.toMatchObject({ field: "expectedSize" });
    expect(await sb.sh(`cat '${dir}/f'`)).toBe("old");
    expect(await ls(dir)).toEqual(["f"]);
    const ok = await put(`${dir}/f`, "new content", { expectedSha256: sha("new content").toUpperCase(), expectedSize: 11 });
    expect(ok).toMatchObject({ bytesWritten: 11, sha256: sha("new content") });
    expect(await sb.sh(`cat '${dir}/f'`)).toBe("new content");
    expect(await ls(dir)).toEqual(["f"]);
  });

  it("leaves nothing when cancelled midway", async () => {
    const dir = `${sb.workDir}/cancel`;
    await sb.sh(`mkdir '${dir}' && printf keep > '${dir}/existing'`);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const started = Date.now();
    await expect(
      upload(sb.registry, sb.id, { path: `${dir}/existing`, source: generated(1 << 30, 1 << 16, undefined, 5), signal: ac.signal }),
    ).rejects.toMatchObject({ kind: "cancelled" });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await ls(dir)).toEqual(["existing"]);
    expect(await sb.sh(`cat '${dir}/existing'`)).toBe("keep");
  });

  it("cancels a download midway and frees its channel", async () => {
    const path = `${sb.workDir}/dl-cancel.bin`;
    await upload(sb.registry, sb.id, { path, source: generated(64 << 20) });
    const ac = new AbortController();
    let bytes = 0;
    await expect(
      (async () => {
        for await (const e of download(sb.registry, sb.id, { path, signal: ac.signal })) {
          if (e.type === "data" && (bytes += e.data.length) > 4 << 20) ac.abort();
        }
      })(),
    ).rejects.toMatchObject({ kind: "cancelled" });
    expect(bytes).toBeLessThan(64 << 20);
    for (let i = 0; i < 20 && sb.registry.stats(sb.id).activeChannels > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(sb.registry.stats(sb.id).activeChannels).toBe(0);
  });

  it("creates missing parents on request, else names the missing parent", async () => {
    const path = `${sb.workDir}/a/b c/d/file.txt`;
    await expect(put(path, "x")).rejects.toMatchObject({ kind: "not_found", message: expect.stringContaining(`${sb.workDir}/a/b c/d`) });
    await put(path, "x", { createParents: true });
    expect(await sb.sh(`cat '${path}'`)).toBe("x");
    await sb.sh(`printf f > '${sb.workDir}/plainfile'`);
    await expect(put(`${sb.workDir}/plainfile/x`, "x", { createParents: true })).rejects.toMatchObject({ kind: "failed_precondition" });
  });

  it("sets modes exactly (no umask) and reports them on download", async () => {
    for (const mode of [0o600, 0o755, 0o640, 0o777]) {
      const path = `${sb.workDir}/mode-${mode.toString(8)}`;
      await put(path, "m", { mode });
      expect((await sb.sh(`stat -c %a '${path}'`)).trim()).toBe(mode.toString(8));
      expect((await fetchAll(path)).info).toMatchObject({ mode });
    }
    expect((await sb.sh(`stat -c %a '${sb.workDir}/mismatch/f'`)).trim()).toBe("644"); // default
  });

  it("resumes downloads from an offset", async () => {
    const data = Buffer.concat([...Array(3)].map((_, i) => Buffer.alloc(400_000, i + 1)));
    const path = `${sb.workDir}/resume.bin`;
    await put(path, data);
    const part = await fetchAll(path, 500_000);
    expect(part.info).toMatchObject({ size: data.length, offset: 500_000, length: data.length - 500_000 });
    expect(part.data.equals(data.subarray(500_000))).toBe(true);
    expect(part.done).toEqual({ type: "done", bytes: data.length - 500_000, sha256: sha(data.subarray(500_000)) });
    expect((await fetchAll(path, data.length)).done).toMatchObject({ bytes: 0 });
    await expect(fetchAll(path, data.length + 1)).rejects.toMatchObject({ kind: "invalid_argument", field: "offset" });
    const ranged: Buffer[] = [];
    for await (const e of download(sb.registry, sb.id, { path, offset: 10, length: 5 })) if (e.type === "data") ranged.push(e.data);
    expect(Buffer.concat(ranged)).toEqual(data.subarray(10, 15));
  });

  it("resolves relative paths against the home directory", async () => {
    const rel = sb.workDir.slice(sb.homeDir.length + 1) + "/relative.txt";
    await put(rel, "rel");
    expect(await sb.sh(`cat '${sb.workDir}/relative.txt'`)).toBe("rel");
    expect((await fetchAll(rel)).data.toString()).toBe("rel");
  });

  it("reports missing files, directories and permission problems with typed errors", async () => {
    await expect(fetchAll(`${sb.workDir}/missing`)).rejects.toMatchObject({ kind: "not_found" });
    await expect(fetchAll(sb.workDir)).rejects.toMatchObject({ kind: "failed_precondition", message: expect.stringContaining("directory") });
    await sb.sh(`mkdir '${sb.workDir}/adir'`);
    await expect(put(`${sb.workDir}/adir`, "x")).rejects.toMatchObject({ kind: "failed_precondition" });
    await sb.sh(`printf secret > '${sb.workDir}/locked' && chmod 000 '${sb.workDir}/locked'`);
    await expect(fetchAll(`${sb.workDir}/locked`)).rejects.toMatchObject({ kind: "permission_denied" });
    await sb.sh(`mkdir '${sb.workDir}/ro' && chmod 555 '${sb.workDir}/ro'`);
    await expect(put(`${sb.workDir}/ro/f`, "x")).rejects.toMatchObject({ kind: "permission_denied" });
    expect(() => download(sb.registry, sb.id, { path: "" })).toThrow(expect.objectContaining({ kind: "invalid_argument" }));
    await expect(upload(sb.registry, sb.id, { path: "a/", source: generated(1) })).rejects.toMatchObject({ kind: "invalid_argument" });
    await expect(upload(sb.registry, sb.id, { path: "x\0y", source: generated(1) })).rejects.toSatisfy((e) => isSandboxError(e, "invalid_argument"));
  });

  it("reports a full disk as resource_exhausted and leaves nothing", async () => {
    // A sandbox of its own with a 1 GiB disk, filled with fallocate to 2 MiB free
    // (below the 4 MiB statvfs bound that confirms ENOSPC).
    const small = await startSpecSandbox({ size: { cores: 1, memoryMiB: 256, diskGiB: 1 } });
    try {
      const dir = `${small.workDir}/full`;
      const avail = async () => Number((await small.sh(`df -B1 --output=avail '${dir}' | tail -1`)).trim());
      await small.sh(`mkdir '${dir}'`);
      await small.sh(`fallocate -l ${(await avail()) - (2 << 20)} '${small.workDir}/filler'`);
      const before = await avail();
      expect(before).toBeLessThan(4 << 20);
      expect(before).toBeGreaterThan(64 << 10);
      await expect(upload(small.registry, small.id, { path: `${dir}/big`, source: generated(8 << 20) })).rejects.toMatchObject({
        kind: "resource_exhausted",
      });
      expect(await ls(dir, small)).toEqual([]);
      expect(await avail()).toBe(before); // the temp file's blocks are freed
      await put(`${dir}/small`, "fits", {}, small); // space is back once the temp file is gone
      expect(await small.sh(`cat '${dir}/small'`)).toBe("fits");
    } finally {
      await small.stop();
    }
  });
});
