import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateEd25519 } from "../providers/local/keys.js";
import { execCollect } from "./exec-collect.js";
import { SessionRegistry } from "./session-registry.js";
import { startSpecSandbox, type SpecSandbox } from "./spec-sandbox.js";

let sb: SpecSandbox;
beforeAll(async () => {
  sb = await startSpecSandbox();
});
afterAll(async () => {
  await sb?.stop();
});

/** Not ssh2's generator: in ssh2 1.17 it drops a leading zero byte of ~1 ed25519 key in 150 (see keys.ts). */
const otherHostKey = () => generateEd25519().publicKey;

describe("SessionRegistry", () => {
  it("refuses a sandbox whose host key differs from the pinned one", async () => {
    const registry = new SessionRegistry();
    try {
      registry.register("wrong-key", { ...sb.target, hostKey: otherHostKey() });
      await expect(execCollect(registry, "wrong-key", { argv: ["true"] })).rejects.toMatchObject({
        kind: "failed_precondition",
        message: expect.stringMatching(/host key mismatch.*SHA256:.*refusing/),
      });
      expect(registry.stats("wrong-key").connections).toBe(0);
      // A malformed pinned key is refused before any connection attempt.
      registry.register("bad-key", { ...sb.target, hostKey: "ssh-ed25519 not-base64!" });
      await expect(execCollect(registry, "bad-key", { argv: ["true"] })).rejects.toMatchObject({ kind: "failed_precondition" });
    } finally {
      await registry.closeAll();
    }
  });

  it("accepts the pinned key in known_hosts form too", async () => {
    const registry = new SessionRegistry();
    try {
      registry.register("kh", { ...sb.target, hostKey: `[${sb.target.host}]:${sb.target.port} ${sb.target.hostKey}` });
      expect((await execCollect(registry, "kh", { argv: ["true"] })).exitCode).toBe(0);
    } finally {
      await registry.closeAll();
    }
  });

  it("fails unknown sandboxes with not_found, and resolves through the callback", async () => {
    const registry = new SessionRegistry({ resolve: async (id) => (id === "via-resolver" ? sb.target : undefined) });
    try {
      await expect(execCollect(registry, "nope", { argv: ["true"] })).rejects.toMatchObject({ kind: "not_found" });
      expect((await execCollect(registry, "via-resolver", { argv: ["true"] })).exitCode).toBe(0);
    } finally {
      await registry.closeAll();
    }
  });

  it("fails with unavailable when sshd is unreachable", async () => {
    const registry = new SessionRegistry();
    try {
      registry.register("down", { ...sb.target, port: 1 });
      await expect(execCollect(registry, "down", { argv: ["true"] })).rejects.toMatchObject({ kind: "unavailable" });
    } finally {
      await registry.closeAll();
    }
  });

  it("replaces a dropped connection", async () => {
    expect((await sb.run("true")).exitCode).toBe(0);
    // Kill the sshd process serving this connection (the session's parent): the TCP connection drops.
    await expect(sb.run("kill -KILL $PPID; sleep 5")).rejects.toMatchObject({ kind: "unavailable" });
    for (let i = 0; i < 3; i++) expect((await sb.run("echo again")).stdout.toString()).toBe("again\n");
    expect(sb.registry.stats(sb.id).connections).toBeGreaterThanOrEqual(1);
  });

  it("limits concurrent handshakes and packs channels into few connections", async () => {
    const registry = new SessionRegistry({ maxConcurrentHandshakes: 2, channelsPerConnection: 5, reservedChannels: 1 });
    try {
      registry.register("burst", sb.target);
      let maxConnecting = 0;
      const timer = setInterval(() => (maxConnecting = Math.max(maxConnecting, registry.stats("burst").connecting)), 1);
      const results = await Promise.all(
        Array.from({ length: 40 }, () => execCollect(registry, "burst", { shell: "sleep 0.2" })),
      );
      clearInterval(timer);
      expect(results.every((r) => r.exitCode === 0)).toBe(true);
      expect(maxConnecting).toBeLessThanOrEqual(2);
      // 40 commands at 4 channels per connection: at most 10 connections (16 allowed).
      expect(registry.stats("burst").connections).toBeLessThanOrEqual(10);
    } finally {
      await registry.closeAll();
    }
  });

  it("queues beyond the connection limit, and close(id) ends everything", async () => {
    const registry = new SessionRegistry({ maxConnectionsPerSandbox: 1 });
    registry.register("one", sb.target);
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 18 }, () => execCollect(registry, "one", { shell: "sleep 0.3" })));
    expect(results.every((r) => r.exitCode === 0)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600); // 9 slots: two rounds
    expect(registry.stats("one").connections).toBe(1);

    const running = execCollect(registry, "one", { shell: "sleep 30" });
    await new Promise((r) => setTimeout(r, 300));
    await registry.close("one");
    expect(registry.stats("one").connections).toBe(0);
    await expect(running).rejects.toMatchObject({ kind: "unavailable" });
    await expect(execCollect(registry, "one", { argv: ["true"] })).rejects.toMatchObject({ kind: "not_found" });
    await registry.closeAll();
    await expect(execCollect(registry, "one", { argv: ["true"] })).rejects.toMatchObject({ kind: "unavailable" });
  });
});
