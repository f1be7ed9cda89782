/**
 * Attack: use "internet on" to reach what is not the internet. From inside
 * real sandboxes with internet access, try the cloud metadata address
 * (169.254.169.254), RFC 1918 and CGNAT hosts, the host's own addresses and
 * the host's resolver on other ports; all must be refused at once, while the
 * (fake) public internet answers. Then the seed design's limits
 * (sandbox-setup.md §3.3) as configured: only ports 80/443 plus DNS, and at
 * most N new connections per second per sandbox. And the per-sandbox egress
 * allowlist, which opens exactly one private service.
 *
 * Every server here is one of the test's own, in its own network namespace:
 * the "private" ones (startFakeLan) are reached only by packets from this
 * instance's bridge, through a routing table of their own, so nothing goes
 * to a real metadata service or LAN even if the firewall let it through.
 * The fake internet lives in 198.19.0.0/16, which is not public either: the
 * runtime is told to treat its /30 as public (SANDBOXD_EGRESS_ALLOW).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeInternet, startFakeLan, type FakeInternet, type FakeLan } from "../fixtures/internet.js";
import { fetchCmd, tcpProbe, udpProbe } from "../fixtures/probes.js";
import { cidrRange, inCidrs, intToIp, ipToInt } from "../../server/providers/egress.js";
import { LocalRuntime } from "../../server/providers/local/index.js";
import { run } from "../../server/providers/local/host.js";
import { connect, exec, sshExec, startExec } from "../../server/providers/local/testing.js";
import type { SandboxHandle, SandboxSpec } from "../../server/providers/provider.js";

const INSTANCE = "sandboxd-t-egress";
const SUBNET = "198.18.205.0/24";
const N = 205;

const spec = (internet: boolean): SandboxSpec => ({ cores: 1, memoryMiB: 256, diskGiB: 1, internet, labels: {} });

const lines = (s: string) => s.trim().split("\n");

/** The host's own IPv4 addresses outside loopback and the sandbox networks. */
const hostAddresses = () =>
  Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).filter((a) => a.family === "IPv4" && !a.internal && !inCidrs(a.address, ["198.18.0.0/15"])).map((a) => a.address);

const PRIVATE = {
  metadata: "169.254.169.254",
  rfc1918a: `10.99.${N}.2`,
  rfc1918b: `192.168.${N}.2`,
  rfc1918c: `172.16.${N}.2`,
  cgnat: `100.64.${N}.2`,
  resolver: `10.99.${N}.53`,
};

const stateRoot = mkdtempSync(`${os.tmpdir()}/sandboxd-egress-`);
const resolvConf = `${stateRoot}/resolv.conf`;
writeFileSync(resolvConf, `# what sandboxes would see\nnameserver ${PRIVATE.resolver}\nnameserver 127.0.0.53\n`);

