/**
 * The emulator with real sandboxes: clone → start → eth0 address → SSH with
 * the template key and pinned host key; firewall toggles egress; stop and
 * destroy remove the sandbox; close() purges the runtime.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sshExec } from "../../server/providers/local/testing.js";
import { startEmulator, type Emulator } from "./index.js";
import { PveClient } from "./testing.js";

describe("pve emulator with real sandboxes", () => {
  let emu: Emulator;
  let c: PveClient;
  beforeAll(async () => {
    emu = await startEmulator({
      port: 0, sharedHostKey: true, instance: "pve-emu-t-sbx", subnet: "198.18.183.0/24",
      timing: { cloneMs: 100, startMs: 200, ipDelayMs: 300, stopMs: 10, destroyMs: 10, authFailDelayMs: 10 },
    });
    c = new PveClient(emu.connection);
  });
  afterAll(async () => {
    await emu?.close();
    expect(await emu.sandboxes.runtime.list().catch(() => [])).toEqual([]);
  });
  const node = () => emu.connection.nodes[0]!;

  const interfacesIp = async (vmid: number): Promise<{ ip: string; polls: number }> => {
    for (let polls = 1; ; polls++) {
      const ifs = await c.data("GET", `/nodes/${node()}/lxc/${vmid}/interfaces`);
      const eth0 = ifs.find((i: any) => i.name === "eth0");
      expect(ifs.map((i: any) => i.name)).toEqual(["lo", "eth0"]);
      expect(eth0["hardware-address"]).toBe(eth0.hwaddr);
      if (eth0.inet) return { ip: eth0.inet, polls };
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it("clone → start → interfaces → SSH with the template's key and host key; firewall; stop; destroy", async () => {
    const { pool, templateId, hostKey, sshKeyPath, sshUser } = emu.connection;
    const cl = await c.data("POST", `/nodes/${node()}/lxc/${templateId}/clone`, { json: { newid: 100, full: true, pool, hostname: "sbx-1" } });
    expect((await c.waitTask(node(), cl)).exitstatus).toBe("OK");
    expect(await c.data("GET", `/nodes/${node()}/lxc/100/interfaces`)).toBeNull();
    const st = await c.data("POST", `/nodes/${node()}/lxc/100/status/start`);
    expect(st).toMatch(/:vzstart:100:/);
    expect((await c.waitTask(node(), st)).exitstatus).toBe("OK");
    const again = await c.request("POST", `/nodes/${node()}/lxc/100/status/start`);
    expect([again.status, again.reason]).toEqual([500, "CT 100 already running"]);
    expect(await c.data("GET", `/nodes/${node()}/lxc/100/status/current`)).toMatchObject({ vmid: 100, status: "running", name: "sbx-1", type: "lxc", ha: { managed: 0 } });
    const { ip, polls } = await interfacesIp(100);
    expect(polls).toBeGreaterThan(1); // the address shows up some time after the start
    expect(ip).toMatch(/^198\.18\.183\.\d+\/24$/);
    const address = ip.split("/")[0]!;
    const target = { host: address, port: 22, username: sshUser, privateKey: readFileSync(sshKeyPath), hostKey: hostKey! };
    const r = await sshExec(target, "id -un");
    expect([r.code, r.stdout.trim()]).toEqual([0, "sandbox"]);
    const [sbx] = await emu.sandboxes.runtime.list();
    expect(sbx).toMatchObject({ address, spec: { internet: false, cores: 1, memoryMiB: 1024, diskGiB: 1 } });

    // Firewall: policy_out ACCEPT gives the sandbox internet, DROP takes it away.
    const fw = `/nodes/${node()}/lxc/100/firewall/options`;
    expect(await c.data("PUT", fw, { form: { policy_out: "ACCEPT" } })).toBeNull();
    expect((await emu.sandboxes.runtime.get(sbx!.id))?.spec.internet).toBe(true);
    await c.data("PUT", fw, { form: { policy_out: "DROP" } });
    expect((await emu.sandboxes.runtime.get(sbx!.id))?.spec.internet).toBe(false);
    expect(emu.sandboxes.internetChanges).toEqual([{ id: sbx!.id, enabled: true }, { id: sbx!.id, enabled: false }]);

    // Stop removes the sandbox; a second start makes a new one (same host key: clones share the template's).
    const stop = await c.data("POST", `/nodes/${node()}/lxc/100/status/stop`);
    expect((await c.waitTask(node(), stop)).exitstatus).toBe("OK");
    expect(await emu.sandboxes.runtime.list()).toEqual([]);
    expect(await c.data("GET", `/nodes/${node()}/lxc/100/interfaces`)).toBeNull();
    await c.waitTask(node(), await c.data("POST", `/nodes/${node()}/lxc/100/status/start`));
    const second = (await interfacesIp(100)).ip.split("/")[0]!;
    expect((await sshExec({ ...target, host: second }, "true")).code).toBe(0);

    // Destroy: refused while running without force; with force the sandbox goes too.
    const refused = await c.request("DELETE", `/nodes/${node()}/lxc/100`);
    expect([refused.status, refused.reason]).toEqual([500, "unable to destroy CT 100 - container is running"]);
    const del = await c.data("DELETE", `/nodes/${node()}/lxc/100?purge=1&force=1&destroy-unreferenced-disks=1`);
    expect((await c.waitTask(node(), del)).exitstatus).toBe("OK");
    expect(await emu.sandboxes.runtime.list()).toEqual([]);
    expect((await c.data("GET", `/pools?poolid=${pool}`))[0].members.map((m: any) => m.vmid)).toEqual([templateId]);
  });
});
