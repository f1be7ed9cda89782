/**
 * Issue 3's figures: the same sandbox reached through the gRPC server
 * (connect-node client over HTTP/2) against raw ssh2 and scp in the same run.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { create } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService, UploadRequestSchema, type UploadRequest } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import type { SandboxHandle } from "../server/providers/provider.js";
import { STREAM_WINDOW_OPTIONS } from "./lib/http2-window.js";
import { OpenSshFiles, rawExec, rawSsh2 } from "./lib/baselines.js";
import { compareFileRounds, compareLatency, FILE_BYTES } from "./lib/compare.js";
import type { BenchResults } from "./lib/results.js";
import { mbPerSecond, nowMs, percentile, timeEach } from "./lib/stats.js";
import { STREAM_BYTES } from "./local.js";

type Api = Client<typeof SandboxService>;
const CONCURRENT = 100;

export function grpcClient(address: string): Api {
  return createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${address}`, nodeOptions: STREAM_WINDOW_OPTIONS }));
}

/** Runs a command through Exec; returns stdout bytes, failing on a non-zero exit. */
async function grpcExec(api: Api, sandboxId: string, args: string[]): Promise<number> {
  let bytes = 0;
  for await (const res of api.exec({ sandboxId, command: { case: "argv", value: { args } } })) {
    const ev = res.event;
    if (ev.case === "stdout") bytes += ev.value.length;
    else if (ev.case === "exited" && ev.value.exitCode !== 0) throw new Error(`${args.join(" ")}: ${JSON.stringify(ev.value)}`);
  }
  return bytes;
}

async function* uploadMessages(sandboxId: string, path: string, file: string): AsyncGenerator<UploadRequest> {
  yield create(UploadRequestSchema, { part: { case: "header", value: { sandboxId, path } } });
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    yield create(UploadRequestSchema, { part: { case: "data", value: chunk as Buffer } });
  }
}

async function* downloadData(api: Api, sandboxId: string, path: string): AsyncGenerator<Uint8Array> {
  for await (const res of api.download({ sandboxId, path })) if (res.part.case === "data") yield res.part.value;
}

export async function benchGrpc(api: Api, sb: Pick<SandboxHandle, "id" | "ssh">, results: BenchResults, hostFile: string): Promise<void> {
  const raw = await rawSsh2(sb.ssh);
  const openssh = new OpenSshFiles(sb.ssh);
  try {
    const lat = await compareLatency(() => rawExec(raw, "true"), () => grpcExec(api, sb.id, ["true"]));
    const rawP50 = percentile(lat.raw, 50);
    results.add("grpc_exec_p50", percentile(lat.ours, 50), "ms", rawP50, { target_max: `baseline + 1 ms = ${(rawP50 + 1).toFixed(2)}` });
    results.add("grpc_exec_p99", percentile(lat.ours, 99), "ms", percentile(lat.raw, 99));

    let t0 = nowMs();
    await rawExec(raw, `head -c ${STREAM_BYTES} /dev/zero`);
    const rawMs = nowMs() - t0;
    t0 = nowMs();
    const got = await grpcExec(api, sb.id, ["head", "-c", String(STREAM_BYTES), "/dev/zero"]);
    const ourMs = nowMs() - t0;
    if (got !== STREAM_BYTES) throw new Error(`gRPC stream lost bytes: ${got}`);
    results.add("grpc_stream_throughput", mbPerSecond(STREAM_BYTES, ourMs), "MB/s", mbPerSecond(STREAM_BYTES, rawMs), { target_ratio_min: 0.8 });

    const target = "/home/sandbox/bench-grpc-1g";
    const files = await compareFileRounds({
      ssh: sb.ssh, openssh, hostFile, target, suffix: "grpc-down",
      removeRemote: () => grpcExec(api, sb.id, ["rm", "-f", target]),
      upload: async () => {
        const res = await api.upload(uploadMessages(sb.id, target, hostFile));
        if (Number(res.bytesWritten) !== FILE_BYTES) throw new Error(`upload wrote ${res.bytesWritten}`);
      },
      download: (local) => pipeline(downloadData(api, sb.id, target), createWriteStream(local)),
    });
    results.add("grpc_upload_throughput", files.up, "MB/s", files.scpUp, { target_ratio_min: 0.9, rounds: files.rounds });
    results.add("grpc_download_throughput", files.down, "MB/s", files.scpDown, { target_ratio_min: 0.9, rounds: files.rounds });

    // 100 Exec streams at once on one sandbox; baseline: the same command alone.
    const cmd = ["sh", "-c", "sleep 0.2; echo ok"];
    const alone = await timeEach(5, () => grpcExec(api, sb.id, cmd));
    let failures = 0;
    const latencies = await Promise.all(
      Array.from({ length: CONCURRENT }, async () => {
        const start = nowMs();
        try {
          if ((await grpcExec(api, sb.id, cmd)) !== 3) failures++;
        } catch {
          failures++;
        }
        return nowMs() - start;
      }),
    );
    results.add("grpc_concurrent_exec_p99", percentile(latencies, 99), "ms", percentile(alone, 50), { failures, streams: CONCURRENT });
  } finally {
    raw.end();
    openssh.cleanup();
  }
}
