/**
 * How late the reaper is: real local sandboxes with short leases (2-5 s),
 * never renewed, against a sandboxd child with the production reap interval
 * (250 ms). Latency runs from the lease's expiry (lease_expires_at as
 * CreateSandbox returned it) to the sandbox being gone: GetSandbox answers
 * NOT_FOUND and the runtime's state directory for it is removed, polled
 * every 20 ms. Baseline: an explicit DestroySandbox timed the same way (from
 * the call to gone) in the same run, so the ratio shows what waiting for the
 * reaper adds; the reap interval is reported next to it.
 */
import { existsSync } from "node:fs";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { LocalRuntime } from "../server/providers/local/index.js";
import { StateStore } from "../server/providers/local/state.js";
import { startSandboxd, type SandboxdProcess } from "../test/fixtures/sandboxd-process.js";
import type { BenchResults } from "./lib/results.js";
import { percentile, round } from "./lib/stats.js";

const INSTANCE = "sandboxd-bench-lease";
const SUBNET = "198.18.247.0/24";
const STATE_DIR = `/var/lib/sandboxd/${INSTANCE}`;
const REAPS = 30;
const DESTROYS = 15;
const CONCURRENCY = 3;
const REAP_INTERVAL_MS = 250; // sandboxd's default, left unset below
const POLL_MS = 20;
const RESOURCES = { cores: 1, memoryMib: 256, diskGib: 1 };

type Api = Client<typeof SandboxService>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the wall-clock time (ms epoch) at which the sandbox was first seen gone. */
async function goneAt(api: Api, store: StateStore, id: string, deadline: number): Promise<number> {
  for (;;) {
    const notFound = await api.getSandbox({ sandboxId: id }).then(
      () => false,
      (err: unknown) => {
        if (ConnectError.from(err).code === Code.NotFound) return true;
        throw err;
      },
    );
    if (notFound && !existsSync(store.dir(id))) return Date.now();
    if (Date.now() > deadline) throw new Error(`sandbox ${id} still there ${Math.round((Date.now() - deadline) / 1000)} s after its deadline`);
    await sleep(POLL_MS);
  }
}

/** Runs `count` jobs, at most CONCURRENCY at once (creates stay "a few at a time", like a careful client). */
async function inBatches<T>(count: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await job(i);
    }
  }));
  return out;
}

const purge = () => new LocalRuntime({ instance: INSTANCE, subnet: SUBNET, stateDir: STATE_DIR }).purge();

export async function benchLeaseReap(results: BenchResults): Promise<void> {
  await purge(); // leftovers of an interrupted run
  let server: SandboxdProcess | undefined;
  try {
    server = await startSandboxd({
      SANDBOXD_PROVIDER: "local", SANDBOXD_LOCAL_INSTANCE: INSTANCE, SANDBOXD_LOCAL_SUBNET: SUBNET, SANDBOXD_LOCAL_STATE_DIR: STATE_DIR,
      SANDBOXD_LOG_LEVEL: "warn",
    });
    const api: Api = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${server.address}` }));
    const store = new StateStore(STATE_DIR);

    // Baseline: DestroySandbox on sandboxes with a long lease, from the call until gone.
    const destroyMs = await inBatches(DESTROYS, async () => {
      const { sandbox } = await api.createSandbox({ resources: RESOURCES, labels: { bench: "lease-destroy" }, leaseTtl: { seconds: 600n } });
      const t0 = Date.now();
      await api.destroySandbox({ sandboxId: sandbox!.id });
      return (await goneAt(api, store, sandbox!.id, t0 + 60_000)) - t0;
    });

    // Reaps: leases of 2-5 s, never renewed.
    const reaps = await inBatches(REAPS, async () => {
      const ttlMs = 2000 + Math.round(Math.random() * 3000);
      const asked = Date.now();
      const { sandbox } = await api.createSandbox({
        resources: RESOURCES, labels: { bench: "lease-reap" },
        leaseTtl: { seconds: BigInt(Math.floor(ttlMs / 1000)), nanos: (ttlMs % 1000) * 1e6 },
      });
      const answered = Date.now();
      const expiresAt = timestampDate(sandbox!.leaseExpiresAt!).getTime();
      const gone = await goneAt(api, store, sandbox!.id, expiresAt + 60_000);
      // How long before the CreateSandbox answer the lease's TTL started counting (the create's own duration, if it starts at the request).
      return { latencyMs: gone - expiresAt, createMs: answered - asked, leaseStartBeforeAnswerMs: answered - (expiresAt - ttlMs) };
    });

    const latencies = reaps.map((r) => r.latencyMs);
    const destroyP50 = percentile(destroyMs, 50);
    const extra = {
      samples: REAPS, reap_interval_ms: REAP_INTERVAL_MS, poll_ms: POLL_MS, ttl_s: "2-5",
      baseline_is: `explicit DestroySandbox, call to gone, same detection (${DESTROYS} samples, p50 ${round(destroyP50, 1)} ms, p99 ${round(percentile(destroyMs, 99), 1)} ms)`,
      expected: `about reap interval × U(0,1) + destroy, i.e. p50 ≈ ${REAP_INTERVAL_MS / 2} ms + destroy, p99 ≈ ${REAP_INTERVAL_MS} ms + destroy`,
      min_ms: round(Math.min(...latencies), 1), max_ms: round(Math.max(...latencies), 1),
      create_p50_ms: round(percentile(reaps.map((r) => r.createMs), 50), 1),
      lease_start_before_create_answer_p50_ms: round(percentile(reaps.map((r) => r.leaseStartBeforeAnswerMs), 50), 1),
    };
    results.add("lease_reap_latency_p50", percentile(latencies, 50), "ms", destroyP50, extra);
    results.add("lease_reap_latency_p99", percentile(latencies, 99), "ms", percentile(destroyMs, 99), extra);
  } catch (err) {
    if (server) process.stderr.write(`bench: sandboxd log tail:\n${server.logs().slice(-65_536)}\n`);
    throw err;
  } finally {
    await server?.stop();
    await purge();
  }
}
