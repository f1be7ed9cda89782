/**
 * The comparisons both the SSH and the gRPC benchmark make against raw
 * baselines on the same sandbox: exec latency in alternating batches, and
 * 1 GiB file rounds against OpenSSH scp.
 */
import { execFile } from "node:child_process";
import { rmSync, statSync } from "node:fs";
import { promisify } from "node:util";
import type { SshTarget } from "../../server/providers/provider.js";
import { type OpenSshFiles, remote, scpMs } from "./baselines.js";
import { mbPerSecond, nowMs, percentile, timeEach } from "./stats.js";

export const FILE_BYTES = 2 ** 30;
const FILE_ROUNDS = 3;

const runHost = (cmd: string, ...args: string[]) => promisify(execFile)(cmd, args);

/**
 * Warms both paths (20 calls each unless `warmup` says more), then alternates
 * batches so drift hits both alike. Samples in ms.
 */
export async function compareLatency(raw: () => Promise<unknown>, ours: () => Promise<unknown>, { warmup = 20 } = {}) {
  await timeEach(warmup, raw);
  await timeEach(warmup, ours);
  const rawSamples: number[] = [];
  const ourSamples: number[] = [];
  for (let batch = 0; batch < 10; batch++) {
    rawSamples.push(...(await timeEach(30, raw)));
    ourSamples.push(...(await timeEach(30, ours)));
  }
  return { raw: rawSamples, ours: ourSamples };
}

export interface FileRoundsOptions {
  ssh: SshTarget;
  openssh: OpenSshFiles;
  /** The host's 1 GiB source file; downloads go to `${hostFile}.<suffix>`. */
  hostFile: string;
  /** Path in the sandbox. */
  target: string;
  suffix: string;
  removeRemote(): Promise<unknown>;
  upload(): Promise<void>;
  /** Downloads `target` into the given host path. */
  download(local: string): Promise<void>;
}

/**
 * Upload and download rounds, ours against scp, alternating. Disk writeback
 * makes single runs noisy, so every transfer starts synced and medians count.
 * Returns MB/s: { up, scpUp, down, scpDown }.
 */
export async function compareFileRounds(o: FileRoundsOptions) {
  const local = `${o.hostFile}.${o.suffix}`;
  const settle = async () => {
    await o.removeRemote();
    rmSync(local, { force: true });
    await runHost("sync");
  };
  const up: number[] = [], scpUp: number[] = [], down: number[] = [], scpDown: number[] = [];
  for (let round = 0; round < FILE_ROUNDS; round++) {
    await settle();
    scpUp.push(await scpMs(o.openssh, o.hostFile, remote(o.ssh, o.target)));
    await settle();
    let t0 = nowMs();
    await o.upload();
    up.push(nowMs() - t0);
    await runHost("sync");
    scpDown.push(await scpMs(o.openssh, remote(o.ssh, o.target), local));
    rmSync(local, { force: true });
    await runHost("sync");
    t0 = nowMs();
    await o.download(local);
    down.push(nowMs() - t0);
    if (statSync(local).size !== FILE_BYTES) throw new Error(`download of ${o.target} lost bytes`);
  }
  await settle();
  const rate = (ms: number[]) => mbPerSecond(FILE_BYTES, percentile(ms, 50));
  return { rounds: FILE_ROUNDS, up: rate(up), scpUp: rate(scpUp), down: rate(down), scpDown: rate(scpDown) };
}
