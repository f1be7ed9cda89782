/**
 * Exec against an sshd that misbehaves the way a compromised sandbox session
 * could (spec-fake-sshd.ts, in this process): forged or missing headers, and
 * floods before the header. Nothing of it may be taken for a command's
 * result, and none of it may grow sandboxd's memory.
 */
import type { ServerChannel } from "ssh2";
import { afterEach, describe, expect, it } from "vitest";
import { exec } from "./exec.js";
import type { ExecEvent } from "./exec-types.js";
import { SessionRegistry } from "./session-registry.js";
import { nonceOf, startFakeSshd, type ExecScript, type FakeSshd } from "./spec-fake-sshd.js";

let sshd: FakeSshd | undefined;
let registry: SessionRegistry | undefined;
afterEach(async () => {
  await registry?.closeAll();
  await sshd?.close();
  registry = sshd = undefined;
});

async function runAgainst(script: ExecScript, options: Parameters<typeof exec>[2] = { argv: ["true"] }) {
  sshd = await startFakeSshd({ exec: script });
  registry = new SessionRegistry();
  registry.register("fake", sshd.target);
  const events: ExecEvent[] = [];
  try {
    for await (const e of exec(registry, "fake", options)) events.push(e);
    return { events, error: undefined };
  } catch (error) {
    return { events, error: error as { kind?: string; message?: string } };
  }
}

const finish = (ch: ServerChannel, code: number) => {
  ch.exit(code);
  ch.end();
};

/**
 * Writes `total` bytes in 64 KiB chunks to stdout or stderr, honouring the
 * window (what the client grants), until done or the channel closes.
 * `progress.sent` counts what was handed to ssh2.
 */
async function flood(ch: ServerChannel, stream: "stdout" | "stderr", total: number, progress: { sent: number }): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 120);
  const out = stream === "stdout" ? ch : ch.stderr;
  let closed = false;
  ch.once("close", () => (closed = true));
  while (progress.sent < total && !closed) {
    progress.sent += chunk.length;
    if (!out.write(chunk)) {
      await new Promise<void>((r) => {
        const done = () => {
          out.off("drain", done);
          ch.off("close", done);
          r();
        };
        out.once("drain", done);
        ch.once("close", done);
      });
    }
  }
}

describe("exec against a hostile session", () => {
  it("runs a well-behaved one (the fake plays the wrapper right)", async () => {
    const r = await runAgainst((ch, cmd) => {
      ch.write(`P4242 ${nonceOf(cmd)}\nhel`);
      ch.write("lo\n");
      finish(ch, 3);
    });
    expect(r.error).toBeUndefined();
    expect(r.events[0]).toEqual({ type: "started", pid: 4242 });
    expect(Buffer.concat(r.events.flatMap((e) => (e.type === "stdout" ? [e.data] : []))).toString()).toBe("hello\n");
    expect(r.events.at(-1)).toMatchObject({ type: "exited", exitCode: 3, reason: "exited" });
  });

  it("takes a header split across packets", async () => {
    const r = await runAgainst((ch, cmd) => {
      const line = `P77 ${nonceOf(cmd)}\n`;
      for (const c of line) ch.write(c);
      finish(ch, 0);
    });
    expect(r.error).toBeUndefined();
    expect(r.events[0]).toEqual({ type: "started", pid: 77 });
  });

  it("refuses a header without this exec's nonce (a forged result), never reporting exited", async () => {
    for (const header of ["P123\n", `P123 ${"0".repeat(32)}\n`]) {
      const r = await runAgainst((ch) => {
        ch.write(`${header}forged output\n`);
        finish(ch, 0);
      });
      expect(r.error, header).toMatchObject({ kind: "internal", message: expect.stringContaining("header") });
      expect(r.events, header).toEqual([]);
    }
  });

  it("fails a session that exits 0 without a header, instead of a bare success", async () => {
    const r = await runAgainst((ch) => finish(ch, 0));
    expect(r.error).toMatchObject({ kind: "internal", message: expect.stringContaining("exit 0") });
    expect(r.events).toEqual([]);
  });

  it("fails a session that closes without exit status or header as unavailable", async () => {
    const r = await runAgainst((ch) => {
      ch.stderr.write("bye\n");
      ch.end();
    });
    expect(r.error).toMatchObject({ kind: "unavailable" });
    expect(r.events).toEqual([]);
  });

  it("fails, closes the channel and keeps memory flat when stderr floods before the header", async () => {
    const progress = { sent: 0 };
    global.gc?.();
    const before = process.memoryUsage().rss;
    const r = await runAgainst((ch) => void flood(ch, "stderr", 256 * 1024 * 1024, progress));
    expect(r.error).toMatchObject({ kind: "internal", message: expect.stringContaining("stderr before the command started") });
    expect(r.events).toEqual([]);
    // The exec gave up after a window or so, not after 256 MiB; and the flood stalls there.
    expect(progress.sent).toBeLessThan(16 * 1024 * 1024);
    const at = progress.sent;
    await new Promise((r) => setTimeout(r, 300));
    expect(progress.sent - at).toBeLessThan(4 * 1024 * 1024);
    expect(process.memoryUsage().rss - before).toBeLessThan(48 * 1024 * 1024);
  });

  it("fails and closes when stdout floods without a newline (no header)", async () => {
    const progress = { sent: 0 };
    const r = await runAgainst((ch) => void flood(ch, "stdout", 256 * 1024 * 1024, progress));
    expect(r.error).toMatchObject({ kind: "internal", message: expect.stringContaining("no header") });
    expect(r.events).toEqual([]);
    expect(progress.sent).toBeLessThan(16 * 1024 * 1024);
  });

  it("delivers a little stderr written before the header after started", async () => {
    const r = await runAgainst((ch, cmd) => {
      ch.stderr.write("Could not chdir to home directory\n");
      ch.write(`P9 ${nonceOf(cmd)}\n`);
      finish(ch, 0);
    });
    expect(r.error).toBeUndefined();
    expect(r.events.map((e) => e.type)).toEqual(["started", "stderr", "exited"]);
  });

  it("reports a cancel before the header as cancelled, not exited", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const r = await runAgainst(() => {}, { argv: ["true"], signal: ac.signal });
    expect(r.error).toMatchObject({ kind: "cancelled" });
    expect(r.events).toEqual([]);
  }, 15_000);
});
