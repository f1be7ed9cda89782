/**
 * Issue 15's figures, two sandboxd processes and nginx, same run:
 * - metrics_overhead_exec_p50: Exec of `true` on a server with metrics (admin
 *   listener) and tracing (every RPC a sampled span, exported over OTLP to a
 *   receiver here) against one with both off (target ≤ 1.03×).
 * - proxy_exec_p50_nginx: the same Exec through nginx (grpc_pass, h2c) in front
 *   of the plain server against that server directly (ratio reported).
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { LocalRuntime } from "../server/providers/local/index.js";
import { startSandboxd, type SandboxdProcess } from "../test/fixtures/sandboxd-process.js";
import { startOtlpReceiver } from "../test/fixtures/otlp-receiver.js";
import { startNginx, type Proxy } from "../test/fixtures/proxies.js";
import { compareLatency } from "./lib/compare.js";
import { execTrue } from "./lib/exec-true.js";
import type { BenchResults } from "./lib/results.js";
import { percentile } from "./lib/stats.js";

const OFF = { instance: "sandboxd-bench-tel-off", subnet: "198.18.213.0/24" };
const ON = { instance: "sandboxd-bench-tel-on", subnet: "198.18.214.0/24" };

export async function benchTelemetry(results: BenchResults): Promise<void> {
  const receiver = await startOtlpReceiver();
  const servers: SandboxdProcess[] = [];
  let nginx: Proxy | undefined;
  try {
    const env = (r: typeof OFF) => ({ SANDBOXD_LOCAL_INSTANCE: r.instance, SANDBOXD_LOCAL_SUBNET: r.subnet, SANDBOXD_LOG_LEVEL: "warn" });
    const off = await startSandboxd({ ...env(OFF), SANDBOXD_ADMIN_LISTEN: "off" });
    servers.push(off);
    // Export in protobuf (the OTLP default) to the receiver, which keeps the bodies (about 1 KiB per span).
    const on = await startSandboxd({ ...env(ON), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    servers.push(on);
    const api = (address: string) => createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${address}` }));
    const apiOff = api(off.address);
    const apiOn = api(on.address);
    const spec = { resources: { cores: 1, memoryMib: 512, diskGib: 1 }, labels: { bench: "telemetry" } };
    const [a, b] = await Promise.all([apiOff.createSandbox(spec), apiOn.createSandbox(spec)]);

    const lat = await compareLatency(() => execTrue(apiOff, a.sandbox!.id), () => execTrue(apiOn, b.sandbox!.id));
    results.add("metrics_overhead_exec_p50", percentile(lat.ours, 50), "ms", percentile(lat.raw, 50), {
      target_ratio_max: 1.03, exported_span_batches: receiver.protobufBodies().length,
    });

    nginx = await startNginx({ upstreams: [off.address] });
    const apiNginx = api(nginx.address);
    const viaProxy = await compareLatency(() => execTrue(apiOff, a.sandbox!.id), () => execTrue(apiNginx, a.sandbox!.id));
    results.add("proxy_exec_p50_nginx", percentile(viaProxy.ours, 50), "ms", percentile(viaProxy.raw, 50), { proxy: "nginx grpc_pass, h2c both sides" });
  } finally {
    await nginx?.stop();
    await Promise.all(servers.map((s) => s.stop()));
    for (const r of [OFF, ON]) await new LocalRuntime(r).purge();
    await receiver.close();
  }
}
