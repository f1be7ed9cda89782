/**
 * Issue 13 (part): Stat, ListDir, MakeDir, Remove, Move end to end on real
 * sandboxes: every call, its error codes, a 10,000-entry listing streamed in
 * batches, recursive listing and removal, symlinks that point outside the
 * sandbox (the host's /etc/shadow, /proc/1/root, this checkout) never reach
 * host files, and another tenant cannot use them.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileType, SandboxService, type FileInfo } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { mintToken } from "../../server/auth/index.js";
import { TAR_END, tarFile } from "../fixtures/tar.js";
import { collectExec, PROVIDERS, startE2E, type E2E, type LogLines, type SandboxClient } from "./harness.js";

const N = 27;
const N_TENANTS = 29;
let e: E2E;
let id: string;
const logs: LogLines = [];

const sh = async (script: string) => {
  const r = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value: script } }));
  return r.stdout;
};

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

async function list(client: SandboxClient, p: string, depth = 0): Promise<{ batches: number[]; entries: FileInfo[] }> {
  const batches: number[] = [];
  const entries: FileInfo[] = [];
  for await (const m of client.listDir({ sandboxId: id, path: p, depth })) {
    batches.push(m.entries.length);
    entries.push(...m.entries);
  }
  return { batches, entries };
}

const code = async (p: Promise<unknown>) => (await failure(p)).code;

// Host files that symlinks in the sandbox name; they must stay as they are.
const hostDir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-files-rpc-host-"));
const hostFile = path.join(hostDir, "precious.txt");
fs.writeFileSync(hostFile, "host data\n");
const cwdMarker = path.join(process.cwd(), "package.json");
const hostSnapshot = () => ({
  file: fs.readFileSync(hostFile, "utf8"),
  dir: fs.readdirSync(hostDir).sort(),
  cwd: fs.readFileSync(cwdMarker, "utf8"),
  shadow: fs.statSync("/etc/shadow").mtimeMs,
});
afterAll(() => fs.rmSync(hostDir, { recursive: true, force: true }));

describe.each(PROVIDERS)("file RPCs (%s)", (provider) => {
  beforeAll(async () => {
    e = await startE2E(N, {}, provider, logs);
    id = (await e.grpc.createSandbox({})).sandbox!.id;
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("Stat: files, directories, symlinks (followed or not), over gRPC and Connect HTTP/1.1", async () => {
    await sh("mkdir -p locked && chmod 000 locked && mkdir -p st && printf hello > st/f && chmod 640 st/f && ln -sfn f st/l && ln -sfn nowhere st/dangling && mkfifo st/fifo");
    for (const client of [e.grpc, e.connect1]) {
      const f = (await client.stat({ sandboxId: id, path: "st/f" })).info!;
      expect(f).toMatchObject({ name: "f", path: "st/f", type: FileType.FILE, size: 5n, mode: 0o640, symlinkTarget: "" });
      const uid = Number((await sh("id -u")).trim());
      expect(f.uid).toBe(uid);
      expect(Math.abs(Number(f.mtime!.seconds) - Date.now() / 1000)).toBeLessThan(120);
      const abs = (await client.stat({ sandboxId: id, path: "/home/sandbox/st" })).info!;
      expect(abs).toMatchObject({ name: "st", type: FileType.DIRECTORY });
      const l = (await client.stat({ sandboxId: id, path: "st/l" })).info!;
      expect(l).toMatchObject({ type: FileType.SYMLINK, symlinkTarget: "f" });
      const followed = (await client.stat({ sandboxId: id, path: "st/l", followSymlinks: true })).info!;
      expect(followed).toMatchObject({ type: FileType.FILE, size: 5n, symlinkTarget: "" });
      expect((await client.stat({ sandboxId: id, path: "st/dangling" })).info!.type).toBe(FileType.SYMLINK);
      expect(await code(client.stat({ sandboxId: id, path: "st/dangling", followSymlinks: true }))).toBe(Code.NotFound);
      expect((await client.stat({ sandboxId: id, path: "st/fifo" })).info!.type).toBe(FileType.OTHER);
      expect(await code(client.stat({ sandboxId: id, path: "st/missing" }))).toBe(Code.NotFound);
      expect(await code(client.stat({ sandboxId: id, path: "" }))).toBe(Code.InvalidArgument);
      expect(await code(client.stat({ sandboxId: id, path: "st/f\0x" }))).toBe(Code.InvalidArgument);
      expect(await code(client.stat({ sandboxId: id, path: "locked/x" }))).toBe(Code.PermissionDenied);
      expect(await code(client.stat({ sandboxId: "sbx-doesnotexist", path: "st" }))).toBe(Code.NotFound);
    }
  });

  it("ListDir: 10,000 entries stream in batches of at most 1000 with every name, over gRPC and Connect HTTP/1.1", async () => {
    await sh("mkdir -p big && cd big && seq 1 10000 | xargs touch");
    for (const client of [e.grpc, e.connect1]) {
      const { batches, entries } = await list(client, "big");
      expect(batches.length).toBeGreaterThanOrEqual(10);
      expect(Math.max(...batches)).toBeLessThanOrEqual(1000);
      const names = new Set(entries.map((x) => x.name));
      expect(entries.length).toBe(10_000);
      for (let i = 1; i <= 10_000; i++) expect(names.has(String(i))).toBe(true);
      expect(entries[0]!.path).toBe(`big/${entries[0]!.name}`);
      expect(entries.every((x) => x.type === FileType.FILE && x.size === 0n)).toBe(true);
    }
  }, 120_000);

  it("ListDir: recursive depth; symlinked directories listed, not entered; errors", async () => {
    await sh("mkdir -p tree/a/b/c && touch tree/top tree/a/x tree/a/b/y tree/a/b/c/z && ln -sfn /home/sandbox/tree tree/loop");
    const names = async (depth: number) => (await list(e.grpc, "tree", depth)).entries.map((x) => x.path).sort();
    expect(await names(0)).toEqual(["tree/a", "tree/loop", "tree/top"]);
    expect(await names(1)).toEqual(["tree/a", "tree/loop", "tree/top"]);
    expect(await names(2)).toEqual(["tree/a", "tree/a/b", "tree/a/x", "tree/loop", "tree/top"]);
    expect(await names(10)).toEqual(["tree/a", "tree/a/b", "tree/a/b/c", "tree/a/b/c/z", "tree/a/b/y", "tree/a/x", "tree/loop", "tree/top"]);
    const loop = (await list(e.grpc, "tree")).entries.find((x) => x.name === "loop")!;
    expect(loop).toMatchObject({ type: FileType.SYMLINK, symlinkTarget: "/home/sandbox/tree" });
    expect(await code(list(e.grpc, "tree/missing"))).toBe(Code.NotFound);
    expect(await code(list(e.grpc, "tree/top"))).toBe(Code.FailedPrecondition);
    expect(await code(list(e.grpc, "locked"))).toBe(Code.PermissionDenied);
    expect(await code(list(e.grpc, ""))).toBe(Code.InvalidArgument);
  });

  it("MakeDir: with and without parents, mode, errors", async () => {
    await e.grpc.makeDir({ sandboxId: id, path: "mk" });
    expect((await e.grpc.stat({ sandboxId: id, path: "mk" })).info).toMatchObject({ type: FileType.DIRECTORY, mode: 0o755 });
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "mk" }))).toBe(Code.AlreadyExists);
    await e.grpc.makeDir({ sandboxId: id, path: "mk", parents: true }); // existing + parents: fine
    await e.grpc.makeDir({ sandboxId: id, path: "/home/sandbox/mk/p/q/r", parents: true, mode: 0o700 });
    expect((await e.grpc.stat({ sandboxId: id, path: "mk/p/q/r" })).info).toMatchObject({ type: FileType.DIRECTORY, mode: 0o700 });
    await e.grpc.makeDir({ sandboxId: id, path: "mk/open", mode: 0o777 }); // not cut by the umask
    expect((await e.grpc.stat({ sandboxId: id, path: "mk/open" })).info!.mode).toBe(0o777);
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "mk/none/x" }))).toBe(Code.NotFound);
    await sh("touch mk/file");
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "mk/file" }))).toBe(Code.AlreadyExists);
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "mk/file", parents: true }))).toBe(Code.AlreadyExists);
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "mk/file/x" }))).toBe(Code.FailedPrecondition);
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "mk/file/x/y", parents: true }))).toBe(Code.FailedPrecondition);
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "locked/x" }))).toBe(Code.PermissionDenied);
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "/etc/x" }))).toBe(Code.FailedPrecondition); // read-only
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "" }))).toBe(Code.InvalidArgument);
    expect(await code(e.grpc.makeDir({ sandboxId: id, path: "a\0b" }))).toBe(Code.InvalidArgument);
  });

  it("Remove: file, empty dir, non-empty dir only with recursive, errors", async () => {
    await sh("mkdir -p rm/empty rm/full/sub && touch rm/f rm/full/sub/x");
    await e.grpc.remove({ sandboxId: id, path: "rm/f" });
    await e.grpc.remove({ sandboxId: id, path: "rm/empty" });
    expect(await code(e.grpc.remove({ sandboxId: id, path: "rm/full" }))).toBe(Code.FailedPrecondition);
    expect((await sh("ls rm/full/sub")).trim()).toBe("x");
    await e.grpc.remove({ sandboxId: id, path: "rm/full", recursive: true });
    expect((await sh("ls -A rm")).trim()).toBe("");
    expect(await code(e.grpc.remove({ sandboxId: id, path: "rm/missing" }))).toBe(Code.NotFound);
    expect(await code(e.grpc.remove({ sandboxId: id, path: "locked/x" }))).toBe(Code.PermissionDenied);
    expect(await code(e.grpc.remove({ sandboxId: id, path: "/etc/hostname" }))).toBeOneOf([Code.PermissionDenied, Code.FailedPrecondition]);
    expect(await code(e.grpc.remove({ sandboxId: id, path: "" }))).toBe(Code.InvalidArgument);
  });

  it("Remove recursive: a big tree with symlinks pointing outside; the targets survive", async () => {
    await sh([
      "mkdir -p keep && echo keep > keep/file && mkdir -p rt/d1/d2",
      "for i in $(seq 1 1500); do echo $i > rt/d1/f$i; done",
      "ln -s /home/sandbox/keep rt/to-keep-dir && ln -s /home/sandbox/keep/file rt/d1/d2/to-keep-file",
      `ln -s /etc/shadow rt/shadow && ln -s /proc/1/root rt/proc-root && ln -s ${JSON.stringify(process.cwd())} rt/checkout && ln -s ${JSON.stringify(hostDir)} rt/hostdir`,
    ].join(" && "));
    const before = hostSnapshot();
    await e.grpc.remove({ sandboxId: id, path: "rt", recursive: true });
    expect(await code(e.grpc.stat({ sandboxId: id, path: "rt" }))).toBe(Code.NotFound);
    expect((await sh("cat keep/file")).trim()).toBe("keep");
    expect(hostSnapshot()).toEqual(before);
    // A symlink to a directory removed directly: the link goes, the directory stays.
    await sh("ln -s /home/sandbox/keep keeplink");
    await e.grpc.remove({ sandboxId: id, path: "keeplink", recursive: true });
    expect((await sh("test -L keeplink || echo gone; cat keep/file")).trim()).toBe("gone\nkeep");
  }, 60_000);

  it("Move: rename across directories, refuse an existing target unless overwrite, errors", async () => {
    await sh("mkdir -p mv/a mv/b mv/full/x && echo one > mv/a/one && echo two > mv/b/two && mkdir mv/emptydir");
    await e.grpc.move({ sandboxId: id, from: "mv/a/one", to: "/home/sandbox/mv/b/one" });
    expect((await sh("cat mv/b/one; test -e mv/a/one || echo gone")).trim()).toBe("one\ngone");
    expect(await code(e.grpc.move({ sandboxId: id, from: "mv/b/one", to: "mv/b/two" }))).toBe(Code.AlreadyExists);
    expect((await sh("cat mv/b/one mv/b/two")).trim()).toBe("one\ntwo");
    await e.grpc.move({ sandboxId: id, from: "mv/b/one", to: "mv/b/two", overwrite: true });
    expect((await sh("cat mv/b/two; test -e mv/b/one || echo gone")).trim()).toBe("one\ngone");
    await e.grpc.move({ sandboxId: id, from: "mv/b", to: "mv/c" }); // a directory
    expect((await sh("ls mv/c")).trim()).toBe("two");
    expect(await code(e.grpc.move({ sandboxId: id, from: "mv/missing", to: "mv/z" }))).toBe(Code.NotFound);
    expect(await code(e.grpc.move({ sandboxId: id, from: "mv/c/two", to: "mv/nodir/two" }))).toBe(Code.NotFound);
    expect(await code(e.grpc.move({ sandboxId: id, from: "mv/c", to: "mv/full", overwrite: true }))).toBe(Code.FailedPrecondition);
    expect(await code(e.grpc.move({ sandboxId: id, from: "mv/c/two", to: "mv/full", overwrite: true }))).toBe(Code.FailedPrecondition);
    await e.grpc.move({ sandboxId: id, from: "mv/c", to: "mv/emptydir", overwrite: true });
    expect((await sh("ls mv/emptydir")).trim()).toBe("two");
    expect(await code(e.grpc.move({ sandboxId: id, from: "/etc/hostname", to: "mv/h" }))).toBe(Code.FailedPrecondition); // read-only
    expect(await code(e.grpc.move({ sandboxId: id, from: "locked/x", to: "mv/h" }))).toBe(Code.PermissionDenied);
    expect(await code(e.grpc.move({ sandboxId: id, from: "", to: "mv/h" }))).toBe(Code.InvalidArgument);
    expect(await code(e.grpc.move({ sandboxId: id, from: "mv/emptydir", to: "" }))).toBe(Code.InvalidArgument);
  });

  it("symlinks to host paths: Stat, ListDir, Remove, Move see the sandbox's own view and never touch host files", async () => {
    const checkout = process.cwd();
    await sh([
      "mkdir -p esc && cd esc",
      `ln -sfn /etc/shadow shadow && ln -sfn /proc/1/root procroot && ln -sfn ${JSON.stringify(checkout)} checkout && ln -sfn ${JSON.stringify(hostDir)} hostdir`,
      `ln -sfn ${JSON.stringify(hostFile)} hostfile`,
    ].join(" && "));
    const before = hostSnapshot();

    // Stat (followed) answers what the sandbox itself sees, whatever that is.
    for (const name of ["shadow", "procroot", "checkout", "hostdir", "hostfile"]) {
      const own = (await sh(`stat -L -c '%F %s' esc/${name} 2>/dev/null || echo none`)).trim();
      const r = await e.grpc.stat({ sandboxId: id, path: `esc/${name}`, followSymlinks: true }).then((x) => x.info!, (err: unknown) => err as ConnectError);
      if (r instanceof ConnectError) {
        expect(own, `${name}: the sandbox cannot stat it either`).toBe("none");
        expect([Code.NotFound, Code.PermissionDenied]).toContain(r.code);
      } else {
        expect(own.split(" ")[1], name).toBe(String(r.size));
      }
      const link = (await e.grpc.stat({ sandboxId: id, path: `esc/${name}` })).info!;
      expect(link.type).toBe(FileType.SYMLINK);
    }
    // The host's temp directory (with its unique name) is not what the sandbox lists.
    expect(await code(e.grpc.stat({ sandboxId: id, path: hostFile }))).toBe(Code.NotFound);
    const procTmp = await list(e.grpc, "esc/procroot/tmp").catch((err: unknown) => err as ConnectError);
    if (procTmp instanceof ConnectError) expect([Code.NotFound, Code.PermissionDenied]).toContain(procTmp.code);
    else expect(procTmp.entries.map((x) => x.name)).not.toContain(path.basename(hostDir));
    // ListDir through the checkout link: the sandbox's view (if any), not this checkout.
    const own = (await sh("ls -A esc/checkout/ 2>/dev/null | sort")).trim();
    const viaLink = await list(e.grpc, "esc/checkout").catch((err: unknown) => err as ConnectError);
    if (viaLink instanceof ConnectError) expect(own).toBe("");
    else expect(viaLink.entries.map((x) => x.name).sort().join("\n")).toBe(own);

    // Move and Remove act on the links themselves.
    await e.grpc.move({ sandboxId: id, from: "esc/hostfile", to: "esc/moved" });
    await sh("echo decoy > esc/decoy");
    await e.grpc.move({ sandboxId: id, from: "esc/decoy", to: "esc/shadow", overwrite: true });
    expect((await sh("cat esc/shadow")).trim()).toBe("decoy");
    await e.grpc.move({ sandboxId: id, from: "esc/moved", to: "esc/hostdir", overwrite: true });
    for (const name of ["procroot", "checkout", "hostdir"]) await e.grpc.remove({ sandboxId: id, path: `esc/${name}`, recursive: true });
    await e.grpc.remove({ sandboxId: id, path: "esc", recursive: true });
    expect(hostSnapshot()).toEqual(before);
  });
});

describe("file RPCs and tenants (local)", () => {
  let t: E2E;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-files-rpc-tokens-"));
  const a = mintToken("team-a", "user", "alice");
  const b = mintToken("team-b", "user", "bob");
  const viewer = mintToken("team-a", "viewer", "vera");
  const file = path.join(dir, "tokens");
  fs.writeFileSync(file, [a.line, b.line, viewer.line].join("\n") + "\n", { mode: 0o600 });
  const bearer = (token: string): Interceptor => (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const as = (token: string): SandboxClient => createClient(SandboxService, createGrpcTransport({ baseUrl: t.baseUrl, interceptors: [bearer(token)] }));

  beforeAll(async () => {
    t = await startE2E(N_TENANTS, { SANDBOXD_AUTH_TOKENS_FILE: file }, "local");
  });
  afterAll(async () => {
    await t?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A one-file archive for `path`. */
  async function* archive(sandboxId: string, path: string) {
    yield { part: { case: "header" as const, value: { sandboxId, path } } };
    yield { part: { case: "data" as const, value: Buffer.concat([tarFile("f", "x"), TAR_END]) } };
  }

  it("another tenant gets NOT_FOUND from every file RPC; a viewer may only read", async () => {
    const alice = as(a.token);
    const sid = (await alice.createSandbox({})).sandbox!.id;
    await alice.makeDir({ sandboxId: sid, path: "mine" });
    expect((await alice.stat({ sandboxId: sid, path: "mine" })).info!.type).toBe(FileType.DIRECTORY);
    const bob = as(b.token);
    const calls: Array<() => Promise<unknown>> = [
      () => bob.stat({ sandboxId: sid, path: "mine" }),
      async () => { for await (const _ of bob.listDir({ sandboxId: sid, path: "." })) void _; },
      () => bob.makeDir({ sandboxId: sid, path: "intruder" }),
      () => bob.remove({ sandboxId: sid, path: "mine", recursive: true }),
      () => bob.move({ sandboxId: sid, from: "mine", to: "theirs" }),
      () => bob.uploadArchive(archive(sid, "intruder")),
      async () => { for await (const _ of bob.downloadArchive({ sandboxId: sid, path: "mine" })) void _; },
    ];
    for (const c of calls) expect(await code(c())).toBe(Code.NotFound);
    const vera = as(viewer.token);
    expect((await vera.stat({ sandboxId: sid, path: "mine" })).info!.type).toBe(FileType.DIRECTORY);
    expect(await code(vera.makeDir({ sandboxId: sid, path: "v" }))).toBe(Code.PermissionDenied);
    expect(await code(vera.remove({ sandboxId: sid, path: "mine" }))).toBe(Code.PermissionDenied);
    expect(await code(vera.uploadArchive(archive(sid, "v")))).toBe(Code.PermissionDenied);
    let done = false;
    for await (const m of vera.downloadArchive({ sandboxId: sid, path: "mine" })) done ||= m.part.case === "done";
    expect(done).toBe(true);
    expect((await alice.stat({ sandboxId: sid, path: "mine" })).info!.type).toBe(FileType.DIRECTORY);
    await alice.destroySandbox({ sandboxId: sid });
  });
});

