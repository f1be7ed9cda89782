/**
 * LocalRuntime against the real host (root): create → SSH, pinning, files,
 * disk bound, validation, destroy leaving nothing, concurrency.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSandboxError } from "../../errors.js";
import type { SandboxHandle, SandboxSpec } from "../provider.js";
import { generateEd25519 } from "./keys.js";
import { LocalRuntime } from "./runtime.js";
import { connect, exec, sshExec } from "./testing.js";
import { instanceLeftovers, leftovers, NOTHING } from "./testing-host.js";

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({ cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: {}, ...over });

describe("LocalRuntime", () => {
  const rt = new LocalRuntime({ instance: "sandboxd-t-rt", subnet: "198.18.201.0/24", limits: { maxDiskGiB: 4 } });
  const made: SandboxHandle[] = [];
  const create = async (over: Partial<SandboxSpec> = {}) => {
    const h = await rt.create(spec(over));
    made.push(h);
    return h;
  };

  beforeAll(async () => {
    await rt.start(); // also removes leftovers of an earlier, killed run of this instance
  });

  afterAll(async () => {
    await Promise.allSettled(made.map((h) => rt.destroy(h.id)));
    await rt.purge();
    expect(await instanceLeftovers(rt)).toEqual([]);
  });

  it("creates a sandbox reachable over SSH as user sandbox, with a pinned host key", async () => {
    const t0 = performance.now();
    const h = await create({ labels: { team: "core", "app.kubernetes.io/name": "x y" } });
    const ms = performance.now() - t0;
    console.log(`[local] create→ready (first sandbox): ${ms.toFixed(0)} ms`);
    expect(h.id).toMatch(/^sbx-[a-z0-9]{10}$/);
    expect(h.state).toBe("running");
    expect(h.address).toMatch(/^198\.18\.201\.\d+$/);
    expect(h.ssh).toMatchObject({ host: h.address, port: 22, username: "sandbox" });
    expect(h.ssh.hostKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    expect(h.spec.labels).toEqual({ team: "core", "app.kubernetes.io/name": "x y" });
    const r = await sshExec(h.ssh, "id -un; hostname; echo $$; ps -o pgid= -p $$; ps -o sid= -p $$");
    expect(r.code).toBe(0);
    const [user, host, pid, pgid, sid] = r.stdout.trim().split("\n").map((s) => s.trim());
    expect(user).toBe("sandbox");
    expect(host).toBe(h.id);
    // The printed $$ is a process-group and session leader: kill -- -$$ reaches the whole command.
    expect(pgid).toBe(pid);
    expect(sid).toBe(pid);
    expect(await rt.get(h.id)).toMatchObject({ id: h.id, address: h.address });
    expect((await rt.list()).map((x) => x.id)).toContain(h.id);
  });

  it("measures create→ready (and destroy) over 10 sequential creates of the smallest sandbox", async () => {
    const times: number[] = [];
    const destroys: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const h = await rt.create(spec({ memoryMiB: 64 }));
      times.push(performance.now() - t0);
      expect((await sshExec(h.ssh, "echo up")).stdout).toBe("up\n");
      const t1 = performance.now();
      await rt.destroy(h.id);
      destroys.push(performance.now() - t1);
    }
    const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!.toFixed(0);
    console.log(`[local] create→ready ms over 10: p50 ${pct(times, 0.5)}, p90 ${pct(times, 0.9)}, max ${pct(times, 1)} (all: ${times.map((t) => t.toFixed(0)).join(" ")})`);
    console.log(`[local] destroy ms over 10: p50 ${pct(destroys, 0.5)}, max ${pct(destroys, 1)}`);
  });

  it("refuses a wrong pinned host key and any client key but the runtime's", async () => {
    const h = made[0]!;
    await expect(sshExec(h.ssh, "true", { hostKey: generateEd25519().publicKey })).rejects.toThrow();
    await expect(sshExec(h.ssh, "true", { privateKey: generateEd25519().privateKey })).rejects.toThrow(/authentication/i);
    expect((await sshExec(h.ssh, "true")).code).toBe(0);
  });

  it("gives a private writable home and /tmp on a read-only host root", async () => {
    const h = made[0]!;
    const r = await sshExec(
      h.ssh,
      "stat -c '%U %a' /home/sandbox; echo hi > /home/sandbox/f && cat /home/sandbox/f; echo t > /tmp/f && cat /tmp/f; " +
        "touch /etc/sbx 2>&1; touch /usr/sbx 2>&1; ls /var/lib/sandboxd 2>&1; echo $HOME; pwd; " +
        "echo s > /dev/shm/f && echo shm-ok; env | grep -c SSH_ORIGINAL_COMMAND",
    );
    expect(r.stdout).toMatch(/shm-ok\n0\n$/);
    expect(r.stdout).toContain("sandbox 755\nhi\nt\n");
    expect(r.stdout).toMatch(/\/etc\/sbx.*Read-only file system/);
    expect(r.stdout).toMatch(/\/usr\/sbx.*Read-only file system/);
    expect(r.stdout).toMatch(/Permission denied|No such file/);
    expect(r.stdout).toContain("/home/sandbox\n/home/sandbox\n");
  });

  it("keeps each sandbox's files to itself", async () => {
    const [a, b] = [made[0]!, await create()];
    expect((await sshExec(a.ssh, "echo secret > /home/sandbox/only-a && echo secret > /tmp/only-a")).code).toBe(0);
    const r = await sshExec(b.ssh, "ls /home/sandbox /tmp; cat /home/sandbox/only-a /tmp/only-a 2>&1; ls /proc | grep -c '^[0-9]'");
    expect(r.stdout).not.toContain("secret");
    expect(r.stdout).toContain("No such file");
    // Its own pid namespace: only bwrap, sshd, the session and its children.
    expect(Number(r.stdout.trim().split("\n").pop())).toBeLessThan(12);
  });

  it("bounds the writable space by the disk size (ENOSPC)", async () => {
    const h = made[0]!;
    const r = await sshExec(h.ssh, "dd if=/dev/zero of=/home/sandbox/big bs=1M count=1200 2>&1; echo rc=$?; df -m /home | tail -1", { timeoutMs: 120_000 });
    expect(r.stdout).toContain("No space left on device");
    expect(r.stdout).not.toContain("rc=0");
    const after = await sshExec(h.ssh, "rm /home/sandbox/big && echo ok > /tmp/again && cat /tmp/again");
    expect(after.stdout).toBe("ok\n");
  });

  it("runs sessions in the user cgroup, sftp included", async () => {
    const h = made[0]!;
    const r = await sshExec(h.ssh, "grep -E ':(pids|memory):|^0::' /proc/self/cgroup");
    expect(r.stdout).toMatch(new RegExp(`/sandboxd-t-rt/${h.id}/user`));
    const client = await connect(h.ssh);
    try {
      const names = await new Promise<string[]>((resolve, reject) =>
        client.sftp((err, sftp) => {
          if (err) return reject(err);
          sftp.readdir("/home/sandbox", (e, list) => (e ? reject(e) : resolve(list.map((f) => f.filename))));
        }),
      );
      expect(names).toContain("f");
      expect((await exec(client, "echo still")).stdout).toBe("still\n");
    } finally {
      client.end();
    }
  });

  it("gives a login shell to a session without a command", async () => {
    const client = await connect(made[0]!.ssh);
    try {
      const out = await new Promise<string>((resolve, reject) =>
        client.shell(false, (err, stream) => {
          if (err) return reject(err);
          let got = "";
          stream.on("data", (b: Buffer) => (got += b.toString()));
          stream.on("close", () => resolve(got));
          stream.end("echo shell-$(id -un)-$$; shopt -q login_shell && echo login; exit\n");
        }),
      );
      expect(out).toMatch(/shell-sandbox-\d+\nlogin\n/);
    } finally {
      client.end();
    }
  });

  it("validates specs with proto field names", async () => {
    const bad: Array<[Partial<SandboxSpec>, string]> = [
      [{ cores: 0 }, "cores"],
      [{ cores: 1.5 }, "cores"],
      [{ cores: 1000 }, "cores"],
      [{ memoryMiB: 10 }, "memory_mib"],
      [{ diskGiB: 0 }, "disk_gib"],
      [{ diskGiB: 5 }, "disk_gib"],
      [{ labels: { "bad key!": "x" } }, "labels"],
      [{ labels: { k: "line\nbreak" } }, "labels"],
    ];
    for (const [over, field] of bad) {
      const err = await rt.create(spec(over)).catch((e: unknown) => e);
      expect(isSandboxError(err, "invalid_argument"), `${JSON.stringify(over)} → ${String(err)}`).toBe(true);
      expect((err as { field?: string }).field).toBe(field);
    }
    await expect(rt.setInternet("sbx-doesnotexi", true)).rejects.toMatchObject({ kind: "not_found" });
    await expect(rt.destroy("sbx-doesnotexi")).resolves.toBeUndefined();
    expect(await rt.get("sbx-doesnotexi")).toBeUndefined();
  });

  it("destroys everything of a sandbox, idempotently", async () => {
    const h = await create({ internet: true });
    expect((await leftovers(rt)).nftElements).toContain(h.address);
    await rt.destroy(h.id);
    await rt.destroy(h.id);
    expect(await leftovers(rt, made.filter((m) => m.id !== h.id).map((m) => m.id))).toEqual(NOTHING);
    expect(await rt.get(h.id)).toBeUndefined();
  });

  it("cleans up a create that is aborted or destroyed midway", async () => {
    const keep = made.map((m) => m.id);
    const ac = new AbortController();
    const p = rt.create(spec(), { signal: ac.signal });
    setTimeout(() => ac.abort(), 15);
    await expect(p).rejects.toMatchObject({ kind: "cancelled" });
    const q = rt.create(spec());
    // The create shows up once admitted (its checks are asynchronous).
    let creating: { id: string } | undefined;
    for (let i = 0; i < 200 && !creating; i++) {
      creating = (await rt.list()).find((x) => x.state === "creating");
      if (!creating) await new Promise((r) => setTimeout(r, 5));
    }
    expect(creating).toBeDefined();
    await Promise.all([rt.destroy(creating!.id), expect(q).rejects.toMatchObject({ kind: "cancelled" })]);
    expect(await leftovers(rt, keep)).toEqual(NOTHING);
  });

  it("creates 10 sandboxes concurrently", async () => {
    const keep = made.map((m) => m.id);
    const t0 = performance.now();
    const hs = await Promise.all(Array.from({ length: 10 }, () => rt.create(spec())));
    console.log(`[local] 10 concurrent creates: ${(performance.now() - t0).toFixed(0)} ms`);
    expect(new Set(hs.map((h) => h.address)).size).toBe(10);
    const outs = await Promise.all(hs.map((h) => sshExec(h.ssh, "hostname")));
    expect(outs.map((o) => o.stdout.trim())).toEqual(hs.map((h) => h.id));
    await Promise.all(hs.map((h) => rt.destroy(h.id)));
    expect(await leftovers(rt, keep)).toEqual(NOTHING);
  });
});
