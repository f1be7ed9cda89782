/**
 * Issue 14's figures: each client library against the raw generated stub of
 * its own language, same server (own thread), same sandbox, same run.
 *
 * - sdk_run_p50_{go,python,ts}: run("true") through the library against an
 *   Exec of `true` through the raw stub (target: raw + 0.5 ms). Go and
 *   Python run as their own programs (bench/sdk/), measuring both sides in
 *   alternating batches; TypeScript runs here.
 * - sdk_upload_throughput_python: 256 MiB through the library's upload
 *   against the raw stub's Upload, 1 MiB messages both (target ≥ 0.95×).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { SandboxdClient } from "../clients/ts/src/index.js";
import { LocalRuntime } from "../server/providers/local/index.js";
import { compareLatency } from "./lib/compare.js";
import type { BenchResults } from "./lib/results.js";
import { startServerThread } from "./lib/server-thread.js";
import { percentile } from "./lib/stats.js";

const run = promisify(execFile);
const INSTANCE = { instance: "sandboxd-bench-sdk", subnet: "198.18.212.0/24" };
const ROOT = new URL("..", import.meta.url).pathname;

function addRun(results: BenchResults, lang: string, raw: number[], sdk: number[]): void {
  const rawP50 = percentile(raw, 50);
  results.add(`sdk_run_p50_${lang}`, percentile(sdk, 50), "ms", rawP50, { target_max: `baseline + 0.5 ms = ${(rawP50 + 0.5).toFixed(2)}`, samples: sdk.length });
}

export async function benchSdk(results: BenchResults): Promise<void> {
  const server = await startServerThread(INSTANCE.instance, INSTANCE.subnet);
  try {
    const baseUrl = `http://${server.address}`;
    const raw = createClient(SandboxService, createGrpcTransport({ baseUrl }));
    const { sandbox } = await raw.createSandbox({ resources: { cores: 2, memoryMib: 2048, diskGib: 2 }, labels: { bench: "sdk" } });
    const sandboxId = sandbox!.id;
    const env = { ...process.env, SANDBOXD_ADDR: server.address, SANDBOX_ID: sandboxId, PATH: `/usr/local/go/bin:${process.env.PATH}` };

    // TypeScript, in this process.
    const client = new SandboxdClient({ address: server.address });
    const sb = await client.get(sandboxId);
    const rawTrue = async () => {
      for await (const m of raw.exec({ sandboxId, command: { case: "argv", value: { args: ["true"] } } })) {
        if (m.event.case === "exited") return;
      }
      throw new Error("no exited event");
    };
    const ts = await compareLatency(rawTrue, () => sb.run(["true"]), { warmup: 50 });
    addRun(results, "ts", ts.raw, ts.ours);
    sb.detach();
    client.close();

    // Go: its own program over grpc-go.
    const goOut = await run("go", ["run", "."], { cwd: `${ROOT}bench/sdk/go`, env, timeout: 600_000, maxBuffer: 16 << 20 });
    const go = JSON.parse(goOut.stdout) as { raw: number[]; sdk: number[] };
    addRun(results, "go", go.raw, go.sdk);

    // Python: its own program over grpcio.
    const pyOut = await run(`${ROOT}.tools/venv/bin/python`, [`${ROOT}bench/sdk/python_bench.py`], {
      env: { ...env, PYTHONPATH: `${ROOT}clients/python` }, timeout: 900_000, maxBuffer: 16 << 20,
    });
    const py = JSON.parse(pyOut.stdout) as { raw: number[]; sdk: number[]; upload_raw_mbps: number[]; upload_sdk_mbps: number[] };
    addRun(results, "python", py.raw, py.sdk);
    results.add("sdk_upload_throughput_python", percentile(py.upload_sdk_mbps, 50), "MB/s", percentile(py.upload_raw_mbps, 50), {
      target_ratio_min: 0.95, bytes: 256 * 2 ** 20, rounds: py.upload_sdk_mbps.length,
    });
    await raw.destroySandbox({ sandboxId });
  } finally {
    await server.stop();
    await new LocalRuntime(INSTANCE).purge();
  }
}
