/**
 * Issue 15's figures, same run, same sandbox: two sandboxd replicas on one
 * Proxmox (the emulator) run Exec of `true` in the same sandbox, so the only
 * difference between the two paths is the server in between.
 * - metrics_overhead_exec_p50: through a replica with metrics (admin listener)
 *   and tracing (every RPC a sampled span, exported over OTLP/protobuf to a
 *   receiver here) against one with both off (target ≤ 1.03×).
 * - proxy_exec_p50_nginx: through nginx (grpc_pass, h2c) in front of the plain
 *   replica against that replica directly (ratio reported).
 * Calls alternate one by one (A, B, A, B, …): drift and noise hit both alike.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { startSandboxd, type SandboxdProcess } from "../test/fixtures/sandboxd-process.js";
import { startOtlpReceiver } from "../test/fixtures/otlp-receiver.js";
import { startNginx, type Proxy } from "../test/fixtures/proxies.js";
import { proxmoxEnvOf, startEmulator } from "../test/pve-emulator/index.js";
import { execTrue, type Api } from "./lib/exec-true.js";
import type { BenchResults } from "./lib/results.js";
import { nowMs, percentile } from "./lib/stats.js";

const PVE = { instance: "sandboxd-bench-tel", subnet: "198.18.213.0/24" };
const WARMUP = 100;
const SAMPLES = 1000;

/** p50s of `a` and `b`, called alternately. */
async function alternate(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<{ a: number; b: number }> {
  for (let i = 0; i < WARMUP; i++) await Promise.all([a(), b()]);
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    for (const [fn, into] of (i % 2 ? [[a, ta], [b, tb]] : [[b, tb], [a, ta]]) as Array<[() => Promise<unknown>, number[]]>) {
      const t0 = nowMs();
      await fn();
      into.push(nowMs() - t0);
    }
  }
  return { a: percentile(ta, 50), b: percentile(tb, 50) };
}

export async function benchTelemetry(results: BenchResults): Promise<void> {
  const emulator = await startEmulator({ port: 0, nodes: 1, ...PVE });
  const receiver = await startOtlpReceiver();
  const servers: SandboxdProcess[] = [];
  let nginx: Proxy | undefined;
  try {
    const env = { ...proxmoxEnvOf(emulator.connection), SANDBOXD_LOG_LEVEL: "warn" };
    const off = await startSandboxd({ ...env, SANDBOXD_ADMIN_LISTEN: "off" }, 300_000);
    servers.push(off);
    // Exported as protobuf (the OTLP default) to the receiver, which keeps the bodies (about 1 KiB per span).
    const on = await startSandboxd({ ...env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, 300_000);
    servers.push(on);
    const api = (address: string): Api => createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${address}` }));
    const apiOff = api(off.address);
    const apiOn = api(on.address);
    const { sandbox } = await apiOff.createSandbox({ resources: { cores: 1, memoryMib: 512, diskGib: 1 }, labels: { bench: "telemetry" } });
    const id = sandbox!.id;

    const tel = await alternate(() => execTrue(apiOff, id), () => execTrue(apiOn, id));
    results.add("metrics_overhead_exec_p50", tel.b, "ms", tel.a, {
      target_ratio_max: 1.03, samples: SAMPLES, exported_span_batches: receiver.protobufBodies().length,
    });

    nginx = await startNginx({ upstreams: [off.address] });
    const apiNginx = api(nginx.address);
    const proxied = await alternate(() => execTrue(apiOff, id), () => execTrue(apiNginx, id));
    results.add("proxy_exec_p50_nginx", proxied.b, "ms", proxied.a, { proxy: "nginx grpc_pass, h2c both sides", samples: SAMPLES });
    await apiOff.destroySandbox({ sandboxId: id });
  } finally {
    await nginx?.stop();
    await Promise.all(servers.map((s) => s.stop()));
    await receiver.close();
    await emulator.close();
  }
}
