/**
 * kill -9 of sandboxd during an Exec, an Upload, a lease running out and a
 * create, on both providers; a restarted sandboxd adopts the live sandboxes
 * (usable at once), destroys the expired ones and the half-made ones, and
 * nothing is left behind: no container, namespace, process or partial file.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import { ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { collectExec, exists } from "../e2e/harness.js";
import { startEmulator, type Emulator } from "../pve-emulator/index.js";
import {
  CRASH_PVE, EMULATOR_TIMING, LOCAL, eventually, hostObjects, localEnv, proxmoxEnv, purgeLocal, sandboxd, sleep,
  type SandboxClient, type Sandboxd,
} from "./harness.js";

const sh = async (client: SandboxClient, id: string, script: string) =>
  (await collectExec(client.exec({ sandboxId: id, command: { case: "shell", value: script } }))).stdout;

describe.each(["local", "proxmox"] as const)("crash recovery (%s)", (provider) => {
  let emulator: Emulator | undefined;
  const servers: Sandboxd[] = [];
  const env = () => (provider === "local" ? localEnv() : proxmoxEnv(emulator!.connection, { SANDBOXD_PROXMOX_CREATE_TIMEOUT: "8s" }));
  const start = async () => {
    const s = await sandboxd(env());
    servers.push(s);
    return s;
  };
  /** Everything the provider holds, by sandbox id. */
  const held = async (): Promise<string[]> => {
    if (provider === "local") {
      const o = await hostObjects();
      return [...new Set([...o.stateDirs, ...o.netns])].sort();
    }
    const cts = emulator!.containers().filter((c) => !c.conf.template);
    const backing = await emulator!.sandboxes.list();
    // Every CT (whatever its state) and every real sandbox behind one.
    return [...cts.map((c) => String(c.conf.hostname ?? `ct${c.vmid}`)), ...backing.map((b) => `backing:${b.id}`)].sort();
  };
  const backingCount = async () => (provider === "local" ? 0 : (await emulator!.sandboxes.list()).length);

  // A fresh provider per test: a failed test must not leave sandboxes to the next.
  beforeEach(async () => {
    await purgeLocal(LOCAL);
    if (provider === "proxmox") emulator = await startEmulator({ port: 0, timing: EMULATOR_TIMING, ...CRASH_PVE });
  });
  afterEach(async () => {
    await Promise.allSettled(servers.splice(0).map((s) => s.kill()));
    const refused = emulator?.rejectedRequests() ?? [];
    await emulator?.close();
    expect(refused).toEqual([]); // every call sandboxd made passes Proxmox's published schema
    emulator = undefined;
    await purgeLocal(LOCAL);
  });

  it("kill -9 during an Exec and an Upload, with a lease running out: the restart adopts, reaps and tidies", async () => {
    const s1 = await start();
    const live = (await s1.client.createSandbox({ leaseTtl: { seconds: 600n } })).sandbox!;
    const doomed = (await s1.client.createSandbox({ leaseTtl: { seconds: 3n } })).sandbox!;
    const marker = `4242${Math.floor(Math.random() * 1000)}`;
    const exec = s1.client.exec({ sandboxId: live.id, command: { case: "shell", value: `sleep ${marker} & sleep ${marker}` } })[Symbol.asyncIterator]();
    expect((await exec.next()).value?.event.case).toBe("started");
    let finish!: () => void;
    const hold = new Promise<void>((r) => (finish = r));
    async function* body() {
      yield { part: { case: "header" as const, value: { sandboxId: live.id, path: "big.bin" } } };
      for (let i = 0; i < 4; i++) yield { part: { case: "data" as const, value: new Uint8Array(1 << 20).fill(7) } };
      await hold;
    }
    const upload = s1.client.upload(body()).then(() => "finished", (e: unknown) => e);
    // The chunks reach the sandbox's temp file; the command runs.
    await eventually("upload temp file written", 10_000, async () => {
      const out = await sh(s1.client, live.id, "find /home/sandbox -name '.big.bin.sandboxd-*.part' -size +0 | wc -l");
      return out.trim() === "1";
    });
    expect((await sh(s1.client, live.id, `pgrep -c -x -f 'sleep ${marker}' || true`)).trim()).toBe("2");

    const before = (await s1.client.getSandbox({ sandboxId: live.id })).sandbox!;
    await s1.kill();
    finish();
    expect(await upload).toBeInstanceOf(ConnectError);
    await exec.return?.(undefined).catch(() => {});
    const doomedAt = timestampDate(doomed.leaseExpiresAt!).getTime();
    await sleep(Math.max(0, doomedAt - Date.now() + 300)); // the lease runs out while no sandboxd runs

    const s2 = await start();
    // Live: usable at once, same lease; the cut-off command and upload left nothing.
    const got = (await s2.client.getSandbox({ sandboxId: live.id })).sandbox!;
    expect(timestampDate(got.leaseExpiresAt!).getTime()).toBe(timestampDate(before.leaseExpiresAt!).getTime());
    const report = await sh(s2.client, live.id,
      `echo procs=$(pgrep -c -x -f 'sleep ${marker}'); echo parts=$(find /home/sandbox /tmp -name '*.sandboxd-*.part' | wc -l); ls big.bin 2>/dev/null || echo no-target`);
    expect(report).toBe("procs=0\nparts=0\nno-target\n");
    // Expired: destroyed by the restarted sandboxd, on time.
    await eventually("expired sandbox reaped after restart", 15_000, async () => !(await exists(s2.client, doomed.id)));
    await eventually("only the live sandbox is left", 15_000, async () => {
      const h = await held();
      return provider === "local" ? JSON.stringify(h) === JSON.stringify([live.id]) : h.length === 2 && h.includes(live.id);
    });
    expect((await s2.client.listSandboxes({})).sandboxes.map((s) => s.id)).toEqual([live.id]);

    await s2.client.destroySandbox({ sandboxId: live.id });
    await eventually("nothing left", 15_000, async () => (await held()).length === 0 && (await backingCount()) === 0);
    await s2.stop();
  });

  it("kill -9 during creates: what is left after the restart is listed and usable, the half-made is undone", async () => {
    const s1 = await start();
    const requestIds = Array.from({ length: provider === "local" ? 6 : 2 }, (_, i) => `crash-${i}-${Date.now()}`);
    const creates = requestIds.map((requestId) => s1.client.createSandbox({ requestId, leaseTtl: { seconds: 600n } }).catch((e: unknown) => e));
    if (provider === "local") {
      // Kill as soon as one create finished (its reply may not have left): the others are under way.
      const dir = `/var/lib/sandboxd/${LOCAL.instance}/sandboxes`;
      await eventually("a create finished", 20_000, async () => {
        for (const id of await fs.readdir(dir).catch(() => [] as string[])) {
          const text = await fs.readFile(`${dir}/${id}/state.json`, "utf8").catch(() => "");
          if (text.includes('"complete": true')) return true;
        }
        return false;
      });
    } else {
      await sleep(700); // clones take 1.5 s in the emulator: killed mid-clone
    }
    await s1.kill();
    await Promise.all(creates);

    const s2 = await start();
    const listed = async () => (await s2.client.listSandboxes({})).sandboxes.map((s) => s.id).sort();
    // Every sandbox the provider still holds is one the restarted sandboxd lists and can use; the rest goes.
    await eventually("half-made sandboxes undone", 45_000, async () => {
      const ids = await listed();
      const h = await held();
      if (provider === "local") return JSON.stringify(h) === JSON.stringify(ids);
      return h.filter((x) => !x.startsWith("backing:")).every((x) => ids.includes(x)) && (await backingCount()) === ids.length;
    });
    const survivors = await listed();
    if (provider === "local") expect(survivors.length).toBeGreaterThan(0);
    for (const id of survivors) expect(await sh(s2.client, id, "echo ok")).toBe("ok\n");
    // Clients retry their creates with the same request ids: the sandboxes that were finished are
    // handed back (the request id is stored with them), the others are made now; no duplicates.
    const retried = await Promise.all(requestIds.map(async (requestId) => (await s2.client.createSandbox({ requestId, leaseTtl: { seconds: 600n } })).sandbox!.id));
    expect(new Set(retried).size).toBe(requestIds.length);
    for (const id of survivors) expect(retried).toContain(id);
    expect((await listed()).length).toBe(requestIds.length);
    for (const id of await listed()) await s2.client.destroySandbox({ sandboxId: id });
    await eventually("nothing left", 15_000, async () => (await held()).length === 0 && (await backingCount()) === 0);
    await s2.stop();
  });
});
