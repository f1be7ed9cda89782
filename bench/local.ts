/**
 * Issue 2's figures, all on sandboxes of one local runtime in one run:
 * create→sshd-ready latency, and the SSH data plane (registry exec, streaming,
 * SFTP upload/download) against raw ssh2 and the OpenSSH tools on the same sandbox.
 */
import { createReadStream, createWriteStream, existsSync, statSync, rmSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import type { LocalRuntime } from "../server/providers/local/index.js";
import type { SandboxHandle, SandboxSpec } from "../server/providers/provider.js";
import { SessionRegistry, download, exec, upload } from "../server/ssh/index.js";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { OpenSshFiles, openSshStreamMs, rawExec, rawSsh2, remote, scpMs } from "./lib/baselines.js";
import type { BenchResults } from "./lib/results.js";
import { mbPerSecond, nowMs, percentile, timeEach } from "./lib/stats.js";

export const STREAM_BYTES = 1_000_000_000;
export const FILE_BYTES = 2 ** 30;
const FILE_ROUNDS = 3;
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
    // Exec latency: warm both paths, then alternate batches so drift hits both alike.
    await timeEach(20, () => rawExec(raw, "true"));
    await timeEach(20, () => registryExec(registry, sb.id, ["true"]));
    const rawSamples: number[] = [];
    const ourSamples: number[] = [];
    for (let batch = 0; batch < 10; batch++) {
      rawSamples.push(...(await timeEach(30, () => rawExec(raw, "true"))));
      ourSamples.push(...(await timeEach(30, () => registryExec(registry, sb.id, ["true"]))));
    }
    results.add("ssh_exec_p50", percentile(ourSamples, 50), "ms", percentile(rawSamples, 50), { target_ratio_max: 1.2 });
    results.add("ssh_exec_p99", percentile(ourSamples, 99), "ms", percentile(rawSamples, 99));

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

    // 1 GiB upload and download: SFTP through the registry vs OpenSSH scp. Disk
    // writeback makes single runs noisy, so rounds alternate and medians count.
    const target = "/home/sandbox/bench-1g";
    const local = `${hostFile}.down`;
    const settle = async () => {
      await registryExec(registry, sb.id, ["rm", "-f", target]);
      rmSync(local, { force: true });
      await runHost("sync");
    };
    const up: number[] = [];
    const scpUp: number[] = [];
    const down: number[] = [];
    const scpDown: number[] = [];
    for (let round = 0; round < FILE_ROUNDS; round++) {
      await settle();
      scpUp.push(await scpMs(openssh, hostFile, remote(sb.ssh, target)));
      await settle();
      let t0 = nowMs();
      await upload(registry, sb.id, { path: target, source: createReadStream(hostFile, { highWaterMark: 1 << 20 }) });
      up.push(nowMs() - t0);
      await runHost("sync");
      scpDown.push(await scpMs(openssh, remote(sb.ssh, target), local));
      rmSync(local, { force: true });
      await runHost("sync");
      t0 = nowMs();
      await pipeline(downloadData(registry, sb.id, target), createWriteStream(local));
      down.push(nowMs() - t0);
      if (statSync(local).size !== FILE_BYTES) throw new Error("download lost bytes");
    }
    await settle();
    const rate = (ms: number[]) => mbPerSecond(FILE_BYTES, percentile(ms, 50));
    results.add("ssh_upload_throughput", rate(up), "MB/s", rate(scpUp), { target_ratio_min: 1.0, rounds: FILE_ROUNDS });
    results.add("ssh_download_throughput", rate(down), "MB/s", rate(scpDown), { target_ratio_min: 1.0, rounds: FILE_ROUNDS });
  } finally {
    raw.end();
    openssh.cleanup();
  }
}

async function* downloadData(registry: SessionRegistry, id: string, path: string): AsyncGenerator<Buffer> {
  for await (const ev of download(registry, id, { path })) if (ev.type === "data") yield ev.data;
}

const runHost = (cmd: string, ...args: string[]) => promisify(execFile)(cmd, args);

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

export const devNull = () => new Writable({ write: (_c, _e, cb) => cb() });
