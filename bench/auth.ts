/**
 * Issue 11's figure: Exec latency ("true") through a sandboxd process with
 * API token auth on, against one without auth, same run, same kind of
 * sandbox; samples interleave in batches (compareLatency).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { mintToken } from "../server/auth/index.js";
import { LocalRuntime } from "../server/providers/local/index.js";
import { startSandboxd, type SandboxdProcess } from "../test/fixtures/sandboxd-process.js";
import { compareLatency } from "./lib/compare.js";
import { execTrue } from "./lib/exec-true.js";
import type { BenchResults } from "./lib/results.js";
import { percentile } from "./lib/stats.js";

const OFF = { instance: "sandboxd-bench-noauth", subnet: "198.18.176.0/24" };
const ON = { instance: "sandboxd-bench-auth", subnet: "198.18.177.0/24" };

export async function benchAuth(results: BenchResults): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-bench-auth-"));
  const { token, line } = mintToken("bench", "user", "bench");
  // A realistic file: the bench's token among a hundred others.
  const others = Array.from({ length: 99 }, (_, i) => mintToken(`t${i}`, "user", `n${i}`).line);
  fs.writeFileSync(path.join(dir, "tokens"), [...others.slice(0, 50), line, ...others.slice(50)].join("\n") + "\n", { mode: 0o600 });
  const servers: SandboxdProcess[] = [];
  try {
    const env = (r: typeof OFF) => ({ SANDBOXD_LOCAL_INSTANCE: r.instance, SANDBOXD_LOCAL_SUBNET: r.subnet, SANDBOXD_LOG_LEVEL: "warn" });
    const off = await startSandboxd(env(OFF));
    servers.push(off);
    const on = await startSandboxd({ ...env(ON), SANDBOXD_AUTH_TOKENS_FILE: path.join(dir, "tokens") });
    servers.push(on);
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const apiOff = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${off.address}` }));
    const apiOn = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${on.address}`, interceptors: [bearer] }));
    const spec = { resources: { cores: 1, memoryMib: 512, diskGib: 1 }, labels: { bench: "auth" } };
    const [a, b] = await Promise.all([apiOff.createSandbox(spec), apiOn.createSandbox(spec)]);
    const lat = await compareLatency(() => execTrue(apiOff, a.sandbox!.id), () => execTrue(apiOn, b.sandbox!.id));
    results.add("auth_exec_p50", percentile(lat.ours, 50), "ms", percentile(lat.raw, 50), { target_ratio_max: 1.02, tokens_in_file: 100 });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    for (const r of [OFF, ON]) await new LocalRuntime(r).purge();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
