/**
 * `npm run bench`: measures sandboxd against raw baselines in one run, writes
 * bench/results.json and prints a table. Needs root (it makes real sandboxes).
 * Uses its own runtime instance and subnet so it never touches a running service.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalRuntime } from "../server/providers/local/index.js";
import { SessionRegistry } from "../server/ssh/index.js";
import { benchDataPath } from "./data-path.js";
import { benchPve } from "./pve.js";
import { benchAuth } from "./auth.js";
import { benchCommands } from "./commands.js";
import { benchFiles } from "./files.js";
import { benchSdk } from "./sdk.js";
import { benchTelemetry } from "./telemetry.js";
import { benchWarmPool } from "./warm-pool.js";
import { benchLeaseReap } from "./lease-reap.js";
import { benchLeaseRenewal } from "./lease-renew.js";
import { benchCreate, benchSsh, ensureHostFile } from "./local.js";
import { BenchResults } from "./lib/results.js";

const here = dirname(fileURLToPath(import.meta.url));

const PARTS = ["local", "grpc", "pve", "lease", "auth", "commands", "files", "sdk", "telemetry", "pool"];

/** `npm run bench` runs every part; `npm run bench -- grpc` (or `local`, `pve`, `lease`, `auth`, `commands`, `files`, `sdk`, `telemetry`, `pool`) just one. */
async function main(): Promise<void> {
  const only = process.argv[2];
  if (only !== undefined && !PARTS.includes(only)) throw new Error(`unknown part '${only}' (parts: ${PARTS.join(", ")})`);
  const results = new BenchResults();
  // The 1 GiB file only for the parts that move it.
  const hostFile = () => ensureHostFile("/var/tmp/sandboxd-bench-1g.bin");
  if (only === undefined || only === "local") await benchLocal(results, await hostFile());
  if (only === undefined || only === "grpc") await benchDataPath(results, await hostFile());
  if (only === undefined || only === "pve") await benchPve(results);
  if (only === undefined || only === "auth") await benchAuth(results);
  if (only === undefined || only === "commands") await benchCommands(results);
  if (only === undefined || only === "files") await benchFiles(results);
  if (only === undefined || only === "sdk") await benchSdk(results);
  if (only === undefined || only === "telemetry") await benchTelemetry(results);
  if (only === undefined || only === "pool") await benchWarmPool(results);
  if (only === undefined || only === "lease") {
    await benchLeaseRenewal(results);
    await benchLeaseReap(results);
  }
  results.add("bench_peak_rss", process.resourceUsage().maxRSS / 1024, "MiB");
  results.write(join(here, "results.json"));
  results.printTable();
}

async function benchLocal(results: BenchResults, hostFile: string): Promise<void> {
  const runtime = new LocalRuntime({ instance: "sandboxd-bench", subnet: "198.18.250.0/24" });
  await runtime.start();
  const registry = new SessionRegistry();
  try {
    await benchCreate(runtime, results);
    const sb = await runtime.create({ cores: 2, memoryMiB: 8192, diskGiB: 4, internet: false, labels: { bench: "ssh" } });
    registry.register(sb.id, sb.ssh);
    await benchSsh(sb, registry, results, hostFile);
  } finally {
    await registry.closeAll();
    await runtime.purge();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
