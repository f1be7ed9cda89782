/**
 * Attacks on the archive calls from inside a sandbox: symlinks to host
 * paths in a downloaded tree, a target whose parent is a symlink to a host
 * directory, and a "file" that never ends (a sparse 64 GiB file) that a
 * client gives up on. Host files never enter an archive or change, sandboxd's
 * memory stays flat, and the sandbox's tar dies with the call.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TAR_END, tarFile } from "../fixtures/tar.js";
import { collectExec, startE2E, type E2E } from "../e2e/harness.js";

const N = 32;
let e: E2E;
let sandboxId: string;

// A host directory with a file whose content is unique to this run.
const hostDir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-archive-host-"));
const marker = `host-secret-${process.pid}-${Date.now()}`;
fs.writeFileSync(path.join(hostDir, "secret.txt"), `${marker}\n`);
afterAll(() => fs.rmSync(hostDir, { recursive: true, force: true }));

const sh = async (script: string) => {
  const r = await collectExec(e.grpc.exec({ sandboxId, command: { case: "shell", value: script } }));
  return { out: r.stdout, code: r.exited?.exitCode };
};

async function download(p: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of e.grpc.downloadArchive({ sandboxId, path: p })) if (m.part.case === "data") parts.push(Buffer.from(m.part.value));
  return Buffer.concat(parts);
}

beforeAll(async () => {
  e = await startE2E(N);
  sandboxId = (await e.grpc.createSandbox({})).sandbox!.id;
}, 60_000);
afterAll(async () => {
  await e?.stop();
});

describe("archives attacked from inside the sandbox", () => {
  it("symlinks to host files and directories are archived as links: no host byte enters the archive", async () => {
    const links = [path.join(hostDir, "secret.txt"), hostDir, "/etc/shadow", "/proc/1/root", process.cwd()];
    const made = await sh(`mkdir -p loot && cd loot && ${links.map((l, i) => `ln -s ${JSON.stringify(l)} l${i}`).join(" && ")} && ln -s ${JSON.stringify(hostDir)} ../hostlink`);
    expect(made.code).toBe(0);
    const tar = await download("loot");
    expect(tar.includes(Buffer.from(marker))).toBe(false);
    const listing = execFileSync("tar", ["-tv"], { input: tar }).toString();
    for (let i = 0; i < links.length; i++) expect(listing).toContain(`./l${i} -> ${links[i]}`);
    // The path itself a symlink to a host directory: what the sandbox sees there (nothing), never the host's.
    const err = await download("hostlink").then(() => undefined, (x: unknown) => ConnectError.from(x));
    expect(err?.code).toBe(Code.NotFound);
  });

  it("a target below a symlink to a host directory lands in the sandbox's own view (or nowhere), never on the host", async () => {
    const before = fs.readdirSync(hostDir).sort();
    await sh(`ln -sfn ${JSON.stringify(hostDir)} out`);
    const tar = Buffer.concat([tarFile("planted.txt", "owned"), TAR_END]);
    async function* reqs() {
      yield { part: { case: "header" as const, value: { sandboxId, path: "out/x", makeParents: true } } };
      yield { part: { case: "data" as const, value: tar } };
    }
    await e.grpc.uploadArchive(reqs()).catch(() => undefined);
    expect(fs.readdirSync(hostDir).sort()).toEqual(before);
    expect(fs.readFileSync(path.join(hostDir, "secret.txt"), "utf8")).toBe(`${marker}\n`);
  });

  it("a sparse 64 GiB file: the client gives up after 64 MiB, memory stays flat and tar is gone", async () => {
    expect((await sh("mkdir -p huge && truncate -s 64G huge/zeros")).code).toBe(0);
    const rss0 = process.memoryUsage().rss;
    const ac = new AbortController();
    let got = 0;
    for await (const m of e.grpc.downloadArchive({ sandboxId, path: "huge" }, { signal: ac.signal })) {
      if (m.part.case === "data" && (got += m.part.value.length) >= 64 * 2 ** 20) break;
    }
    ac.abort();
    expect(process.memoryUsage().rss - rss0).toBeLessThan(128 * 2 ** 20);
    let left = "";
    for (let i = 0; i < 50; i++) {
      left = (await sh("pgrep -a tar || true")).out;
      if (left === "") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe("");
  });
});
