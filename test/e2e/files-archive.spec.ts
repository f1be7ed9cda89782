/**
 * Issue 13 (archives): UploadArchive and DownloadArchive end to end on real
 * sandboxes. 10,000 small files round-trip byte-identical with modes,
 * symlinks and hard links (tar and tar.gz); hostile archives (`..`, absolute
 * paths, symlink tricks, devices) are refused and leave nothing; a cut-off or
 * cancelled upload leaves nothing; replace swaps a tree; a full disk is
 * RESOURCE_EXHAUSTED; a download streams with flat memory.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveFormat } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UploadArchiveRequestSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { paxHeader, TAR_END, tarData, tarFile, tarHeader } from "../fixtures/tar.js";
import { collectExec, PROVIDERS, startE2E, type E2E, type SandboxClient } from "./harness.js";

const N = 20;
let e: E2E;
let id: string;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-archive-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const sh = async (script: string) => {
  const r = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value: script } }));
  if (r.exited?.exitCode !== 0) throw new Error(`${script}: exit ${r.exited?.exitCode}: ${r.stderr}`);
  return r.stdout;
};

type Req = MessageInitShape<typeof UploadArchiveRequestSchema>;
interface Header { path: string; format?: ArchiveFormat; replace?: boolean; makeParents?: boolean }
async function* requests(header: Header, bytes: Buffer, chunk = 1 << 20): AsyncGenerator<Req> {
  yield { part: { case: "header", value: { sandboxId: id, ...header } } };
  for (let i = 0; i < bytes.length; i += chunk) yield { part: { case: "data", value: bytes.subarray(i, i + chunk) } };
}

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

async function download(client: SandboxClient, p: string, format = ArchiveFormat.TAR) {
  const parts: Buffer[] = [];
  let done: { bytes: bigint; sha256: string; entries: bigint } | undefined;
  for await (const m of client.downloadArchive({ sandboxId: id, path: p, format })) {
    if (m.part.case === "data") parts.push(Buffer.from(m.part.value));
    else if (m.part.case === "done") done = m.part.value;
  }
  return { bytes: Buffer.concat(parts), done };
}

/** Paths, types, modes, sizes, link targets, and every file's sha256: what "byte-identical with modes" means. */
function describeTree(dir: string): string {
  const meta = execFileSync("find", [".", "-mindepth", "1", "-printf", "%P %y %m %s %l\\n"], { cwd: dir }).toString().split("\n").filter((l) => l);
  // A directory's size is the file system's business, not the archive's.
  const dirsNoSize = meta.map((l) => l.replace(/^(\S+ d \d+) \d+ /, "$1 - ")).sort().join("\n");
  const sums = execFileSync("sh", ["-c", "find . -type f -print0 | sort -z | xargs -0 -r sha256sum"], { cwd: dir, maxBuffer: 64 << 20 }).toString();
  return `${dirsNoSize}\n${sums}`;
}

/** What the sandbox holds at `p`, described the same way. */
const describeInSandbox = (p: string) =>
  sh(`cd ${p} && find . -mindepth 1 -printf '%P %y %m %s %l\\n' | sed -E 's/^([^ ]+ d [0-7]+) [0-9]+ /\\1 - /' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum`);

/** No staging or swapped-out directory of sandboxd's left in `dir`. */
const leftovers = async (dir: string) => (await sh(`ls -a ${dir}`)).split("\n").filter((n) => n.includes("sandboxd-archive"));

