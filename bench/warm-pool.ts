/**
 * Issue 16's figures, same run: sandboxd processes with a warm pool against
 * the PVE emulator at its default timings (clone 5 s, start 1 s, DHCP 1.5 s)
 * and against the local runtime.
 * - pve_create_ready_p50_warm against pve_create_ready_p50 (a shape with no
 *   pool, same server): target ≤ 300 ms and ≥ 20× faster.
 * - pve_create_burst_20_warm_total: 20 creates at once against a full pool of 8.
 * - pve_pool_fill_8_concurrency_{1,2,3}: time to fill an empty pool of 8 with
 *   that many refills at once (clones of one template take its lock in turn;
 *   3, the default, keeps a clone always waiting for the lock).
 * - local_create_ready_p50_warm against local_create_ready_p50: target ≤ 15 ms.
 */
import { LocalRuntime } from "../server/providers/local/index.js";
import { startSandboxd, type SandboxdProcess } from "../test/fixtures/sandboxd-process.js";
import { scrape, total } from "../test/fixtures/metrics.js";
import { freePort } from "../test/fixtures/ports.js";
import { proxmoxEnvOf, startEmulator } from "../test/pve-emulator/index.js";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import type { BenchResults } from "./lib/results.js";
import { nowMs, percentile } from "./lib/stats.js";

const PVE = { instance: "sandboxd-bench-pool-pve", subnet: "198.18.215.0/24" };
const LOCAL = { instance: "sandboxd-bench-pool", subnet: "198.18.216.0/24" };
const POOL = 8;

type Resources = { cores: number; memoryMib: number; diskGib: number };
const api = (s: SandboxdProcess) => createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${s.address}` }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The admin listener on a port of our choosing (the servers log at warn, so not their address). */
const admins = new Map<SandboxdProcess, string>();
async function adminEnv(): Promise<{ SANDBOXD_ADMIN_LISTEN: string }> {
  return { SANDBOXD_ADMIN_LISTEN: `127.0.0.1:${await freePort()}` };
}

async function poolReady(s: SandboxdProcess, shape: string, want: number, timeoutMs = 600_000): Promise<number> {
  const t0 = nowMs();
  const admin = admins.get(s)!;
  while (total(await scrape(admin), "sandboxd_warm_pool_ready", { shape }) < want) {
    if (nowMs() - t0 > timeoutMs) throw new Error(`pool ${shape} did not reach ${want} in ${timeoutMs} ms`);
    await sleep(50);
  }
  return nowMs() - t0;
}

/** Sequential creates of `resources`, each timed to its answer (the sandbox is ready for Exec then). */
async function createTimes(s: SandboxdProcess, resources: Resources, n: number): Promise<{ ms: number[]; ids: string[] }> {
  const ms: number[] = [];
  const ids: string[] = [];
  const client = api(s); // one connection, as a client keeps it
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    ids.push((await client.createSandbox({ resources })).sandbox!.id);
    ms.push(nowMs() - t0);
  }
  return { ms, ids };
}

const shapeOf = (r: Resources) => `${r.cores}x${r.memoryMib}Mx${r.diskGib}G`;

export async function benchWarmPool(results: BenchResults): Promise<void> {
  await benchPveWarmPool(results);
  await benchLocalWarmPool(results);
}

async function benchPveWarmPool(results: BenchResults): Promise<void> {
  // Fill times by refill concurrency, each on an emulator of its own (a pool outlives its server).
  for (const c of [1, 2]) {
    await withPool(c, async (s, shape) => results.add(`pve_pool_fill_8_concurrency_${c}`, await poolReady(s, shapeOf(shape), POOL), "ms"));
  }
  await withPool(3, async (s, pooled) => {
    results.add("pve_pool_fill_8_concurrency_3", await poolReady(s, shapeOf(pooled), POOL), "ms", undefined, { default: true });
    const warm = await createTimes(s, pooled, POOL);
    const cold = await createTimes(s, { cores: 2, memoryMib: 512, diskGib: 2 }, 3);
    const coldP50 = percentile(cold.ms, 50);
    results.add("pve_create_ready_p50", coldP50, "ms", undefined, { samples: cold.ms.length, shape: "not pooled" });
    results.add("pve_create_ready_p50_warm", percentile(warm.ms, 50), "ms", coldP50, { samples: warm.ms.length, target_max_ms: 300, target_ratio_max: 0.05 });
    for (const id of [...warm.ids, ...cold.ids]) await api(s).destroySandbox({ sandboxId: id });
    await poolReady(s, shapeOf(pooled), POOL);
    const t0 = nowMs();
    const burst = await Promise.all(Array.from({ length: 20 }, () => api(s).createSandbox({ resources: pooled })));
    results.add("pve_create_burst_20_warm_total", nowMs() - t0, "ms", undefined, { pool: POOL, creates: burst.length });
  });
}

/** A sandboxd with a pool of 8 (1 core, 512 MiB, 2 GiB) on a fresh emulator at default timings, refilling `concurrency` at once. */
async function withPool(concurrency: number, run: (s: SandboxdProcess, shape: Resources) => Promise<void>): Promise<void> {
  await new LocalRuntime(PVE).purge(); // what a killed earlier run left
  const emulator = await startEmulator({ port: 0, nodes: 1, ...PVE, pidsMax: 256 });
  const servers: SandboxdProcess[] = [];
  const shape = { cores: 1, memoryMib: 512, diskGib: 2 };
  const start = async (resources: Resources) => {
    const admin = await adminEnv();
    const s = await startSandboxd({
      ...admin,
      ...proxmoxEnvOf(emulator.connection), SANDBOXD_LOG_LEVEL: "warn", SANDBOXD_PROXMOX_CREATE_TIMEOUT: "10m",
      SANDBOXD_WARM_POOL: `${shapeOf(resources)}:${POOL}`, SANDBOXD_WARM_POOL_REFILL_CONCURRENCY: String(concurrency),
    }, 300_000);
    admins.set(s, admin.SANDBOXD_ADMIN_LISTEN);
    servers.push(s);
    return s;
  };
  try {
    await run(await start(shape), shape);
  } finally {
    await Promise.allSettled(servers.map((x) => x.stop()));
    await emulator.close();
  }
}

async function benchLocalWarmPool(results: BenchResults): Promise<void> {
  const pooled = { cores: 1, memoryMib: 512, diskGib: 2 };
  const admin = await adminEnv();
  const s = await startSandboxd({
    ...admin,
    SANDBOXD_LOCAL_INSTANCE: LOCAL.instance, SANDBOXD_LOCAL_SUBNET: LOCAL.subnet, SANDBOXD_LOG_LEVEL: "warn",
    SANDBOXD_WARM_POOL: `${shapeOf(pooled)}:${POOL}`, SANDBOXD_LOCAL_PIDS_MAX: "256",
  });
  admins.set(s, admin.SANDBOXD_ADMIN_LISTEN);
  try {
    await poolReady(s, shapeOf(pooled), POOL);
    const warm = await createTimes(s, pooled, POOL);
    const cold = await createTimes(s, { cores: 2, memoryMib: 512, diskGib: 2 }, 5);
    const coldP50 = percentile(cold.ms, 50);
    results.add("local_create_ready_p50", coldP50, "ms", undefined, { samples: cold.ms.length, shape: "not pooled" });
    results.add("local_create_ready_p50_warm", percentile(warm.ms, 50), "ms", coldP50, { samples: warm.ms.length, target_max_ms: 15 });
  } finally {
    await s.stop();
    await new LocalRuntime(LOCAL).purge();
  }
}
