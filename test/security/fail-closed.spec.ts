/**
 * Attack (or accident): take the host firewall away. `nft flush ruleset`, an
 * nftables service reload or `nft delete table` remove sandboxd's table;
 * sandboxes must stay cut off from host services and from each other all the
 * same, at once and after sandboxd notices; sandboxd must notice, log an
 * error, refuse creates (UNAVAILABLE) and say NOT_SERVING until it has put the
 * table back. The other layer survives alone too: a sandbox's guard table
 * removed inside its namespace leaves the host table holding, and the check
 * rewrites the guard. All probes run from inside real sandboxes, through the
 * server's Exec.
 *
 * A real `nft flush ruleset` would also wipe the tables of other test runs on
 * this host, so the flush is simulated by deleting this instance's own host
 * table: the only nftables state sandboxd keeps in the host's namespace (the
 * guards live in the sandboxes' namespaces, which a host flush does not reach).
 */
import net from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ConnectError, Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { GUARD_TABLE } from "../../server/providers/local/firewall.js";
import { run } from "../../server/providers/local/host.js";
import { Names } from "../../server/providers/local/names.js";
import { collectExec, e2eInstance, startE2E, type E2E, type LogLines } from "../e2e/harness.js";
import { tcpProbe, udpProbe } from "../fixtures/probes.js";

const N = 13;
const { instance, subnet } = e2eInstance(N);
const names = new Names(instance);
const TABLE = names.table;
const GATEWAY = subnet.replace(/0\/24$/, "1");


const tableExists = () => run("nft", ["list", "table", "inet", TABLE]).then(() => true, () => false);

interface Setup {
  e: E2E;
  logs: LogLines;
  a: { id: string; address: string };
  b: { id: string; address: string };
  listeners: number[];
  hits: () => number;
  close(): Promise<void>;
}

async function setUp(checkInterval: string): Promise<Setup> {
  const logs: LogLines = [];
  const e = await startE2E(N, { SANDBOXD_LOCAL_ISOLATION_CHECK_INTERVAL: checkInterval }, "local", logs);
  const make = async (internetAccess: boolean) => {
    const id = (await e.grpc.createSandbox({ internetAccess })).sandbox!.id;
    const out = await sh(e, id, "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1");
    return { id, address: out.trim() };
  };
  const [a, b] = await Promise.all([make(false), make(true)]);
  let hits = 0;
  const servers: net.Server[] = [];
  const listen = (host: string) =>
    new Promise<number>((resolve) => {
      const s = net.createServer((c) => {
        hits++;
        c.destroy();
      });
      servers.push(s);
      s.listen(0, host, () => resolve((s.address() as net.AddressInfo).port));
    });
  const listeners = [await listen(GATEWAY), await listen("0.0.0.0")];
  return {
    e, logs, a, b, listeners, hits: () => hits,
    async close() {
      servers.forEach((s) => s.close());
      await e.stop();
    },
  };
}

async function sh(e: E2E, id: string, value: string): Promise<string> {
  const r = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value } }));
  expect(r.exited?.exitCode, r.stderr).toBe(0);
  return r.stdout;
}

/** From `from`: host services on the gateway, host sshd, the other sandbox's sshd, UDP to the host and to the other. */
async function attempts(s: Setup, from: { id: string }, other: { address: string }): Promise<string[]> {
  const [onBridge, onAny] = s.listeners;
  const out = await sh(s.e, from.id, [
    tcpProbe(GATEWAY, onBridge!), tcpProbe(GATEWAY, onAny!), tcpProbe(GATEWAY, 22), tcpProbe(other.address, 22), udpProbe(GATEWAY, 53), udpProbe(other.address, 53),
  ].join("; "));
  return out.trim().split("\n");
}

const REFUSED_BY_GUARD = ["refused", "refused", "refused", "refused", "EPERM", "EPERM"];

