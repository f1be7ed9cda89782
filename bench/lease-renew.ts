/**
 * Lease renewal at scale: 1,000 sandboxes renewed every 10 s (TTL 60 s) by a
 * load generator over one HTTP/2 connection, against a sandboxd child process
 * on the Proxmox provider and the PVE emulator. The sandboxes are paper
 * containers (no real sandbox behind them, made-up addresses), which holds
 * because a renewal never connects to a sandbox: the bench runs no Exec,
 * Upload or Download, and checks /proc/net/tcp that nothing connected there.
 *
 * Figures, over a window after a warm-up (adoption at start, the first sync's
 * config reads and the first lease writes are left out):
 * - lease_renew_pve_calls_per_s: emulator requests/s. Baseline: writing
 *   through on every renewal, 1000 / 10 s × 2 calls = 200/s. Stated bound of
 *   the write rule: 1000 × 2 calls per half TTL = 66.7/s.
 * - lease_renew_server_cpu_pct: the child's CPU (/proc/<pid>/stat) in % of one
 *   core. Baseline: the same server answering GetSandbox for the same
 *   sandboxes at the same rate right after the window: the cost of the RPCs
 *   themselves, without any lease work (the idle CPU is reported too).
 */
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { countsBetween, proxmoxEnvOf, startEmulator, type Emulator, type RequestCounts } from "../test/pve-emulator/index.js";
import { startSandboxd, type SandboxdProcess } from "../test/fixtures/sandboxd-process.js";
import { addPaperFleet } from "./lib/paper-fleet.js";
import { clockTicks, cpuPercent, cpuSeconds, tcpPeersIn } from "./lib/procfs.js";
import { Renewer, type RenewalCounts } from "./lib/renewer.js";
import type { BenchResults } from "./lib/results.js";
import { nowMs, percentile, round } from "./lib/stats.js";

const SANDBOXES = 1000;
const TTL_MS = 60_000;
const RENEW_EVERY_MS = 10_000;
const CALLS_PER_WRITE = 2; // GET config + PUT config with its digest
const WRITE_THROUGH = (SANDBOXES / (RENEW_EVERY_MS / 1000)) * CALLS_PER_WRITE;
const BOUND = (SANDBOXES * CALLS_PER_WRITE) / (TTL_MS / 2 / 1000);
const PAPER_PREFIX = [198, 19]; // where test/pve-emulator/paper.ts makes addresses up

type Api = Client<typeof SandboxService>;

function envSeconds(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return dflt;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new Error(`${name}: expected a positive number of seconds, got '${raw}'`);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  t: number;
  calls: RequestCounts;
  cpu: number;
  renewals: RenewalCounts;
  /** How many KeepAlive latencies were recorded by then. */
  latencies: number;
  benchCpu: NodeJS.CpuUsage;
}

/** Every id, paged through ListSandboxes: sandboxd adopted exactly the fleet. */
async function checkAdopted(api: Api, ids: string[]): Promise<void> {
  const seen = new Set<string>();
  let pageToken = "";
  do {
    const page = await api.listSandboxes({ pageSize: 1000, pageToken });
    for (const s of page.sandboxes) seen.add(s.id);
    pageToken = page.nextPageToken;
  } while (pageToken);
  const missing = ids.filter((id) => !seen.has(id));
  if (missing.length || seen.size !== ids.length) throw new Error(`sandboxd adopted ${seen.size} sandboxes, missing ${missing.length} of the ${ids.length} (e.g. ${missing.slice(0, 3).join(", ")})`);
}

/** Polls /proc/net/tcp every second for sockets to paper addresses (there must be none). */
function watchPaperAddresses(): { seen: Set<string>; stop(): void } {
  const seen = new Set<string>();
  const timer = setInterval(() => tcpPeersIn(PAPER_PREFIX).forEach((p) => seen.add(p)), 1000);
  return { seen, stop: () => clearInterval(timer) };
}

const perSecond = (counts: RequestCounts, ms: number) =>
  Object.fromEntries(Object.entries(counts.byRoute).sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, round(n / (ms / 1000), 2)]));

