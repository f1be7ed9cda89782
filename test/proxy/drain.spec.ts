/**
 * SIGTERM drains a replica behind a proxy without a client noticing: two
 * sandboxd processes on one Proxmox (the emulator) behind nginx / haproxy
 * (round robin). While a client sends an RPC through the proxy every 50 ms
 * (retrying UNAVAILABLE, at most 3 attempts, as a retrying client does), one
 * replica gets SIGTERM: its health says NOT_SERVING at once (checked directly),
 * the Execs it was running finish with their output, it exits 0, no call
 * fails, and from then on every call is served by the other replica.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { e2eEmulatorInstance } from "../e2e/harness.js";
import { LocalRuntime } from "../../server/providers/local/index.js";
import { startEmulator, type Emulator } from "../pve-emulator/index.js";
import { EMULATOR_TIMING, proxmoxEnv, sandboxd, type Sandboxd } from "../crash/harness.js";
import { PROXIES, grpcClient, proxyRequests, run, sleep, startProxy, withRetry, type Proxy } from "../fixtures/proxies.js";

const N = 36;
const DRAIN_DELAY_MS = 2000;

let emulator: Emulator;
const servers: Sandboxd[] = [];
const proxies: Proxy[] = [];

beforeAll(async () => {
  await new LocalRuntime(e2eEmulatorInstance(N)).purge();
  emulator = await startEmulator({ port: 0, timing: { ...EMULATOR_TIMING, cloneMs: 200 }, ...e2eEmulatorInstance(N) });
});
afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.stop()));
  await Promise.allSettled(servers.map((s) => s.kill()));
  const refused = emulator?.rejectedRequests() ?? [];
  await emulator?.close();
  expect(refused).toEqual([]);
});

const replica = async () => {
  const s = await sandboxd(proxmoxEnv(emulator.connection, { SANDBOXD_DRAIN_DELAY: `${DRAIN_DELAY_MS}ms`, SANDBOXD_SHUTDOWN_GRACE: "20s" }));
  servers.push(s);
  return s;
};

describe.each(PROXIES)("behind %s", (kind) => {
  it("SIGTERM to one replica: NOT_SERVING, its Execs finish, no client call fails, the other serves", { timeout: 120_000 }, async () => {
    const [r1, r2] = [await replica(), await replica()];
    const p = await startProxy(kind, { upstreams: [r1.address, r2.address] });
    proxies.push(p);
    let looping = true;
    try {
      const client = grpcClient(p.baseUrl);
      const id = (await client.createSandbox({ labels: { suite: "proxy-drain" } })).sandbox!.id;

      // Long Execs, each on a connection of its own; round robin puts some on r1.
      const execs = Array.from({ length: 4 }, () => run(grpcClient(p.baseUrl), id, "echo begin; sleep 5; echo ok"));
      await sleep(1000);

      // The steady client: an RPC every 50 ms, alternating GetSandbox and Exec `true`.
      const stats = { calls: 0, retries: 0, errors: [] as string[], failures: [] as string[] };
      const loop = (async () => {
        for (let i = 0; looping; i++) {
          const t = Date.now();
          try {
            if (i % 2) await withRetry(() => client.getSandbox({ sandboxId: id }, { timeoutMs: 10_000 }), stats);
            else expect((await withRetry(() => run(client, id, "true"), stats)).exitCode).toBe(0);
            stats.calls++;
          } catch (err) {
            stats.failures.push(String(err));
          }
          await sleep(Math.max(0, 50 - (Date.now() - t)));
        }
      })();
      await sleep(500);

      const exited = new Promise<number | null>((r) => r1.process.once("exit", (code) => r(code)));
      const termAt = Date.now();
      r1.process.kill("SIGTERM");
      // Directly against r1, on a new connection: NOT_SERVING within the drain delay.
      const health = createClient(Health, createGrpcTransport({ baseUrl: `http://${r1.address}` }));
      let status: Status | undefined;
      while (Date.now() - termAt < DRAIN_DELAY_MS - 300) {
        status = (await health.check({}, { timeoutMs: 1000 })).status;
        if (status === Status.NOT_SERVING) break;
        await sleep(50);
      }
      expect(status).toBe(Status.NOT_SERVING);

      // Every long Exec (on r1 or r2) finishes with its output; r1 exits cleanly once its streams are done.
      for (const r of await Promise.all(execs)) expect(r).toEqual({ stdout: "begin\nok\n", stderr: "", exitCode: 0 });
      expect(await exited, r1.logs()).toBe(0);
      const drainedMs = Date.now() - termAt;

      // From here on, only r2 is left: a few more seconds of calls, all on r2.
      const seenBefore = proxyRequests(p).length;
      await sleep(2000);
      looping = false;
      await loop;

      const requests = proxyRequests(p);
      const longExecs = requests.filter((r) => r.path.endsWith("/Exec") && r.seconds > 4);
      const onR1 = (r: { upstream: string }) => r.upstream === r1.address;
      const after = requests.slice(seenBefore);
      console.log(`${kind}: ${stats.calls} calls, ${stats.retries} retries (${[...new Set(stats.errors)].join("; ")}), ` +
        `r1 drained in ${drainedMs} ms, ${requests.filter(onR1).length} requests on r1, ${after.length} after it exited; ` +
        `retried by the proxy: ${JSON.stringify(requests.filter((r) => /upstream=\S+, |retries=\+?[1-9]/.test(r.line)).map((r) => r.line))}`);
      expect(stats.failures).toEqual([]);
      expect(stats.calls).toBeGreaterThan(20);
      expect(longExecs.length).toBe(4);
      expect(longExecs.filter(onR1).length, "a long Exec ran on r1").toBeGreaterThan(0);
      expect(requests.filter(onR1).length, "r1 served calls before it drained").toBeGreaterThan(0);
      expect(after.length).toBeGreaterThan(5);
      expect(after.filter((r) => r.status === 200 && r.upstream === r2.address)).toEqual(after);

      await client.destroySandbox({ sandboxId: id });
      expect(await r2.stop()).toBe(0);
    } catch (err) {
      console.error(`${kind} logs:\n${p.logs().slice(-8000)}\n--- r1:\n${r1.logs().slice(-4000)}`);
      throw err;
    } finally {
      looping = false; // also when an assertion failed midway
      await p.stop();
    }
  });
});