/** Nothing got through (whichever layer stopped it, and however): no connection, no answer. */
const expectCutOff = (got: string[]) => {
  expect(got).toHaveLength(6);
  for (const g of got) expect(["refused", "timeout", "EPERM", "EHOSTUNREACH"], got.join(",")).toContain(g);
};

/** Health statuses of the SandboxService as a Watch stream reports them. */
function watchHealth(e: E2E) {
  const seen: Status[] = [];
  const ac = new AbortController();
  const done = (async () => {
    try {
      for await (const r of createClient(Health, createGrpcTransport({ baseUrl: e.baseUrl })).watch({ service: "sandbox.v1.SandboxService" }, { signal: ac.signal })) {
        seen.push(r.status);
      }
    } catch {
      // aborted
    }
  })();
  return { seen, stop: async () => (ac.abort(), await done) };
}

const until = async (what: string, cond: () => Promise<boolean> | boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const brokenLogs = (logs: LogLines) => logs.filter((l) => Number(l.level) >= 50 && String(l.msg).includes("SANDBOX ISOLATION BROKEN"));

describe("sandboxd's host table deleted: sandboxes stay isolated, creates wait for it to be restored", () => {
  // No periodic check: the gap lasts until a create looks, so the test sees it whole.
  let s: Setup;
  beforeAll(async () => {
    s = await setUp("1h");
  });
  afterAll(async () => {
    await s?.close();
  });

  it("refuses host services and the other sandbox before and during the gap; a create in the gap is UNAVAILABLE; health NOT_SERVING then SERVING", async () => {
    expectCutOff(await attempts(s, s.a, s.b));
    const watch = watchHealth(s.e);
    await until("health watch", () => watch.seen.length > 0);

    await run("nft", ["delete", "table", "inet", TABLE]);
    expect(await tableExists()).toBe(false);
    // Internet off and internet on alike: nothing gets through without the host table...
    const [fromA, fromB] = [await attempts(s, s.a, s.b), await attempts(s, s.b, s.a)];
    expectCutOff(fromA);
    expectCutOff(fromB);
    expect(s.hits()).toBe(0);
    // ...and it is still refused at once, by the sandboxes' own guards.
    expect(fromA).toEqual(REFUSED_BY_GUARD);
    expect(fromB).toEqual(REFUSED_BY_GUARD);
    expect(await tableExists()).toBe(false); // the probes above all ran in the gap

    // A create trusts a look at the host table up to a second old (isolation.ts); past that, it looks and refuses.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await tableExists()).toBe(false);
    const err = await s.e.grpc.createSandbox({}).then(() => undefined, (x: unknown) => x);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Unavailable);
    expect((err as ConnectError).message).toMatch(/isolation/);
    await until("health SERVING again", () => watch.seen.length >= 3);
    await watch.stop();
    expect(watch.seen).toEqual([Status.SERVING, Status.NOT_SERVING, Status.SERVING]);
    expect(await tableExists()).toBe(true);
    expect(brokenLogs(s.logs).length).toBeGreaterThan(0);

    // Restored: both layers again, and creates go through.
    expect(await attempts(s, s.a, s.b)).toEqual(REFUSED_BY_GUARD);
    expect(s.hits()).toBe(0);
    const c = (await s.e.grpc.createSandbox({})).sandbox!.id;
    await s.e.grpc.destroySandbox({ sandboxId: c });
  });

  it("a sandbox cannot remove or change its own guard, not even as root of a user namespace of its own", async () => {
    const out = await sh(s.e, s.a.id, [
      "nft flush ruleset >/dev/null 2>&1; echo flush=$?",
      "nft delete table inet sandboxd_guard >/dev/null 2>&1; echo delete=$?",
      "unshare -r nft flush ruleset >/dev/null 2>&1; echo userns=$?",
    ].join("; "));
    const rcs = Object.fromEntries(out.trim().split("\n").map((l) => l.split("=") as [string, string]));
    expect(rcs.flush).not.toBe("0");
    expect(rcs.delete).not.toBe("0");
    expect(rcs.userns).not.toBe("0");
    expect(await run("nsenter", [`--net=/run/netns/${names.netns(s.a.id)}`, "nft", "list", "table", "inet", GUARD_TABLE])).toContain("chain output");
    expect(await attempts(s, s.a, s.b)).toEqual(REFUSED_BY_GUARD);
  });

  it("with a sandbox's guard removed by hand, the host table alone refuses it", async () => {
    await run("nsenter", [`--net=/run/netns/${names.netns(s.a.id)}`, "nft", "delete", "table", "inet", GUARD_TABLE]);
    // TCP: a reset from the host. UDP: the host's ICMP error, or nothing once the kernel's ICMP
    // budget for this sandbox is spent (a burst of 6, then 1 a second; without its guard the
    // session's own DNS lookups spend some): never an answer.
    const got = await attempts(s, s.a, s.b);
    expectCutOff(got);
    expect(got.slice(0, 4)).toEqual(["refused", "refused", "refused", "refused"]);
    for (const udp of got.slice(4)) expect(["EHOSTUNREACH", "timeout"]).toContain(udp);
    expect(s.hits()).toBe(0);
  });
});

