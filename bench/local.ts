/**
 * Issue 2's figures, all on sandboxes of one local runtime in one run:
 * create→sshd-ready latency, and the SSH data plane (registry exec, streaming,
 * SFTP upload/download) against raw ssh2 and the OpenSSH tools on the same sandbox.
 */
import { createReadStream, createWriteStream, existsSync, statSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { LocalRuntime } from "../server/providers/local/index.js";
import type { SandboxHandle, SandboxSpec } from "../server/providers/provider.js";
import { SessionRegistry, download, exec, upload } from "../server/ssh/index.js";
import { OpenSshFiles, openSshStreamMs, rawExec, rawSsh2 } from "./lib/baselines.js";
import { compareFileRounds, compareLatency, FILE_BYTES } from "./lib/compare.js";
import type { BenchResults } from "./lib/results.js";
import { mbPerSecond, nowMs, percentile } from "./lib/stats.js";

export const STREAM_BYTES = 1_000_000_000;
const SMALL: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: { bench: "create" } };

export async function benchCreate(runtime: LocalRuntime, results: BenchResults, count = 20): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    const sb = await runtime.create(SMALL);
    samples.push(nowMs() - t0);
    await runtime.destroy(sb.id);
  }
  results.add("local_create_ready_p50", percentile(samples, 50), "ms", undefined, { target: 300, samples: count });
  results.add("local_create_ready_p95", percentile(samples, 95), "ms", undefined, { samples: count });
}

/** Drains an exec stream and returns stdout bytes. */
async function registryExec(registry: SessionRegistry, id: string, argv: string[]): Promise<number> {
  let bytes = 0;
  for await (const ev of exec(registry, id, { argv })) {
    if (ev.type === "stdout") bytes += ev.data.length;
    else if (ev.type === "exited" && ev.exitCode !== 0) throw new Error(`${argv.join(" ")} failed: ${JSON.stringify(ev)}`);
  }
  return bytes;
}

export async function benchSsh(sb: SandboxHandle, registry: SessionRegistry, results: BenchResults, hostFile: string): Promise<void> {
  const raw = await rawSsh2(sb.ssh);
  const openssh = new OpenSshFiles(sb.ssh);
  try {
    const lat = await compareLatency(() => rawExec(raw, "true"), () => registryExec(registry, sb.id, ["true"]));
    results.add("ssh_exec_p50", percentile(lat.ours, 50), "ms", percentile(lat.raw, 50), { target_ratio_max: 1.2 });
    results.add("ssh_exec_p99", percentile(lat.ours, 99), "ms", percentile(lat.raw, 99));

    // 1 GB of stdout: registry vs raw ssh2 vs the OpenSSH client.
    const cmd = `head -c ${STREAM_BYTES} /dev/zero`;
    let t0 = nowMs();
    const rawBytes = await rawExec(raw, cmd);
    const rawMs = nowMs() - t0;
    t0 = nowMs();
    const ourBytes = await registryExec(registry, sb.id, ["head", "-c", String(STREAM_BYTES), "/dev/zero"]);
    const ourMs = nowMs() - t0;
    if (rawBytes !== STREAM_BYTES || ourBytes !== STREAM_BYTES) throw new Error(`stream lost bytes: raw ${rawBytes}, ours ${ourBytes}`);
    const sshMs = await openSshStreamMs(openssh, cmd);
    const rawRate = mbPerSecond(STREAM_BYTES, rawMs);
    const ourRate = mbPerSecond(STREAM_BYTES, ourMs);
    results.add("ssh_stream_throughput", ourRate, "MB/s", rawRate, { target_ratio_min: 0.9 });
    results.add("ssh_stream_throughput_vs_openssh", ourRate, "MB/s", mbPerSecond(STREAM_BYTES, sshMs));

    // 1 GiB upload and download: SFTP through the registry vs OpenSSH scp.
    const target = "/home/sandbox/bench-1g";
    const files = await compareFileRounds({
      ssh: sb.ssh, openssh, hostFile, target, suffix: "down",
      removeRemote: () => registryExec(registry, sb.id, ["rm", "-f", target]),
      upload: async () => void (await upload(registry, sb.id, { path: target, source: createReadStream(hostFile, { highWaterMark: 1 << 20 }) })),
      download: (local) => pipeline(downloadData(registry, sb.id, target), createWriteStream(local)),
    });
    results.add("ssh_upload_throughput", files.up, "MB/s", files.scpUp, { target_ratio_min: 1.0, rounds: files.rounds });
    results.add("ssh_download_throughput", files.down, "MB/s", files.scpDown, { target_ratio_min: 1.0, rounds: files.rounds });
  } finally {
    raw.end();
    openssh.cleanup();
  }
}

async function* downloadData(registry: SessionRegistry, id: string, path: string): AsyncGenerator<Buffer> {
  for await (const ev of download(registry, id, { path })) if (ev.type === "data") yield ev.data;
}

/** A 1 GiB file of random bytes on the host, made once and reused by later runs. */
export async function ensureHostFile(path: string): Promise<string> {
  if (existsSync(path) && statSync(path).size === FILE_BYTES) return path;
  const { randomFillSync } = await import("node:crypto");
  const chunk = Buffer.alloc(1 << 20);
  let left = FILE_BYTES;
  const out = createWriteStream(path);
  await pipeline(
    (async function* () {
      while (left > 0) {
        randomFillSync(chunk);
        left -= chunk.length;
        yield Buffer.from(chunk);
      }
    })(),
    out,
  );
  return path;
}

