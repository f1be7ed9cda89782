/**
 * Network isolation of local sandboxes: no host services, no other sandboxes,
 * no "internet" (a fake one in its own namespace) unless enabled; the toggle
 * acts at once.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeInternet, type FakeInternet } from "../../../test/fixtures/internet.js";
import type { SandboxHandle, SandboxSpec } from "../provider.js";
import { LocalRuntime } from "./runtime.js";
import { connect, exec, sshExec, startExec } from "./testing.js";

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({ cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: {}, ...over });
/** Prints open/closed for a TCP connect from inside a sandbox (dropped SYNs time out). */
const probe = (host: string, port: number) => `timeout 2 bash -c 'exec 3<>/dev/tcp/${host}/${port}' 2>/dev/null && echo open || echo closed`;
const fetchCmd = (url: string) => `curl -sS -m 3 ${url} 2>&1; echo rc=$?`;

describe("LocalRuntime network", () => {
  const rt = new LocalRuntime({ instance: "sandboxd-t-net", subnet: "198.18.202.0/24" });
  let inet: FakeInternet;
  let a: SandboxHandle;
  let b: SandboxHandle;
  const servers: net.Server[] = [];
  let hostConnections = 0;

  const listen = (host: string) =>
    new Promise<number>((resolve) => {
      const s = net.createServer((c) => {
        hostConnections++;
        c.destroy();
      });
      servers.push(s);
      s.listen(0, host, () => resolve((s.address() as net.AddressInfo).port));
    });

  beforeAll(async () => {
    await rt.start();
    inet = await startFakeInternet(202);
    [a, b] = await Promise.all([rt.create(spec()), rt.create(spec())]);
  });

  afterAll(async () => {
    servers.forEach((s) => s.close());
    await rt.purge();
    await inet?.close();
  });

  it("lets the host reach a sandbox but no sandbox reach host services", async () => {
    const gw = rt.subnet.gateway;
    const onBridge = await listen(gw);
    const onAny = await listen("0.0.0.0");
    // Control: the host reaches its own listeners, and a sandbox reaches its own sshd.
    await new Promise<void>((resolve, reject) => net.connect(onAny, gw, resolve).on("error", reject));
    const before = hostConnections;
    const r = await sshExec(a.ssh, [probe(a.address, 22), probe(gw, onBridge), probe(gw, onAny), probe(gw, 22)].join("; "));
    expect(r.stdout.trim().split("\n")).toEqual(["open", "closed", "closed", "closed"]);
    expect(hostConnections).toBe(before);
    // Still true with internet access on: that opens the way beyond the host, not into it.
    await rt.setInternet(a.id, true);
    const r2 = await sshExec(a.ssh, [probe(gw, onBridge), probe(gw, onAny)].join("; "));
    expect(r2.stdout.trim().split("\n")).toEqual(["closed", "closed"]);
    await rt.setInternet(a.id, false);
    expect(hostConnections).toBe(before);
  });

  it("keeps sandboxes from reaching each other", async () => {
    await rt.setInternet(a.id, true); // not even with internet access
    const r = await sshExec(a.ssh, probe(b.address, 22));
    expect(r.stdout.trim()).toBe("closed");
    await rt.setInternet(a.id, false);
    expect((await sshExec(b.ssh, probe(a.address, 22))).stdout.trim()).toBe("closed");
  });

  it("reaches the internet only while enabled, switching at once", async () => {
    const client = await connect(a.ssh);
    try {
      const off1 = await exec(client, fetchCmd(inet.url));
      expect(off1.stdout).not.toContain("internet-ok");
      await rt.setInternet(a.id, true);
      const on = await exec(client, fetchCmd(inet.url));
      // Masqueraded: the outside sees the host's address, never the sandbox's.
      expect(on.stdout).toContain(`internet-ok ${inet.hostAddress}`);
      expect((await rt.get(a.id))?.spec.internet).toBe(true);
      // Other sandboxes stay cut off.
      expect((await sshExec(b.ssh, fetchCmd(inet.url))).stdout).not.toContain("internet-ok");
      await rt.setInternet(a.id, false);
      const off2 = await exec(client, fetchCmd(inet.url));
      expect(off2.stdout).not.toContain("internet-ok");
    } finally {
      client.end();
    }
  });

  it("works from the first moment for a sandbox created with internet, and cuts open connections when turned off", async () => {
    const c = await rt.create(spec({ internet: true }));
    try {
      expect((await sshExec(c.ssh, fetchCmd(inet.url))).stdout).toContain("internet-ok");
      const client = await connect(c.ssh);
      try {
        // 50 bytes over 5 s; turned off after ~1.5 s the rest never arrives.
        const drip = await startExec(client, `curl -sN -m 4 ${inet.url}/drip | wc -c`);
        await new Promise((r) => setTimeout(r, 1500));
        await rt.setInternet(c.id, false);
        const got = Number((await drip.done).stdout.trim());
        expect(got).toBeGreaterThan(3);
        expect(got).toBeLessThan(30);
      } finally {
        client.end();
      }
    } finally {
      await rt.destroy(c.id);
    }
  });

  it("has no IPv6 inside a sandbox", async () => {
    const r = await sshExec(a.ssh, "cat /proc/sys/net/ipv6/conf/all/disable_ipv6; ip -6 addr | wc -l");
    expect(r.stdout).toBe("1\n0\n");
  });
});