describe("the periodic check notices and restores by itself", () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setUp("300ms");
  });
  afterAll(async () => {
    await s?.close();
  });

  it("puts the host table back within a second or two, health NOT_SERVING in between, and logs an error", async () => {
    const watch = watchHealth(s.e);
    await until("health watch", () => watch.seen.length > 0);
    s.logs.length = 0;
    await run("nft", ["delete", "table", "inet", TABLE]);
    await until("the table back", tableExists, 5_000);
    await until("health SERVING again", () => watch.seen.length >= 3);
    await watch.stop();
    expect(watch.seen).toEqual([Status.SERVING, Status.NOT_SERVING, Status.SERVING]);
    expect(brokenLogs(s.logs)[0]).toMatchObject({ problem: expect.stringMatching(/missing/) });
    expect(await attempts(s, s.a, s.b)).toEqual(REFUSED_BY_GUARD);
  });

  it("puts a table back whose rules were flushed, and members removed from its sets", async () => {
    s.logs.length = 0;
    const restored = () => s.logs.filter((l) => String(l.msg).startsWith("sandbox isolation restored")).length;
    await run("nft", ["flush", "chain", "inet", TABLE, "forward"]);
    await until("the rules back", async () => restored() === 1 && (await run("nft", ["list", "chain", "inet", TABLE, "forward"])).includes("jump egress"), 5_000);
    await run("nft", ["flush", "set", "inet", TABLE, "internet"]);
    await until("the member back", async () => restored() === 2 && (await run("nft", ["list", "set", "inet", TABLE, "internet"])).includes(s.b.address), 5_000);
    expect(brokenLogs(s.logs).map((l) => String(l.problem))).toEqual([expect.stringMatching(/differs/), expect.stringMatching(/internet/)]);
  });

  it("rewrites a guard removed inside a sandbox's namespace, and isolates a bridge port again", async () => {
    s.logs.length = 0;
    const ns = `--net=/run/netns/${names.netns(s.a.id)}`;
    const problems = () => brokenLogs(s.logs).map((l) => String(l.problem));
    await run("nsenter", [ns, "nft", "delete", "table", "inet", GUARD_TABLE]);
    await until("the guard back", () => run("nsenter", [ns, "nft", "list", "table", "inet", GUARD_TABLE]).then(() => true, () => false), 5_000);
    await until("the guard's error logged", () => problems().some((p) => p.includes(`guard tables of ${s.a.address}`)), 5_000);
    const veth = names.veth(s.a.id);
    await run("ip", ["link", "set", veth, "type", "bridge_slave", "isolated", "off"]);
    await until("the port's error logged", () => problems().some((p) => p.includes(veth)), 5_000);
    expect((await run("cat", [`/sys/class/net/${veth}/brport/isolated`])).trim()).toBe("1");
    expect(await attempts(s, s.a, s.b)).toEqual(REFUSED_BY_GUARD);
  });
});
