/**
 * Issue 4's figures: create→ready through the Proxmox provider against the
 * emulator with its default timings, compared with the emulator's own minimum
 * (the sum of its configured delays), and 20 concurrent creates from one template.
 */
import { proxmoxConfigOf, startEmulator, type Emulator } from "../test/pve-emulator/index.js";
import { ProxmoxProvider } from "../server/providers/proxmox/index.js";
import type { SandboxSpec } from "../server/providers/provider.js";
import type { BenchResults } from "./lib/results.js";
import { nowMs, percentile } from "./lib/stats.js";

const SPEC: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: { bench: "pve" } };
const SEQUENTIAL = 8;
const CONCURRENT = 20;

function providerFor(emu: Emulator): ProxmoxProvider {
  return new ProxmoxProvider(proxmoxConfigOf(emu.connection, { requestTimeoutMs: 30_000, createTimeoutMs: 600_000 }));
}

export async function benchPve(results: BenchResults): Promise<void> {
  const emu = await startEmulator({ port: 0, nodes: 1, instance: "sandboxd-bench-pve", subnet: "198.18.248.0/24" });
  const provider = providerFor(emu);
  try {
    await provider.start();
    const t = emu.emu.timing;
    // One create waits at least for the clone task, the start task and the address to appear.
    const minimum = t.cloneMs + t.startMs + t.ipDelayMs;
    const samples: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t0 = nowMs();
      const sb = await provider.create(SPEC);
      samples.push(nowMs() - t0);
      await provider.destroy(sb.id);
    }
    results.add("pve_create_ready_p50", percentile(samples, 50), "ms", minimum, { samples: SEQUENTIAL });
    results.add("pve_create_ready_p95", percentile(samples, 95), "ms", minimum, { samples: SEQUENTIAL });

    // Clones of one template hold its disk lock, so they run one after another on a real host too.
    const concurrentMinimum = CONCURRENT * t.cloneMs + t.startMs + t.ipDelayMs;
    const t0 = nowMs();
    const outcomes = await Promise.allSettled(Array.from({ length: CONCURRENT }, () => provider.create(SPEC)));
    const total = nowMs() - t0;
    const failures = outcomes.filter((o) => o.status === "rejected").length;
    results.add("pve_create_20_concurrent_total", total, "ms", concurrentMinimum, { failures, creates: CONCURRENT });
    await Promise.all(outcomes.map((o) => (o.status === "fulfilled" ? provider.destroy(o.value.id) : undefined)));
  } finally {
    await provider.close();
    await emu.close();
  }
}
