/**
 * Maximum connection age (SANDBOXD_MAX_CONNECTION_AGE=2s, grace 5s): sandboxd
 * sends a GOAWAY to connections older than that, lets their running streams
 * finish, then closes them, so long-lived clients reconnect (and a load
 * balancer may send them elsewhere).
 * - A direct connect-node client making unary calls for 6 s sees no failure
 *   (retrying a call its own HTTP/2 stack refused as a GOAWAY arrived, see
 *   retryable) yet ends up on at least 2 TCP connections, and an Exec started
 *   on the first connection before its GOAWAY completes on it.
 * - Behind nginx and haproxy (whose upstream connections get the GOAWAYs)
 *   calls keep succeeding.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { e2eInstance, purge } from "../e2e/harness.js";
import { startSandboxd, type SandboxdProcess } from "../fixtures/sandboxd-process.js";
import { PROXIES, grpcClient, proxyRequests, run, sleep, startProxy, withRetry, type Proxy, type SandboxClient } from "../fixtures/proxies.js";

const N = 39;
let sandboxd: SandboxdProcess;
let id: string;
const proxies: Proxy[] = [];

beforeAll(async () => {
  await purge(N);
  const { instance, subnet } = e2eInstance(N);
  sandboxd = await startSandboxd({
    SANDBOXD_LOCAL_INSTANCE: instance, SANDBOXD_LOCAL_SUBNET: subnet, SANDBOXD_DEFAULT_MEMORY_MIB: "256", SANDBOXD_DEFAULT_DISK_GIB: "1",
    SANDBOXD_MAX_CONNECTION_AGE: "2s", SANDBOXD_MAX_CONNECTION_AGE_GRACE: "5s",
  });
  id = (await grpcClient(`http://${sandboxd.address}`).createSandbox({ labels: { suite: "proxy-age" } })).sandbox!.id;
});
afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.stop()));
  await sandboxd?.stop();
  await purge(N);
});

/** sandboxd's count of max-age GOAWAYs, from its admin listener's /metrics (undefined if it has none). */
async function goaways(): Promise<number | undefined> {
  const admin = /"admin":"([^"]+)"/.exec(sandboxd.logs())?.[1];
  if (!admin) return undefined;
  const text = await fetch(`http://${admin}/metrics`).then((r) => r.text(), () => "");
  const m = /^sandboxd_http2_max_age_goaways_total(?:\{[^}]*\})? (\d+)/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** GetSandbox every 50 ms for `ms` (retried as withRetry does, or not): how many succeeded, retries, and every failure. */
async function unaryFor(client: SandboxClient, ms: number, attempts = 1) {
  let ok = 0;
  const failures: string[] = [];
  const stats = { retries: 0, errors: [] as string[] };
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) {
    try {
      await withRetry(() => client.getSandbox({ sandboxId: id }, { timeoutMs: 5000 }), stats, attempts);
      ok++;
    } catch (err) {
      failures.push(String(err));
    }
  }
  return { ok, failures, retries: stats.errors };
}

describe("maximum connection age", () => {
  it("a direct client rides through the GOAWAYs onto new connections; a stream started before one completes", async () => {
    // connect-node's own session manager, with every TCP connection it opens recorded.
    const [host, port] = [sandboxd.address.split(":")[0]!, Number(sandboxd.address.split(":")[1])];
    const sockets: Array<{ at: number; socket: net.Socket }> = [];
    const transport = createGrpcTransport({
      baseUrl: `http://${sandboxd.address}`,
      nodeOptions: { createConnection: () => { const socket = net.connect(port, host); sockets.push({ at: Date.now(), socket }); return socket; } },
    });
    const client = createClient(SandboxService, transport);
    const t0 = Date.now();
    await client.getSandbox({ sandboxId: id });
    // An Exec on the first connection, running across its GOAWAY (at ~2 s) and finishing within the grace.
    const execStart = Date.now();
    const exec = run(client, id, "echo begin; sleep 3; echo end").then((r) => ({ ...r, at: Date.now() }));
    // A call made just as a GOAWAY arrives may be refused by the client's HTTP/2 stack (never sent):
    // a retrying client retries it (see retryable in the fixture).
    const unary = await unaryFor(client, 6000, 3);
    const done = await exec;

    console.log(`direct: ${unary.ok} calls, retried ${JSON.stringify(unary.retries)}, ${sockets.length} connections opened at ${sockets.map((s) => s.at - t0).join(", ")} ms; exec ${execStart - t0}-${done.at - t0} ms`);
    expect(unary.failures).toEqual([]);
    expect(unary.ok).toBeGreaterThan(50);
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    expect({ stdout: done.stdout, exitCode: done.exitCode }).toEqual({ stdout: "begin\nend\n", exitCode: 0 });
    // The second connection was opened while the Exec was still running on the first: it outlived the GOAWAY.
    expect(sockets[1]!.at).toBeGreaterThan(execStart);
    expect(sockets[1]!.at).toBeLessThan(done.at);
  });

  it.each(PROXIES)("behind %s, calls keep succeeding across sandboxd's GOAWAYs", async (kind) => {
    const p = await startProxy(kind, { upstreams: [sandboxd.address] });
    proxies.push(p);
    try {
      const before = await goaways();
      const client = grpcClient(p.baseUrl);
      // Unary calls and, alongside, Execs that span a GOAWAY on their upstream connection.
      const execs = Promise.all([0, 1500, 3000].map(async (delay) => {
        await sleep(delay);
        return run(client, id, "sleep 2.5; echo ok");
      }));
      const unary = await unaryFor(client, 6000);
      const results = await execs;
      const after = await goaways();
      const logged = proxyRequests(p);
      console.log(`${kind}: ${unary.ok} calls, max-age GOAWAYs sent ${before} → ${after}, ` +
        `non-200 in the proxy log: ${JSON.stringify(logged.filter((r) => r.status !== 200).map((r) => r.line))}`);
      expect(unary.failures).toEqual([]);
      expect(unary.ok).toBeGreaterThan(50);
      for (const r of results) expect(r).toEqual({ stdout: "ok\n", stderr: "", exitCode: 0 });
      if (before !== undefined && after !== undefined) expect(after).toBeGreaterThan(before);
    } catch (err) {
      console.error(`${kind} logs:\n${p.logs().slice(-6000)}`);
      throw err;
    } finally {
      await p.stop();
    }
  });
});