// 10,000 small files in 100 directories, with varied modes, a few symlinks and a hard link.
const src = path.join(work, "src");
beforeAll(() => {
  for (let d = 0; d < 100; d++) {
    const dir = path.join(src, `d${String(d).padStart(2, "0")}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 100; f++) {
      const file = path.join(dir, `f${f}.txt`);
      fs.writeFileSync(file, f === 0 ? "" : `file ${d}/${f} ${"x".repeat((d * 7 + f) % 300)}\n`);
      fs.chmodSync(file, [0o644, 0o600, 0o755, 0o640, 0o700][f % 5]!);
    }
    if (d % 10 === 0) fs.chmodSync(dir, 0o750);
  }
  fs.symlinkSync("d01/f1.txt", path.join(src, "link-to-file"));
  fs.symlinkSync("d02", path.join(src, "link-to-dir"));
  fs.symlinkSync("/etc/hostname", path.join(src, "absolute-link"));
  fs.linkSync(path.join(src, "d03/f3.txt"), path.join(src, "hard.txt"));
  fs.chmodSync(src, 0o755);
});

describe.each(PROVIDERS)("archives (%s)", (provider) => {
  beforeAll(async () => {
    e = await startE2E(N, {}, provider);
    id = (await e.grpc.createSandbox({})).sandbox!.id;
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("10,000 files round-trip byte-identical with modes, symlinks and a hard link (tar, then tar.gz)", async () => {
    const want = describeTree(src);
    for (const [format, name] of [[ArchiveFormat.TAR, "proj"], [ArchiveFormat.TAR_GZIP, "projgz"]] as const) {
      const tar = execFileSync("tar", ["-c", ...(format === ArchiveFormat.TAR_GZIP ? ["-z"] : []), "-C", src, "."], { maxBuffer: 256 << 20 });
      const r = await e.grpc.uploadArchive(requests({ path: name, format }, tar));
      expect(r).toMatchObject({ archiveBytes: BigInt(tar.length), entries: 10_105n });
      expect(await describeInSandbox(name)).toBe(want);
      // And back: the tar from the sandbox unpacks on the host into the same tree.
      const got = await download(e.grpc, name, format);
      expect(got.done).toMatchObject({ bytes: BigInt(got.bytes.length), sha256: createHash("sha256").update(got.bytes).digest("hex"), entries: 10_105n });
      const out = path.join(work, `out-${name}-${provider}`);
      fs.mkdirSync(out);
      execFileSync("tar", ["-x", "-p", "--no-same-owner", ...(format === ArchiveFormat.TAR_GZIP ? ["-z"] : []), "-C", out], { input: got.bytes, maxBuffer: 256 << 20 });
      expect(describeTree(out)).toBe(want);
      if (format === ArchiveFormat.TAR_GZIP) expect(got.bytes.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    }
    expect(await leftovers(".")).toEqual([]);
  });

  it("DownloadArchive over Connect (HTTP/1.1): the same bytes as over gRPC", async () => {
    await sh("mkdir -p small/a && echo one > small/a/1 && echo two > small/2");
    const a = await download(e.grpc, "small");
    const b = await download(e.connect1, "small");
    expect(b.done?.sha256).toBe(createHash("sha256").update(b.bytes).digest("hex"));
    expect(b.done?.entries).toBe(a.done?.entries);
    expect(execFileSync("tar", ["-t"], { input: b.bytes }).toString().split("\n").sort()).toEqual(["", "./", "./2", "./a/", "./a/1"]);
  });

  it.each([
    ["a ../ entry", () => [tarFile("ok.txt", "fine"), tarFile("../escaped.txt", "owned")]],
    ["an absolute path", () => [tarFile("ok.txt", "fine"), tarFile("/tmp/escaped.txt", "owned")]],
    ["a path through a symlink the archive made", () => [tarHeader("ln", "2", 0, "/tmp"), tarFile("ln/escaped.txt", "owned")]],
    ["a path through a symlink to .. the archive made", () => [tarHeader("up", "2", 0, ".."), tarFile("up/escaped.txt", "owned")]],
    ["a hard link to a file outside", () => [tarHeader("h", "1", 0, "../victim.txt")]],
    ["a pax path with ..", () => [paxHeader("path", "../escaped.txt"), tarFile("innocent.txt", "owned")]],
    ["a device node", () => [tarHeader("null", "3")]],
    ["a FIFO", () => [tarHeader("fifo", "6")]],
  ])("refuses %s with INVALID_ARGUMENT, leaving nothing", async (_what, entries) => {
    await sh("echo victim > victim.txt && rm -f escaped.txt /tmp/escaped.txt");
    const tar = Buffer.concat([...entries(), TAR_END]);
    const err = await failure(e.grpc.uploadArchive(requests({ path: "evil/target", makeParents: true }, tar)));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toMatch(/refused/);
    expect(await sh("ls -a evil; cat victim.txt; ls /tmp/escaped.txt escaped.txt 2>&1 || true")).toMatch(/^\.\n\.\.\nvictim\n.*No such file.*\n.*No such file/);
  });

  it("a cut-off upload leaves nothing: cancelled mid-stream, ended mid-entry, ended without the end marker, broken gzip", async () => {
    const tar = execFileSync("tar", ["-c", "-C", src, "d00", "d01", "d02"]);
    // Cancelled by the client after some data went in.
    const ac = new AbortController();
    async function* slow(): AsyncGenerator<Req> {
      yield { part: { case: "header", value: { sandboxId: id, path: "cut" } } };
      yield { part: { case: "data", value: tar.subarray(0, 100_000) } };
      await new Promise((r) => setTimeout(r, 300));
      ac.abort();
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect((await failure(e.grpc.uploadArchive(slow(), { signal: ac.signal }))).code).toBe(Code.Canceled);
    // Cleanly ended streams that are not whole archives.
    const cases: Array<[Buffer, ArchiveFormat, RegExp]> = [
      [tar.subarray(0, 100_000 + 100), ArchiveFormat.TAR, /middle of an entry/],
      [Buffer.concat([tarFile("a.txt", "a"), tarFile("b.txt", "b")]), ArchiveFormat.TAR, /without tar's end-of-archive marker/],
      [execFileSync("gzip", ["-c"], { input: tar }).subarray(0, 5000), ArchiveFormat.TAR_GZIP, /gzip|cut off|middle/],
      [Buffer.from("this is not a tar archive at all, just text that is long enough to fill a block".repeat(10)), ArchiveFormat.TAR, /not a tar/],
    ];
    for (const [bytes, format, message] of cases) {
      const err = await failure(e.grpc.uploadArchive(requests({ path: "cut", format }, bytes, 7000)));
      expect(err.code, err.rawMessage).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(message);
    }
    // Give the cancelled call's clean-up a moment (it runs after the client went away).
    for (let i = 0; i < 50 && (await leftovers(".")).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await sh("ls -a")).not.toMatch(/^cut$/m);
    expect(await leftovers(".")).toEqual([]);
  });

  it("an existing target: ALREADY_EXISTS, untouched; with replace the new tree is swapped in whole", async () => {
    await sh("mkdir -p keep && echo old > keep/old.txt");
    const tar = Buffer.concat([tarHeader("./", "5", 0, "", 0o755), tarFile("new.txt", "new"), TAR_END]);
    expect((await failure(e.grpc.uploadArchive(requests({ path: "keep" }, tar)))).code).toBe(Code.AlreadyExists);
    expect(await sh("ls keep")).toBe("old.txt\n");
    expect(await e.grpc.uploadArchive(requests({ path: "keep", replace: true }, tar))).toMatchObject({ entries: 2n, fileBytes: 3n });
    expect(await sh("ls keep; cat keep/new.txt")).toBe("new.txt\nnew");
    // A refused archive with replace leaves the old tree as it was.
    const bad = Buffer.concat([tarFile("x", "x"), tarFile("../y", "y"), TAR_END]);
    expect((await failure(e.grpc.uploadArchive(requests({ path: "keep", replace: true }, bad)))).code).toBe(Code.InvalidArgument);
    expect(await sh("ls keep")).toBe("new.txt\n");
    expect(await leftovers(".")).toEqual([]);
  });

  it("errors: missing parent, not a directory, missing tar target, permission, unknown format, empty path", async () => {
    const tar = Buffer.concat([tarFile("f", "f"), TAR_END]);
    expect((await failure(e.grpc.uploadArchive(requests({ path: "no/such/parent/t" }, tar)))).code).toBe(Code.NotFound);
    expect(await e.grpc.uploadArchive(requests({ path: "made/parents/t", makeParents: true }, tar))).toMatchObject({ entries: 1n });
    await sh("echo file > plain && mkdir -p ro && chmod 555 ro && mkdir -p secret/inner && echo s > secret/inner/s && chmod 000 secret/inner/s");
    expect((await failure(e.grpc.uploadArchive(requests({ path: "plain/t" }, tar)))).code).toBe(Code.FailedPrecondition);
    expect((await failure(e.grpc.uploadArchive(requests({ path: "ro/t" }, tar)))).code).toBe(Code.PermissionDenied);
    expect((await failure(e.grpc.uploadArchive(requests({ path: "" }, tar)))).code).toBe(Code.InvalidArgument);
    expect((await failure(e.grpc.uploadArchive(requests({ path: "x", format: 9 as ArchiveFormat }, tar)))).code).toBe(Code.InvalidArgument);
    expect((await failure(download(e.grpc, "no-such-dir"))).code).toBe(Code.NotFound);
    expect((await failure(download(e.grpc, "plain"))).code).toBe(Code.FailedPrecondition);
    // An unreadable file: the stream ends with PERMISSION_DENIED, never a `done`.
    const err = await failure(download(e.grpc, "secret"));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toMatch(/Permission denied/);
    await sh("chmod 755 ro; chmod 644 secret/inner/s");
  });

  it("a full disk is RESOURCE_EXHAUSTED and leaves nothing", async () => {
    // Fill the sandbox's disk but for ~2 MiB, then unpack an 8 MiB file.
    await sh("avail=$(df -k --output=avail ~ | tail -1); fallocate -l $(( (avail - 2048) * 1024 )) ~/filler");
    try {
      const big = Buffer.concat([tarHeader("big.bin", "0", 8 << 20), Buffer.alloc(8 << 20, 7), TAR_END]);
      const err = await failure(e.grpc.uploadArchive(requests({ path: "full" }, big)));
      expect(err.code, err.rawMessage).toBe(Code.ResourceExhausted);
      expect(await leftovers(".")).toEqual([]);
      expect(await sh("ls -a")).not.toMatch(/^full$/m);
    } finally {
      await sh("rm -f ~/filler");
    }
  });

  it("a large download streams with flat memory at the client's pace", async () => {
    const size = 200_000_000;
    await sh(`mkdir -p bigdir && head -c ${size} /dev/urandom > bigdir/blob`);
    const want = (await sh("sha256sum bigdir/blob")).split(" ")[0];
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const h = createHash("sha256");
    // The blob's bytes follow two header blocks ("./" and "./blob").
    const start = 1024;
    let at = 0;
    let n = 0;
    for await (const m of e.grpc.downloadArchive({ sandboxId: id, path: "bigdir" })) {
      if (m.part.case !== "data") continue;
      // Read slowly at first: sandboxd must hold back, not buffer the directory.
      if (n++ < 20) await new Promise((r) => setTimeout(r, 50));
      const chunk = m.part.value;
      const from = Math.max(0, start - at);
      const to = Math.min(chunk.length, start + size - at);
      if (to > from) h.update(chunk.subarray(from, to));
      at += chunk.length;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    console.log(`[archive] ${size / 1e6} MB download: rss peak +${((peak - rss0) / 2 ** 20).toFixed(1)} MiB`);
    expect(h.digest("hex")).toBe(want);
    expect(peak - rss0).toBeLessThan(150 * 2 ** 20);
    await sh("rm -rf bigdir");
  });
});
