/**
 * Issue 3's figures: the same sandbox reached through the gRPC server
 * (connect-node client over HTTP/2) against raw ssh2 and scp in the same run.
 */
import { createReadStream, createWriteStream, rmSync, statSync } from "node:fs";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService, UploadRequestSchema, type UploadRequest } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import type { SandboxHandle } from "../server/providers/provider.js";
import { STREAM_WINDOW_OPTIONS } from "./lib/http2-window.js";
import { OpenSshFiles, rawExec, rawSsh2, remote, scpMs } from "./lib/baselines.js";
import type { BenchResults } from "./lib/results.js";
import { mbPerSecond, nowMs, percentile, timeEach } from "./lib/stats.js";
import { FILE_BYTES, STREAM_BYTES } from "./local.js";

type Api = Client<typeof SandboxService>;
const FILE_ROUNDS = 3;
const CONCURRENT = 100;
const runHost = (cmd: string, ...args: string[]) => promisify(execFile)(cmd, args);

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
    await timeEach(20, () => rawExec(raw, "true"));
    await timeEach(20, () => grpcExec(api, sb.id, ["true"]));
    const rawSamples: number[] = [];
    const ours: number[] = [];
    for (let batch = 0; batch < 10; batch++) {
      rawSamples.push(...(await timeEach(30, () => rawExec(raw, "true"))));
      ours.push(...(await timeEach(30, () => grpcExec(api, sb.id, ["true"]))));
    }
    const rawP50 = percentile(rawSamples, 50);
    results.add("grpc_exec_p50", percentile(ours, 50), "ms", rawP50, { target_max: `baseline + 1 ms = ${(rawP50 + 1).toFixed(2)}` });
    results.add("grpc_exec_p99", percentile(ours, 99), "ms", percentile(rawSamples, 99));

    let t0 = nowMs();
    await rawExec(raw, `head -c ${STREAM_BYTES} /dev/zero`);
    const rawMs = nowMs() - t0;
    t0 = nowMs();
    const got = await grpcExec(api, sb.id, ["head", "-c", String(STREAM_BYTES), "/dev/zero"]);
    const ourMs = nowMs() - t0;
    if (got !== STREAM_BYTES) throw new Error(`gRPC stream lost bytes: ${got}`);
    results.add("grpc_stream_throughput", mbPerSecond(STREAM_BYTES, ourMs), "MB/s", mbPerSecond(STREAM_BYTES, rawMs), { target_ratio_min: 0.8 });

    const target = "/home/sandbox/bench-grpc-1g";
    const local = `${hostFile}.grpc-down`;
    const settle = async () => {
      await grpcExec(api, sb.id, ["rm", "-f", target]);
      rmSync(local, { force: true });
      await runHost("sync");
    };
    const up: number[] = [], scpUp: number[] = [], down: number[] = [], scpDown: number[] = [];
    for (let round = 0; round < FILE_ROUNDS; round++) {
      await settle();
      scpUp.push(await scpMs(openssh, hostFile, remote(sb.ssh, target)));
      await settle();
      t0 = nowMs();
      const res = await api.upload(uploadMessages(sb.id, target, hostFile));
      up.push(nowMs() - t0);
      if (Number(res.bytesWritten) !== FILE_BYTES) throw new Error(`upload wrote ${res.bytesWritten}`);
      await runHost("sync");
      scpDown.push(await scpMs(openssh, remote(sb.ssh, target), local));
      rmSync(local, { force: true });
      await runHost("sync");
      t0 = nowMs();
      const out = createWriteStream(local);
      for await (const chunk of downloadData(api, sb.id, target)) if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
      await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
      down.push(nowMs() - t0);
      if (statSync(local).size !== FILE_BYTES) throw new Error("gRPC download lost bytes");
    }
    await settle();
    const rate = (ms: number[]) => mbPerSecond(FILE_BYTES, percentile(ms, 50));
    results.add("grpc_upload_throughput", rate(up), "MB/s", rate(scpUp), { target_ratio_min: 0.9, rounds: FILE_ROUNDS });
    results.add("grpc_download_throughput", rate(down), "MB/s", rate(scpDown), { target_ratio_min: 0.9, rounds: FILE_ROUNDS });

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