describe("internet on means the public internet only", () => {
  let inet: FakeInternet;
  let lan: FakeLan;
  let rt: LocalRuntime;
  let on: SandboxHandle;
  let off: SandboxHandle;
  const servers: net.Server[] = [];
  let hostConnections = 0;

  beforeAll(async () => {
    inet = await startFakeInternet(N, 8080, { udpEcho: true });
    rt = new LocalRuntime({ instance: INSTANCE, subnet: SUBNET, resolvConf, egress: { allow: [inet.cidr] } });
    await rt.start();
    lan = await startFakeLan(N, rt.names.bridge, Object.values(PRIVATE), { ports: [8080, 80], udpEcho: true });
    [on, off] = await Promise.all([rt.create(spec(true)), rt.create(spec(false))]);
  });
  afterAll(async () => {
    servers.forEach((s) => s.close());
    try {
      await rt?.purge();
    } finally {
      await lan?.close();
      await inet?.close();
    }
  });

  it("reaches the (fake) public internet, masqueraded", async () => {
    const r = await sshExec(on.ssh, [fetchCmd(inet.url), udpProbe(inet.address, 53)].join("; "));
    expect(r.stdout).toContain(`internet-ok ${inet.hostAddress} ${inet.address}:8080`);
    expect(lines(r.stdout).pop()).toBe("answered");
  });

  it("is refused at once by cloud metadata, RFC 1918, CGNAT and link-local hosts", async () => {
    // Control: each fake server is up (asked from inside its own namespace).
    for (const a of Object.values(PRIVATE)) {
      const ok = await run("nsenter", [`--net=/run/netns/sbxlan-${N}`, "curl", "-sS", "-m", "3", `http://${a}:8080/`]);
      expect(ok).toContain(`${a}:8080`);
    }
    const targets = [PRIVATE.metadata, PRIVATE.rfc1918a, PRIVATE.rfc1918b, PRIVATE.rfc1918c, PRIVATE.cgnat];
    const r = await sshExec(on.ssh, targets.flatMap((a) => [tcpProbe(a, 80), tcpProbe(a, 8080), udpProbe(a, 53)]).join("; "), { timeoutMs: 60_000 });
    expect(lines(r.stdout)).toEqual(targets.flatMap(() => ["refused", "refused", "EPERM"]));
    // curl fails with "could not connect" (7), not a timeout (28), and never gets a metadata answer.
    const c = await sshExec(on.ssh, fetchCmd(`http://${PRIVATE.metadata}/latest/meta-data/`));
    expect(c.stdout).toMatch(/rc=7\n$/);
  });

  it("is refused by every service on the host's own addresses", async () => {
    const addresses = [...hostAddresses(), rt.subnet.gateway, inet.hostAddress, lan.hostAddress];
    expect(addresses.length).toBeGreaterThan(3);
    const ports = await Promise.all(
      addresses.map(
        (host) =>
          new Promise<number>((resolve) => {
            const s = net.createServer((c) => {
              hostConnections++;
              c.destroy();
            });
            servers.push(s);
            s.listen(0, host, () => resolve((s.address() as net.AddressInfo).port));
          }),
      ),
    );
    const r = await sshExec(on.ssh, addresses.flatMap((a, i) => [tcpProbe(a, ports[i]!), tcpProbe(a, 22)]).join("; "));
    expect(lines(r.stdout)).toEqual(addresses.flatMap(() => ["refused", "refused"]));
    expect(hostConnections).toBe(0);
  });

  it("reaches the host's resolver for DNS only, and only with internet on", async () => {
    const r = await sshExec(on.ssh, [udpProbe(PRIVATE.resolver, 53), tcpProbe(PRIVATE.resolver, 8080), tcpProbe(PRIVATE.resolver, 80)].join("; "));
    expect(lines(r.stdout)).toEqual(["answered", "refused", "refused"]);
    const o = await sshExec(off.ssh, [udpProbe(PRIVATE.resolver, 53), tcpProbe(inet.address, 8080)].join("; "));
    expect(lines(o.stdout)).toEqual(["EPERM", "refused"]);
  });

  it("counts the host's connected networks as private", async () => {
    const table = rt.names.table;
    const nets = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).filter((a) => a.family === "IPv4" && !a.internal);
    expect(nets.length).toBeGreaterThan(0);
    for (const a of nets) {
      // nft finds the interval holding an address: the interface's address and its network's first and last.
      const [start, end] = cidrRange(`${intToIp(ipToInt(a.address) - (ipToInt(a.address) % 2 ** (32 - Number(a.cidr!.split("/")[1]))))}/${a.cidr!.split("/")[1]}`);
      for (const addr of [a.address, intToIp(start), intToIp(end)]) {
        await expect(run("nft", ["get", "element", "inet", table, "non_public", `{ ${addr} }`]), `${addr} (${a.cidr})`).resolves.toBeTruthy();
      }
    }
  });

  it("an allowlist entry opens one private service to one sandbox, with internet off, and removing it cuts at once", async () => {
    // host:port: only that port, TCP and UDP.
    expect(await rt.setEgressAllow(off.id, [`${PRIVATE.rfc1918a}:8080`, `${PRIVATE.rfc1918a}:53`])).toEqual([`${PRIVATE.rfc1918a}:8080`, `${PRIVATE.rfc1918a}:53`]);
    expect((await rt.get(off.id))?.egressAllow).toEqual([`${PRIVATE.rfc1918a}:8080`, `${PRIVATE.rfc1918a}:53`]);
    const r = await sshExec(off.ssh, [
      fetchCmd(`http://${PRIVATE.rfc1918a}:8080/`), udpProbe(PRIVATE.rfc1918a, 53), tcpProbe(PRIVATE.rfc1918a, 80),
      tcpProbe(PRIVATE.rfc1918b, 8080), tcpProbe(PRIVATE.metadata, 80), tcpProbe(inet.address, 8080),
    ].join("; "));
    expect(lines(r.stdout)).toEqual([`internet-ok ${lan.hostAddress} ${PRIVATE.rfc1918a}:8080`, "rc=0", "answered", "refused", "refused", "refused", "refused"]);
    // The other sandbox gets nothing of it.
    expect((await sshExec(on.ssh, tcpProbe(PRIVATE.rfc1918a, 8080))).stdout.trim()).toBe("refused");

    // A CIDR: every port and protocol in it.
    await rt.setEgressAllow(off.id, [`192.168.${N}.0/24`]);
    const r2 = await sshExec(off.ssh, [tcpProbe(PRIVATE.rfc1918b, 80), tcpProbe(PRIVATE.rfc1918b, 8080), udpProbe(PRIVATE.rfc1918b, 53), tcpProbe(PRIVATE.rfc1918a, 8080)].join("; "));
    expect(lines(r2.stdout)).toEqual(["open", "open", "answered", "refused"]);

    // Removed while a connection is open: the connection is cut at once.
    const client = await connect(off.ssh);
    try {
      const drip = await startExec(client, `curl -sN -m 4 http://${PRIVATE.rfc1918b}:8080/drip | wc -c`);
      await new Promise((res) => setTimeout(res, 1500));
      expect(await rt.setEgressAllow(off.id, [])).toEqual([]);
      const got = Number((await drip.done).stdout.trim());
      expect(got).toBeGreaterThan(3);
      expect(got).toBeLessThan(30);
      expect((await exec(client, tcpProbe(PRIVATE.rfc1918b, 8080))).stdout.trim()).toBe("refused");
    } finally {
      client.end();
    }
    expect((await rt.get(off.id))?.egressAllow).toBeUndefined();
  });

  it("refuses allowlist entries that are malformed, host names, or sandbox networks", async () => {
    for (const bad of ["example.com:443", "10.0.0.1/8", "10.0.0.0/33", "10.1.2.3:0", "198.18.0.0/16", `${rt.subnet.gateway}:22`, "127.0.0.1:80"]) {
      await expect(rt.setEgressAllow(off.id, [bad]), bad).rejects.toMatchObject({ kind: "invalid_argument" });
    }
    await expect(rt.setEgressAllow("sbx-doesnotexi", [])).rejects.toMatchObject({ kind: "not_found" });
  });
});

