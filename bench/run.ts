/**
 * `npm run bench`: measures sandboxd against raw baselines in one run, writes
 * bench/results.json and prints a table. Needs root (it makes real sandboxes).
 * Uses its own runtime instance and subnet so it never touches a running service.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalRuntime } from "../server/providers/local/index.js";
import { SessionRegistry } from "../server/ssh/index.js";
import { createLogger } from "../server/api/logger.js";
import { loadConfig } from "../server/config/config.js";
import { startServer } from "../server/server.js";
import { benchGrpc, grpcClient } from "./grpc.js";
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
    const sb = await runtime.create({ cores: 2, memoryMiB: 8192, diskGiB: 4, internet: false, labels: { bench: "ssh" } });
    registry.register(sb.id, sb.ssh);
    const hostFile = await ensureHostFile("/var/tmp/sandboxd-bench-1g.bin");
    await benchSsh(sb, registry, results, hostFile);
    await registry.closeAll();
    await runtime.destroy(sb.id);
    await benchThroughServer(results, hostFile);
    results.add("bench_peak_rss", process.resourceUsage().maxRSS / 1024, "MiB");
  } finally {
    await registry.closeAll();
    await runtime.purge();
  }
  results.write(join(here, "results.json"));
  results.printTable();
}

/** The gRPC server in this process on its own runtime, so raw baselines can reach the same sandbox. */
async function benchThroughServer(results: BenchResults, hostFile: string): Promise<void> {
  const runtime = new LocalRuntime({ instance: "sandboxd-bench-grpc", subnet: "198.18.249.0/24" });
  const config = loadConfig({ SANDBOXD_LISTEN: "127.0.0.1:0", SANDBOXD_LOG_LEVEL: "warn" });
  const server = await startServer(config, createLogger("warn"), runtime);
  try {
    const api = grpcClient(server.address);
    const { sandbox } = await api.createSandbox({ resources: { cores: 2, memoryMib: 8192, diskGib: 4 }, labels: { bench: "grpc" } });
    const handle = await runtime.get(sandbox!.id);
    if (!handle) throw new Error("created sandbox not found in the runtime");
    await benchGrpc(api, handle, results, hostFile);
    await api.destroySandbox({ sandboxId: sandbox!.id });
  } finally {
    await server.shutdown();
    await runtime.purge();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
