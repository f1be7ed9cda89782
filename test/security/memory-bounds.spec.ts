/**
 * Attack: make sandboxd allocate memory by the sandbox's say-so. Output is
 * bounded by the Exec's caps and the SSH window; stderr before the wrapper's
 * header once was not (1 GiB there grew sandboxd by 1.3 GB), and a planted rc
 * file could write it. sandboxd runs in this process (startE2E), so its RSS is
 * ours: it is sampled while a sandbox writes 1 GiB at it in every way it can,
 * and must stay flat. (The SFTP side, a server advertising 64 MiB read and
 * write limits, is server/ssh/sftp-limits.spec.ts: a fake SFTP server in this
 * process is simpler than planting one in a sandbox, which can no longer
 * replace its sftp-server anyway, see exec-forgery.spec.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecExited_Reason, OutputLimitAction } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { collectExec, startE2E, type E2E } from "../e2e/harness.js";

let e: E2E;
let id: string;
const HOME = "/home/sandbox";
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** What "flat" allows: gRPC, ssh2 and V8 buffers settle in a few tens of MiB; a leak of the flood would be a GiB. */
const FLAT = 160 * MiB;

const shell = (value: string) => ({ case: "shell" as const, value });

/** Runs fn while sampling RSS every 20 ms; returns its result and the peak growth over the RSS before (and logs it). */
async function peakRss<T>(what: string, fn: () => Promise<T>): Promise<{ result: T; grew: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(`${what}: rss ${(before / MiB).toFixed(0)} MiB, peak +${((peak - before) / MiB).toFixed(1)} MiB`);
    return { result, grew: peak - before };
  } finally {
    clearInterval(timer);
  }
}

describe("sandboxd's memory stays flat whatever a sandbox writes", () => {
  beforeAll(async () => {
    e = await startE2E(12);
    id = (await e.grpc.createSandbox({ resources: { cores: 2, memoryMib: 512 } })).sandbox!.id;
    // Warm up: connections, gRPC and ssh2 buffers exist before the first measurement.
    for (let i = 0; i < 3; i++) await collectExec(e.grpc.exec({ sandboxId: id, command: shell("head -c 4000000 /dev/zero") }));
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("1 GiB on stdout or stderr past a small cap: killed at the cap", async () => {
    for (const stream of ["", ">&2"]) {
      const { result: r, grew } = await peakRss(`1 GiB to ${stream ? "stderr" : "stdout"}, cap 64 KiB`, () =>
        collectExec(e.grpc.exec({ sandboxId: id, command: shell(`head -c ${GiB} /dev/zero ${stream}`), maxOutputBytes: 65_536n })),
      );
      expect(r.exited?.reason, stream).toBe(ExecExited_Reason.OUTPUT_LIMIT);
      expect(r.stdout.length + r.stderr.length).toBe(65_536);
      expect(grew, `${stream}: rss +${(grew / MiB).toFixed(0)} MiB`).toBeLessThan(FLAT);
    }
  });

  it("1 GiB on stdout and on stderr after the header, drained past the cap (discard): flat", async () => {
    const { result: r, grew } = await peakRss("1 GiB to stdout + 1 GiB to stderr, discarded past 1 MB", () =>
      collectExec(
        e.grpc.exec({
          sandboxId: id,
          command: shell(`head -c ${GiB} /dev/zero; head -c ${GiB} /dev/zero >&2; echo done >&2`),
          maxOutputBytes: 1_000_000n,
          outputLimitAction: OutputLimitAction.DISCARD,
        }),
      ),
    );
    expect(r.exited).toMatchObject({ reason: ExecExited_Reason.EXITED, exitCode: 0, stdoutTruncated: true, stderrTruncated: true });
    expect(r.stdout.length).toBe(1_000_000);
    expect(grew, `rss +${(grew / MiB).toFixed(0)} MiB`).toBeLessThan(FLAT);
  }, 120_000);

  it("a sandbox cannot get stderr out before the header: rc files that flood it never run", async () => {
    // Each would write 1 GiB to stderr before sandboxd's wrapper, were it run.
    const flood = `head -c ${GiB} /dev/zero >&2\n`;
    const plant = await collectExec(
      e.grpc.exec({
        sandboxId: id,
        command: shell(
          `mkdir -p ${HOME}/.ssh && chmod 700 ${HOME}/.ssh && ` +
            [".bashrc", ".bash_profile", ".profile", ".ssh/rc"].map((f) => `printf %s '${flood}' > ${HOME}/${f}`).join(" && "),
        ),
      }),
    );
    expect(plant.exited?.exitCode, plant.stderr).toBe(0);
    const { result, grew } = await peakRss("Execs with rc files that flood stderr planted", async () => {
      const t0 = Date.now();
      const shellExec = await collectExec(e.grpc.exec({ sandboxId: id, command: shell("echo ok") }));
      const argvExec = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "argv", value: { args: ["true"] } } }));
      return { shellExec, argvExec, ms: Date.now() - t0 };
    });
    expect(result.shellExec).toMatchObject({ stdout: "ok\n", stderr: "" });
    expect(result.shellExec.started?.pid).toBeGreaterThan(1);
    expect(result.argvExec).toMatchObject({ stdout: "", stderr: "" });
    expect(result.argvExec.exited?.exitCode).toBe(0);
    expect(result.ms).toBeLessThan(5_000); // not after a GiB went by
    expect(grew, `rss +${(grew / MiB).toFixed(0)} MiB`).toBeLessThan(FLAT);
  });

  it("what sshd itself says before the header (an unusable home) is still delivered after started", async () => {
    // sshd cannot chdir into a home mode 000 and says so on the session's stderr, before any command.
    const lock = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "argv", value: { args: ["chmod", "000", HOME] } } }));
    expect(lock.exited?.exitCode).toBe(0);
    try {
      const r = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "argv", value: { args: ["pwd"] } } }));
      expect(r.started?.pid).toBeGreaterThan(1);
      expect(r.stdout).toBe("/\n");
      expect(r.stderr).toMatch(/home directory/i);
      expect(r.exited?.exitCode).toBe(0);
    } finally {
      await collectExec(e.grpc.exec({ sandboxId: id, cwd: "/", command: { case: "argv", value: { args: ["chmod", "755", HOME] } } }));
    }
  });
});