export async function benchLeaseRenewal(results: BenchResults): Promise<void> {
  const windowS = envSeconds("BENCH_LEASE_WINDOW_S", 120);
  const warmupS = envSeconds("BENCH_LEASE_WARMUP_S", 45);
  const idleS = envSeconds("BENCH_LEASE_IDLE_S", 10);
  const baselineS = envSeconds("BENCH_LEASE_BASELINE_S", 30);
  if (windowS < 90) process.stderr.write(`bench: lease window ${windowS} s is shorter than 90 s: a lease is written every 30-40 s, so expect noise\n`);
  const hz = clockTicks();
  // Its own runtime instance and subnet, although paper containers never start the runtime.
  const emu: Emulator = await startEmulator({
    port: 0, instance: "sandboxd-bench-lease-pve", subnet: "198.18.246.0/24", nodeMemoryMiB: 1024 * 1024,
  });
  let server: SandboxdProcess | undefined;
  const watch = watchPaperAddresses();
  try {
    const ids = addPaperFleet(emu, SANDBOXES, TTL_MS);
    const t0 = nowMs();
    server = await startSandboxd({ ...proxmoxEnvOf(emu.connection), SANDBOXD_LOG_LEVEL: "warn" }, 300_000);
    const startup = { s: (nowMs() - t0) / 1000, calls: emu.requestCount().total };
    process.stderr.write(`bench: sandboxd adopted the fleet in ${startup.s.toFixed(1)} s with ${startup.calls} Proxmox calls\n`);
    const api: Api = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${server.address}` }));
    await checkAdopted(api, ids);

    const renewer = new Renewer(api, ids, RENEW_EVERY_MS);
    const pid = server.pid;
    const sample = (): Sample => ({
      t: nowMs(), calls: emu.requestCount(), cpu: cpuSeconds(pid, hz), renewals: renewer.snapshot(), latencies: renewer.latencies.length, benchCpu: process.cpuUsage(),
    });
    const adopted = sample();
    renewer.start();
    process.stderr.write(`bench: renewing ${SANDBOXES} sandboxes every ${RENEW_EVERY_MS / 1000} s; warm-up ${warmupS} s, window ${windowS} s, then idle ${idleS} s\n`);
    await sleep(warmupS * 1000);
    const a = sample();
    await sleep(windowS * 1000);
    const b = sample();
    await renewer.stop();
    // Every lease now runs at least a TTL (60 s): the baseline and idle phases below fit in it.
    const reader = new Renewer(api, ids, RENEW_EVERY_MS, "getSandbox");
    reader.start();
    await sleep(5_000);
    const g0 = { t: nowMs(), cpu: cpuSeconds(pid, hz) };
    await sleep(baselineS * 1000);
    const g1 = { t: nowMs(), cpu: cpuSeconds(pid, hz) };
    await reader.stop();
    const c = sample();
    await sleep(idleS * 1000);
    const d = sample();
    await checkAdopted(api, ids); // nothing expired or was lost meanwhile
    if (reader.counts.failed > 0) process.stderr.write(`bench: WARNING: ${reader.counts.failed} GetSandbox calls failed: ${JSON.stringify(Object.fromEntries(reader.errors))}\n`);
    const getCpu = cpuPercent(g0.cpu, g1.cpu, g1.t - g0.t);

    const windowMs = b.t - a.t;
    const calls = countsBetween(a.calls, b.calls);
    const warmupCalls = countsBetween(adopted.calls, a.calls);
    const windowLatencies = renewer.latencies.slice(a.latencies, b.latencies);
    const idleCalls = countsBetween(c.calls, d.calls);
    const failures = renewer.counts.failed;
    const errors = Object.fromEntries(renewer.errors);
    if (failures > 0) process.stderr.write(`bench: WARNING: ${failures} KeepAlive calls failed: ${JSON.stringify(errors)}\n`);
    if (watch.seen.size > 0) process.stderr.write(`bench: WARNING: sockets to paper addresses seen: ${[...watch.seen].join(", ")}\n`);
    const puts = calls.byRoute["PUT /nodes/{node}/lxc/{vmid}/config"] ?? 0;
    results.add("lease_renew_pve_calls_per_s", calls.total / (windowMs / 1000), `calls/s (bound ${BOUND.toFixed(1)})`, WRITE_THROUGH, {
      note: `baseline: writing through on every renewal = ${SANDBOXES}/${RENEW_EVERY_MS / 1000} s × ${CALLS_PER_WRITE} calls = ${WRITE_THROUGH}/s (a model, not measured); ` +
        `stated bound: ${SANDBOXES} × ${CALLS_PER_WRITE} / (ttl/2 = ${TTL_MS / 2000} s) = ${BOUND.toFixed(1)}/s`,
      sandboxes: SANDBOXES, ttl_s: TTL_MS / 1000, renew_every_s: RENEW_EVERY_MS / 1000, window_s: round(windowMs / 1000, 1), warmup_s: warmupS,
      lease_writes_per_s: round(puts / (windowMs / 1000), 2),
      calls_per_s_by_route: perSecond(calls, windowMs),
      keepalives_in_window: b.renewals.sent - a.renewals.sent,
      keepalives_total: renewer.counts.sent, keepalive_failures: failures, keepalive_errors: errors,
      keepalive_p50_ms: round(percentile(windowLatencies, 50), 2), keepalive_p99_ms: round(percentile(windowLatencies, 99), 2),
      keepalive_max_ms: round(Math.max(...windowLatencies), 1),
      startup_s: round(startup.s, 1), startup_calls: startup.calls,
      warmup_calls_by_route: warmupCalls.byRoute, // the first sync re-reads every config once, and the first writes
      warmup_keepalive_max_ms: round(Math.max(0, ...renewer.latencies.slice(0, a.latencies)), 1),
      idle_calls_per_s: round(idleCalls.total / ((d.t - c.t) / 1000), 2),
      paper_address_sockets_seen: watch.seen.size,
    });
    const idleMs = d.t - c.t;
    const idleCpu = cpuPercent(c.cpu, d.cpu, idleMs);
    const benchCpuUs = b.benchCpu.user + b.benchCpu.system - (a.benchCpu.user + a.benchCpu.system);
    results.add("lease_renew_server_cpu_pct", cpuPercent(a.cpu, b.cpu, windowMs), "% of one core", getCpu > 0 ? getCpu : undefined, {
      baseline_is: `CPU of the same sandboxd answering GetSandbox for the same ${SANDBOXES} sandboxes at the same rate (${SANDBOXES / (RENEW_EVERY_MS / 1000)}/s) over ${round((g1.t - g0.t) / 1000, 1)} s right after the window: the RPCs without the lease work`,
      get_failures: reader.counts.failed,
      idle_cpu_pct: round(idleCpu, 3), idle_s: round(idleMs / 1000, 1), clock_ticks_per_s: hz,
      bench_process_cpu_pct: round((benchCpuUs / 1000 / windowMs) * 100, 1), // emulator + load generator, for context on a small machine
    });
  } catch (err) {
    if (server) process.stderr.write(`bench: sandboxd log tail:\n${server.logs().slice(-65_536)}\n`);
    throw err;
  } finally {
    watch.stop();
    await server?.stop();
    await emu.close();
  }
}
