/**
 * `npm run bench`: measures sandboxd against raw baselines in one run, writes
 * bench/results.json and prints a table. Needs root (it makes real sandboxes).
 * Uses its own runtime instance and subnet so it never touches a running service.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalRuntime } from "../server/providers/local/index.js";
import { SessionRegistry } from "../server/ssh/index.js";
import { benchCreate, benchSsh, ensureHostFile } from "./local.js";
import { BenchResults } from "./lib/results.js";

const here = dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const results = new BenchResults();
  const runtime = new LocalRuntime({ instance: "sandboxd-bench", subnet: "198.18.250.0/24" });
  await runtime.start();
  const registry = new SessionRegistry();
  try {
    await benchCreate(runtime, results);
    const sb = await runtime.create({ cores: 2, memoryMiB: 2048, diskGiB: 4, internet: false, labels: { bench: "ssh" } });
    registry.register(sb.id, sb.ssh);
    const hostFile = await ensureHostFile("/var/tmp/sandboxd-bench-1g.bin");
    await benchSsh(sb, registry, results, hostFile);
    results.add("bench_peak_rss", process.resourceUsage().maxRSS / 1024, "MiB");
  } finally {
    await registry.closeAll();
    await runtime.purge();
  }
  results.write(join(here, "results.json"));
  results.printTable();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