describe("the seed design's limits, configured: ports 80/443 plus DNS, 20 new connections a second", () => {
  const RATE = 20;
  let inet: FakeInternet;
  let rt: LocalRuntime;
  let a: SandboxHandle;
  let b: SandboxHandle;

  beforeAll(async () => {
    inet = await startFakeInternet(N, 8080, { ports: [8080, 80, 443, 5353], udpEcho: true });
    rt = new LocalRuntime({ instance: INSTANCE, subnet: SUBNET, resolvConf, egress: { allow: [inet.cidr], ports: [[80, 80], [443, 443]], newConnRate: RATE } });
    await rt.start();
    [a, b] = await Promise.all([rt.create(spec(true)), rt.create(spec(true))]);
  });
  afterAll(async () => {
    try {
      await rt?.purge();
    } finally {
      await inet?.close();
    }
  });

  it("lets out only TCP/UDP 80 and 443, and DNS", async () => {
    const r = await sshExec(a.ssh, [
      tcpProbe(inet.address, 80), tcpProbe(inet.address, 443), tcpProbe(inet.address, 8080), tcpProbe(inet.address, 5353),
      udpProbe(inet.address, 53), udpProbe(inet.address, 5353),
    ].join("; "));
    expect(lines(r.stdout)).toEqual(["open", "open", "refused", "refused", "answered", "EPERM"]);
  });

  it(`holds a sandbox to ${RATE} new connections a second: the rest wait (dropped SYNs are retried), none is refused`, async () => {
    // 3×RATE connects at once, each given 0.6 s: about RATE get through (the burst), the others
    // see their SYN dropped and would retry after 1 s.
    const burst = `python3 -c '
import selectors, socket, sys, time, errno
host, n = sys.argv[1], int(sys.argv[2])
sel = selectors.DefaultSelector(); socks = []
for _ in range(n):
    s = socket.socket(); s.setblocking(False)
    rc = s.connect_ex((host, 80)); socks.append(s); sel.register(s, selectors.EVENT_WRITE)
done = {"open": 0, "refused": 0, "other": 0}; end = time.time() + 0.6; left = n
while left and time.time() < end:
    for key, _ in sel.select(timeout=max(0, end - time.time())):
        err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        done["open" if err == 0 else "refused" if err == errno.ECONNREFUSED else "other"] += 1
        sel.unregister(key.fileobj); left -= 1
done["waiting"] = left
print(done)' ${inet.address} ${3 * RATE}`;
    const r = JSON.parse((await sshExec(a.ssh, burst)).stdout.replace(/'/g, '"')) as { open: number; refused: number; other: number; waiting: number };
    expect(r.refused).toBe(0);
    expect(r.other).toBe(0);
    expect(r.open).toBeGreaterThanOrEqual(RATE - 2);
    expect(r.open).toBeLessThanOrEqual(RATE + Math.ceil(0.6 * RATE) + 2);
    expect(r.waiting).toBe(3 * RATE - r.open);
    // The limit is per sandbox: the other one connects at once meanwhile.
    expect((await sshExec(b.ssh, tcpProbe(inet.address, 80))).stdout.trim()).toBe("open");
    // A held-back connect is not lost: TCP retries its SYN and gets through.
    const late = await sshExec(a.ssh, `sleep 1.5; ${fetchCmd(`http://${inet.address}:80/`)}`);
    expect(late.stdout).toContain("internet-ok");
  });
});
