/**
 * Issue 13's figures, through the gRPC server (on its own thread) against raw
 * baselines on the same sandbox in the same run:
 *
 * - fs_stat_p50: Stat of a file, against an SFTP stat on an already open
 *   ssh2 SFTP session (target: raw + 1 ms).
 * - fs_list_10k: ListDir of a 10,000-file directory to its last batch,
 *   against `ls -la` of it through a raw ssh2 exec (target: ≤ 1.0×).
 * - archive_upload_10k_files / archive_download_10k_files: a 10,000-file
 *   tree moved with UploadArchive (host `tar c` streamed in) and
 *   DownloadArchive (streamed into host `tar x`), against
 *   `tar c | ssh sandbox tar x` and `ssh sandbox tar c | tar x` with the
 *   OpenSSH client (target: ≥ 1.0× the baseline's speed; reported as time,
 *   so ratio ≤ 1.0 is the target). The host's side of both is in tmpfs.
 *
 * fs_stat_p50 also reports the p50 of GetSandbox in the same run
 * (`unary_rpc_floor_ms`): the cost of any unary call through the server
 * (HTTP/2, connect, protobuf, auth, logging), SSH not involved.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { SFTPWrapper } from "ssh2";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { LocalRuntime } from "../server/providers/local/index.js";
import { OpenSshFiles, rawExec, rawSsh2 } from "./lib/baselines.js";
import { compareLatency } from "./lib/compare.js";
import { STREAM_WINDOW_OPTIONS } from "./lib/http2-window.js";
import type { BenchResults } from "./lib/results.js";
import { startServerThread } from "./lib/server-thread.js";
import { nowMs, percentile } from "./lib/stats.js";

type Api = Client<typeof SandboxService>;

const INSTANCE = { instance: "sandboxd-bench-files", subnet: "198.18.206.0/24" };
const FILES = 10_000;
const ROUNDS = 9;

async function run(api: Api, sandboxId: string, script: string): Promise<void> {
  for await (const m of api.exec({ sandboxId, command: { case: "shell", value: script } })) {
    if (m.event.case === "exited" && m.event.value.exitCode !== 0) throw new Error(`${script}: ${JSON.stringify(m.event.value)}`);
  }
}

/** Runs a host command with stdin from `input` (an async iterable) or stdout to `output`. */
function host(cmd: string, args: string[]) {
  const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve, reject) => {
    p.once("error", reject);
    p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`))));
  });
  return { p, exited };
}

/** Alternating rounds (drift hits both alike); medians count. */
async function rounds(raw: () => Promise<void>, ours: () => Promise<void>, between: () => Promise<void>) {
  const timed = async (fn: () => Promise<void>) => {
    await between();
    const t0 = nowMs();
    await fn();
    return nowMs() - t0;
  };
  await timed(raw); // warm-up
  await timed(ours);
  const r: number[] = [];
  const o: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    r.push(await timed(raw));
    o.push(await timed(ours));
  }
  return { raw: percentile(r, 50), ours: percentile(o, 50), rawRounds: r.map(Math.round), ourRounds: o.map(Math.round) };
}

export async function benchFiles(results: BenchResults): Promise<void> {
  const server = await startServerThread(INSTANCE.instance, INSTANCE.subnet);
  // The host's side of the trees lives in tmpfs: on this machine's disk, unpacking 10,000 files
  // takes the host 2-5 s of kernel time, which would swamp both figures alike.
  const work = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "sandboxd-bench-files-"));
  try {
    const api = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${server.address}`, nodeOptions: STREAM_WINDOW_OPTIONS }));
    const { sandbox } = await api.createSandbox({ resources: { cores: 2, memoryMib: 2048, diskGib: 2 }, labels: { bench: "files" } });
    const sandboxId = sandbox!.id;
    const target = await server.sshTarget(sandboxId);
    const raw = await rawSsh2(target);
    const openssh = new OpenSshFiles(target);
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => raw.sftp((err, s) => (err ? reject(err) : resolve(s))));
      await run(api, sandboxId, `mkdir -p many && cd many && seq -f 'file-%05g.txt' 1 ${FILES} | xargs touch && echo hi > ~/one.txt`);

      const home = `/home/${target.username}`;
      const stat = await compareLatency(
        () => new Promise<void>((resolve, reject) => sftp.stat(`${home}/one.txt`, (err) => (err ? reject(err) : resolve()))),
        () => api.stat({ sandboxId, path: "one.txt" }),
        { warmup: 200 },
      );
      const rawStat = percentile(stat.raw, 50);
      // The floor under any unary call through the server (no SSH at all), same run: what Stat adds is the difference.
      const floor = await compareLatency(async () => {}, () => api.getSandbox({ sandboxId }), { warmup: 200 });
      results.add("fs_stat_p50", percentile(stat.ours, 50), "ms", rawStat, {
        target_max: `baseline + 1 ms = ${(rawStat + 1).toFixed(2)}`, samples: stat.ours.length,
        unary_rpc_floor_ms: Number(percentile(floor.ours, 50).toFixed(3)),
      });

      const list = await rounds(
        async () => void (await rawExec(raw, `ls -la ${home}/many`)),
        async () => {
          let n = 0;
          for await (const m of api.listDir({ sandboxId, path: "many" })) n += m.entries.length;
          if (n !== FILES) throw new Error(`listed ${n} entries`);
        },
        async () => {},
      );
      results.add("fs_list_10k", list.ours, "ms", list.raw, { target_ratio_max: 1.0, entries: FILES, rounds: ROUNDS, round_ms: { list_dir: list.ourRounds, ls_la: list.rawRounds } });

      // The tree to move: 100 directories of 100 small files (a source checkout's shape).
      const src = join(work, "src");
      for (let d = 0; d < 100; d++) {
        mkdirSync(join(src, `d${d}`), { recursive: true });
        for (let f = 0; f < FILES / 100; f++) writeFileSync(join(src, `d${d}`, `f${f}.txt`), `file ${d}/${f} ${"x".repeat((d * 31 + f * 7) % 900)}\n`);
      }
      const sshArgs = (cmd: string) => [...openssh.options(), `${target.username}@${target.host}`, cmd];
      const up = await rounds(
        async () => {
          // tar c | ssh sandbox tar x
          const c = host("tar", ["-c", "-C", src, "."]);
          const x = host("ssh", sshArgs("mkdir -p raw-up && tar -x -C raw-up"));
          c.p.stdout.pipe(x.p.stdin);
          await Promise.all([c.exited, x.exited]);
        },
        async () => {
          const c = host("tar", ["-c", "-C", src, "."]);
          async function* reqs() {
            yield { part: { case: "header" as const, value: { sandboxId, path: "our-up" } } };
            for await (const chunk of c.p.stdout) yield { part: { case: "data" as const, value: chunk as Buffer } };
          }
          await Promise.all([api.uploadArchive(reqs()), c.exited]);
        },
        () => run(api, sandboxId, "rm -rf raw-up our-up && sync"),
      );
      results.add("archive_upload_10k_files", up.ours, "ms", up.raw, { target_ratio_max: 1.0, files: FILES, rounds: ROUNDS, round_ms: { upload_archive: up.ourRounds, tar_ssh: up.rawRounds } });

      await run(api, sandboxId, "rm -rf tree && mkdir tree && cd tree && for d in $(seq 0 99); do mkdir d$d; for f in $(seq 0 99); do echo \"file $d/$f\" > d$d/f$f.txt; done; done");
      const out = join(work, "out");
      const down = await rounds(
        async () => {
          const s = host("ssh", sshArgs("tar -c -C tree ."));
          const x = host("tar", ["-x", "-C", out]);
          s.p.stdout.pipe(x.p.stdin);
          await Promise.all([s.exited, x.exited]);
        },
        async () => {
          const x = host("tar", ["-x", "-C", out]);
          for await (const m of api.downloadArchive({ sandboxId, path: "tree" })) {
            if (m.part.case === "data" && !x.p.stdin.write(m.part.value)) await new Promise((r) => x.p.stdin.once("drain", r));
          }
          x.p.stdin.end();
          await x.exited;
        },
        async () => {
          rmSync(out, { recursive: true, force: true });
          mkdirSync(out);
        },
      );
      results.add("archive_download_10k_files", down.ours, "ms", down.raw, { target_ratio_max: 1.0, files: FILES, rounds: ROUNDS, round_ms: { download_archive: down.ourRounds, ssh_tar: down.rawRounds } });
    } finally {
      raw.end();
      openssh.cleanup();
    }
    await api.destroySandbox({ sandboxId });
  } finally {
    rmSync(work, { recursive: true, force: true });
    await server.stop();
    await new LocalRuntime(INSTANCE).purge();
  }
}
