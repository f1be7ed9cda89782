/**
 * Network isolation of local sandboxes: no host services, no other sandboxes,
 * no "internet" (a fake one in its own namespace) unless enabled; the toggle
 * acts at once. What is blocked is refused at once (a TCP reset; other
 * protocols fail in the sandbox's own stack with EPERM), never left to time
 * out: the probes tell "refused" from "timeout". The fake internet lives in
 * non-public space (198.19.0.0/16), so the runtime is told to count its /30
 * as public (SANDBOXD_EGRESS_ALLOW); test/security/egress.spec.ts covers
 * what "internet on" must not reach.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeInternet, type FakeInternet } from "../../../test/fixtures/internet.js";
import type { SandboxHandle, SandboxSpec } from "../provider.js";
import { LocalRuntime } from "./runtime.js";
import { connect, exec, sshExec, startExec } from "./testing.js";
import { fetchCmd, tcpProbe, udpProbe as udpProbeWithin } from "../../../test/fixtures/probes.js";

/** network.spec waits 5 s for a UDP answer. */
const udpProbe = (host: string, port: number) => udpProbeWithin(host, port, 5);

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({ cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: {}, ...over });

describe("LocalRuntime network", () => {
  const rt = new LocalRuntime({ instance: "sandboxd-t-net", subnet: "198.18.202.0/24", egress: { allow: ["198.19.202.0/30"] } });
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
    const r = await sshExec(a.ssh, [tcpProbe(a.address, 22), tcpProbe(gw, onBridge), tcpProbe(gw, onAny), tcpProbe(gw, 22), udpProbe(gw, 53)].join("; "));
    expect(r.stdout.trim().split("\n")).toEqual(["open", "refused", "refused", "refused", "EPERM"]);
    expect(hostConnections).toBe(before);
    // Still true with internet access on: that opens the way beyond the host, not into it.
    await rt.setInternet(a.id, true);
    const r2 = await sshExec(a.ssh, [tcpProbe(gw, onBridge), tcpProbe(gw, onAny)].join("; "));
    expect(r2.stdout.trim().split("\n")).toEqual(["refused", "refused"]);
    await rt.setInternet(a.id, false);
    expect(hostConnections).toBe(before);
  });

  it("keeps sandboxes from reaching each other", async () => {
    await rt.setInternet(a.id, true); // not even with internet access
    const r = await sshExec(a.ssh, [tcpProbe(b.address, 22), udpProbe(b.address, 53)].join("; "));
    expect(r.stdout.trim().split("\n")).toEqual(["refused", "EPERM"]);
    await rt.setInternet(a.id, false);
    expect((await sshExec(b.ssh, tcpProbe(a.address, 22))).stdout.trim()).toBe("refused");
  });

  it("reaches the internet only while enabled, switching at once", async () => {
    const client = await connect(a.ssh);
    try {
      const off1 = await exec(client, [fetchCmd(inet.url), tcpProbe(inet.address, inet.port), udpProbe(inet.address, 53)].join("; "));
      expect(off1.stdout).not.toContain("internet-ok");
      // Refused at once, as pip or git would need to fail fast: curl's "could not connect", not its timeout.
      expect(off1.stdout).toMatch(/rc=7\nrefused\nEPERM\n$/);
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
      expect(off2.stdout).toContain("rc=7");
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

describe("LocalRuntime firewall drift", () => {
  const rt = new LocalRuntime({ instance: "sandboxd-t-drift", subnet: "198.18.209.0/24" });
  let a: SandboxHandle;
  beforeAll(async () => {
    await rt.start();
    a = await rt.create(spec());
  });
  afterAll(async () => {
    await rt.purge();
  });

  it("an element in the host table it did not write makes an allowlist change rewrite the table, not fail", async () => {
    const { execFileSync } = await import("node:child_process");
    const table = rt.names.table;
    const services = () => execFileSync("nft", ["list", "set", "inet", table, "sandbox_services"]).toString();
    await rt.setEgressAllow(a.id, ["10.99.1.2:8080"]);
    // Drift: an element the runtime does not know, overlapping what it will add next (nft: "File exists").
    execFileSync("nft", ["add", "element", "inet", table, "sandbox_services", `{ ${a.address} . 10.99.1.3 . tcp . 8080 }`]);
    await rt.setEgressAllow(a.id, ["10.99.1.2:8080", "10.99.1.3:8080"]);
    const now = services();
    expect(now).toContain(`${a.address} . 10.99.1.2/31 . tcp . 8080`); // nft lists the range 2-3 as a /31
    expect(now).not.toMatch(/10\.99\.1\.3 \. tcp/);
  });
});
