/**
 * Issue 17's figures: sandboxd's data path measured like a user. sandboxd runs
 * as its own process (startSandboxd); the clients are programs of their own
 * (bench/data/: Go over grpc-go, Python over grpcio, TypeScript over
 * connect-node, each through its client library); the raw baselines (a bare
 * ssh2 connection, OpenSSH's scp) reach the same sandbox in the same run.
 *
 * For each client: Exec p50/p99 of `true` (alternating batches with raw ssh2),
 * 1 GB stream, 1 GiB Upload and Download rounds (against scp), 100 concurrent
 * Execs; and sandboxd's CPU (user + system, from /proc) per exec and per GB
 * moved, against the raw ssh2 client's CPU for the same work. Names without a
 * suffix are the Go client's (the reference user); `_ts` and `_python` the others'.
 * Last, the Exec phase breakdown from sandboxd's debug log (exec-phases.ts).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Client } from "ssh2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { LocalRuntime } from "../server/providers/local/index.js";
import type { SshTarget } from "../server/providers/provider.js";
import { startSandboxd, type SandboxdProcess } from "../test/fixtures/sandboxd-process.js";
import { OpenSshFiles, rawExec, rawSsh2 } from "./lib/baselines.js";
import { compareFileRounds, FILE_BYTES } from "./lib/compare.js";
import { startDataClient, type DataClient } from "./lib/data-client.js";
import { localSshTarget } from "./lib/local-target.js";
import { clockTicks, cpuSeconds } from "./lib/procfs.js";
import type { BenchResults } from "./lib/results.js";
import { rawSftpCpu } from "./lib/sftp-cpu.js";
import { mbPerSecond, nowMs, ownCpu, percentile, timeEach } from "./lib/stats.js";
import { STREAM_BYTES } from "./local.js";

const INSTANCE = { instance: "sandboxd-bench-grpc", subnet: "198.18.249.0/24" };
const ROOT = new URL("..", import.meta.url).pathname;
const CONCURRENT = 100;
const SLOW = ["sh", "-c", "sleep 0.2; echo ok"];
const run = promisify(execFile);
const GB = 1e9;

export async function benchDataPath(results: BenchResults, hostFile: string): Promise<void> {
  await new LocalRuntime(INSTANCE).purge(); // a killed run's leftovers
  const work = mkdtempSync(join(tmpdir(), "sandboxd-bench-data-"));
  const env = { SANDBOXD_LOCAL_INSTANCE: INSTANCE.instance, SANDBOXD_LOCAL_SUBNET: INSTANCE.subnet, SANDBOXD_LOG_LEVEL: "warn" };
  let server: SandboxdProcess | undefined = await startSandboxd(env);
  let raw: Client | undefined;
  const clients: DataClient[] = [];
  let openssh: OpenSshFiles | undefined;
  try {
    const api = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${server.address}` }));
    const { sandbox } = await api.createSandbox({ resources: { cores: 2, memoryMib: 8192, diskGib: 4 }, labels: { bench: "data" }, leaseTtl: { seconds: 3600n } });
    const sandboxId = sandbox!.id;
    const ssh = await localSshTarget(INSTANCE.instance, sandboxId);
    raw = await rawSsh2(ssh);
    openssh = new OpenSshFiles(ssh);
    const hz = clockTicks();
    const pid = server.pid;
    const serverCpu = async <T>(fn: () => Promise<T>) => {
      const before = cpuSeconds(pid, hz);
      const value = await fn();
      return { cpu: cpuSeconds(pid, hz) - before, value };
    };

    // The raw ssh2 client's CPU per GB moved over SFTP: what decrypting and encrypting SSH costs at least.
    const sftpCpu = await rawSftpCpu(raw, hostFile, "/home/sandbox/bench-sftp-cpu", join(work, "sftp-down"));

    const clientEnv = { SANDBOXD_ADDR: server.address, SANDBOX_ID: sandboxId };
    await run("go", ["build", "-o", join(work, "data-go"), "."], { cwd: `${ROOT}bench/data/go`, env: { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH}` } });
    clients.push(await startDataClient("go", join(work, "data-go"), [], clientEnv, ROOT));
    clients.push(await startDataClient("ts", "node", ["--import", "tsx", "bench/data/ts_client.ts"], clientEnv, ROOT));
    clients.push(await startDataClient("python", `${ROOT}.tools/venv/bin/python`, ["bench/data/python_client.py"], { ...clientEnv, PYTHONPATH: `${ROOT}clients/python` }, ROOT));

    for (const c of clients) {
      const sfx = c.name === "go" ? "" : `_${c.name}`;
      const tag = { client: c.name };

      // Exec latency, alternating batches of 30 so drift hits both alike.
      await timeEach(20, () => rawExec(raw!, "true"));
      await c.send({ op: "exec", n: 20 });
      const rawMs: number[] = [];
      const ours: number[] = [];
      let rawCpu = 0;
      let ourCpu = 0;
      for (let batch = 0; batch < 10; batch++) {
        const r = await ownCpu(() => timeEach(30, () => rawExec(raw!, "true")));
        rawMs.push(...r.value);
        rawCpu += r.cpu;
        const o = await serverCpu(() => c.send<{ ms: number[] }>({ op: "exec", n: 30 }));
        ours.push(...o.value.ms);
        ourCpu += o.cpu;
      }
      const rawP50 = percentile(rawMs, 50);
      results.add(`grpc_exec_p50${sfx}`, percentile(ours, 50), "ms", rawP50, { ...tag, target_max: `baseline + 1 ms = ${(rawP50 + 1).toFixed(2)}` });
      results.add(`grpc_exec_p99${sfx}`, percentile(ours, 99), "ms", percentile(rawMs, 99), tag);
      results.add(`grpc_exec_server_cpu_us${sfx}`, (ourCpu / ours.length) * 1e6, "us", (rawCpu / rawMs.length) * 1e6, { ...tag, baseline_is: "raw ssh2 client CPU per exec" });

      // One stream of STREAM_BYTES from /dev/zero.
      let t0 = nowMs();
      const rs = await ownCpu(() => rawExec(raw!, `head -c ${STREAM_BYTES} /dev/zero`));
      const rawStreamMs = nowMs() - t0;
      if (rs.value !== STREAM_BYTES) throw new Error(`raw stream lost bytes: ${rs.value}`);
      const st = await serverCpu(() => c.send<{ ms: number; bytes: number }>({ op: "stream", bytes: STREAM_BYTES }));
      if (st.value.bytes !== STREAM_BYTES) throw new Error(`${c.name} stream lost bytes: ${st.value.bytes}`);
      results.add(`grpc_stream_throughput${sfx}`, mbPerSecond(STREAM_BYTES, st.value.ms), "MB/s", mbPerSecond(STREAM_BYTES, rawStreamMs), { ...tag, target_ratio_min: 0.8 });
      results.add(`grpc_stream_server_cpu_s_per_gb${sfx}`, st.cpu / (STREAM_BYTES / GB), "s/GB", rs.cpu / (STREAM_BYTES / GB), { ...tag, target_ratio_max: 1.5, baseline_is: "raw ssh2 client CPU" });

      // 1 GiB Upload and Download rounds against scp; sandboxd's CPU summed over ours.
      const target = "/home/sandbox/bench-data-1g";
      let upCpu = 0;
      let downCpu = 0;
      const files = await compareFileRounds({
        ssh, openssh, hostFile, target, suffix: `data-${c.name}`,
        removeRemote: () => rawExec(raw!, `rm -f ${target}`),
        upload: async () => {
          const r = await serverCpu(() => c.send<{ bytes: number }>({ op: "upload", local: hostFile, remote: target }));
          if (r.value.bytes !== FILE_BYTES) throw new Error(`${c.name} upload wrote ${r.value.bytes}`);
          upCpu += r.cpu;
        },
        download: async (local) => {
          const r = await serverCpu(() => c.send<{ bytes: number }>({ op: "download", remote: target, local }));
          downCpu += r.cpu;
        },
      });
      const perGb = (cpu: number) => cpu / files.rounds / (FILE_BYTES / GB);
      results.add(`grpc_upload_throughput${sfx}`, files.up, "MB/s", files.scpUp, { ...tag, target_ratio_min: 0.9, rounds: files.rounds });
      results.add(`grpc_download_throughput${sfx}`, files.down, "MB/s", files.scpDown, { ...tag, target_ratio_min: 0.9, rounds: files.rounds });
      results.add(`grpc_upload_server_cpu_s_per_gb${sfx}`, perGb(upCpu), "s/GB", sftpCpu.upPerGb, { ...tag, target_ratio_max: 1.5, baseline_is: "raw ssh2 SFTP client CPU" });
      results.add(`grpc_download_server_cpu_s_per_gb${sfx}`, perGb(downCpu), "s/GB", sftpCpu.downPerGb, { ...tag, target_ratio_max: 1.5, baseline_is: "raw ssh2 SFTP client CPU" });

      // 100 Exec streams at once; baseline: the same command alone.
      const alone: number[] = [];
      for (let i = 0; i < 5; i++) alone.push(...(await c.send<{ ms: number[] }>({ op: "concurrent", n: 1, args: SLOW })).ms);
      const many = await c.send<{ ms: number[]; failures: number }>({ op: "concurrent", n: CONCURRENT, args: SLOW });
      results.add(`grpc_concurrent_exec_p99${sfx}`, percentile(many.ms, 99), "ms", percentile(alone, 99), { ...tag, failures: many.failures, streams: CONCURRENT, target_ratio_max: 2 });
    }
    for (const c of clients.splice(0)) await c.quit();

    // The phase breakdown: sandboxd again, at debug level (its log costs CPU, so not above), same sandbox.
    await server.stop();
    server = await startSandboxd({ ...env, SANDBOXD_LOG_LEVEL: "debug" });
    const go = await startDataClient("go", join(work, "data-go"), [], { ...clientEnv, SANDBOXD_ADDR: server.address }, ROOT);
    clients.push(go);
    await go.send({ op: "exec", n: 20 });
    const skip = server.logs().length;
    await go.send({ op: "exec", n: 200 });
    addPhases(results, server.logs().slice(skip));
    await createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${server.address}` })).destroySandbox({ sandboxId });
  } finally {
    for (const c of clients) await c.quit().catch(() => {});
    raw?.end();
    openssh?.cleanup();
    await server?.stop();
    await new LocalRuntime(INSTANCE).purge();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Median of each Exec phase over the "exec phases" debug lines in `log`. */
function addPhases(results: BenchResults, log: string): void {
  const byPhase = new Map<string, number[]>();
  for (const line of log.split("\n")) {
    if (!line.includes('"exec phases"')) continue;
    const { phases } = JSON.parse(line) as { phases: Record<string, number> };
    for (const [k, v] of Object.entries(phases)) byPhase.set(k, [...(byPhase.get(k) ?? []), v]);
  }
  if (byPhase.size === 0) throw new Error("sandboxd logged no exec phases at debug level");
  for (const [k, v] of byPhase) results.add(`grpc_exec_phase_${k}_p50`, percentile(v, 50), "ms", undefined, { samples: v.length });
}
