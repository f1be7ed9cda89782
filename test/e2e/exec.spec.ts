/**
 * Exec end to end: streamed output and exit codes, cancel and RPC deadline
 * kill the remote process group, the command timeout is reported as such,
 * 200 concurrent streams on one sandbox, and the error codes.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecExited_Reason, OutputLimitAction } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { collectExec, PROVIDERS, startE2E, type E2E } from "./harness.js";

let e: E2E;
let id: string;

const shell = (value: string) => ({ case: "shell" as const, value });

/** Polls (in the sandbox) until no process matches; the [x] keeps pgrep from matching its own command line. */
async function expectNoProcess(marker: string): Promise<void> {
  const pattern = `${marker.slice(0, -1)}[${marker.slice(-1)}]`;
  let out = "";
  for (let i = 0; i < 50; i++) {
    out = (await collectExec(e.grpc.exec({ sandboxId: id, command: shell(`pgrep -f '${pattern}' || echo none`) }))).stdout;
    if (out.trim() === "none") return;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(out.trim()).toBe("none");
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err).toBeInstanceOf(ConnectError);
  return Code[(err as ConnectError).code];
}

describe.each(PROVIDERS)("Exec (%s)", (provider) => {
  beforeAll(async () => {
    e = await startE2E(1, {}, provider);
    id = (await e.grpc.createSandbox({ resources: { cores: 1, memoryMib: 512 } })).sandbox!.id;
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("streams stdout and stderr and reports the exit code, on every transport", async () => {
    for (const client of [e.grpc, e.connect2, e.connect1]) {
      const r = await collectExec(client.exec({ sandboxId: id, command: shell("echo out; echo err >&2; exit 3") }));
      expect(r.started!.pid).toBeGreaterThan(0);
      expect(r.started!.execId).not.toBe("");
      expect(r.stdout).toBe("out\n");
      expect(r.stderr).toBe("err\n");
      expect(r.exited).toMatchObject({ reason: ExecExited_Reason.EXITED, exitCode: 3 });
    }
    const argv = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "argv", value: { args: ["printf", "%s|", "a b", "$HOME"] } } }));
    expect(argv.stdout).toBe("a b|$HOME|");
    const withStdin = await collectExec(e.grpc.exec({ sandboxId: id, command: shell("cat; echo $FOO"), stdin: Buffer.from("in\n"), env: { FOO: "bar" } }));
    expect(withStdin.stdout).toBe("in\nbar\n");
  });

  it("cancelling the RPC kills the remote process", async () => {
    const marker = `marker-${randomUUID().slice(0, 8)}`;
    const abort = new AbortController();
    const stream = e.grpc.exec({ sandboxId: id, command: shell(`M=${marker}; while :; do sleep 0.2; done`) }, { signal: abort.signal });
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.event.case).toBe("started");
    abort.abort();
    expect(await codeOf(it.next())).toBe("Canceled");
    await expectNoProcess(marker);
  });

  it("a client that stalls the stream and then resets it still kills the process and unpins the lease", async () => {
    const marker = `marker-${randomUUID().slice(0, 8)}`;
    const abort = new AbortController();
    const stream = e.grpc.exec({ sandboxId: id, command: shell(`M=${marker}; cat /dev/zero`) }, { signal: abort.signal });
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.event.case).toBe("started");
    await new Promise((r) => setTimeout(r, 1500)); // not reading: HTTP/2 flow control stalls the server at `yield`
    expect(e.server.manager.leases.get(id)!.inFlight).toBe(1);
    abort.abort();
    await it.return?.();
    await expectNoProcess(marker);
    for (let i = 0; i < 50 && e.server.manager.leases.get(id)!.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(e.server.manager.leases.get(id)!.inFlight).toBe(0);
  });

  it("an RPC deadline shorter than the command timeout ends with DEADLINE_EXCEEDED and kills the process", async () => {
    const marker = `marker-${randomUUID().slice(0, 8)}`;
    const call = collectExec(e.grpc.exec({ sandboxId: id, command: shell(`M=${marker}; sleep 30`), timeout: { seconds: 60n } }, { timeoutMs: 1000 }));
    expect(await codeOf(call)).toBe("DeadlineExceeded");
    await expectNoProcess(marker);
  });

  it("the command timeout ends with REASON_TIMEOUT", async () => {
    const r = await collectExec(e.grpc.exec({ sandboxId: id, command: shell("sleep 30"), timeout: { nanos: 500_000_000 } }));
    expect(r.exited).toMatchObject({ reason: ExecExited_Reason.TIMEOUT, signal: "SIGKILL" });
    expect(r.exited!.exitCode).toBeUndefined();
  });

  it("caps output: an endless command is killed at the cap (REASON_OUTPUT_LIMIT), on every transport", async () => {
    for (const client of [e.grpc, e.connect1]) {
      const marker = `marker-${randomUUID().slice(0, 8)}`;
      // A deadline far beyond what it takes: before the fix the stream hung until it.
      const r = await collectExec(client.exec({ sandboxId: id, command: { case: "argv", value: { args: ["yes", marker] } }, maxOutputBytes: 1048576n }, { timeoutMs: 60_000 }));
      expect(r.stdout.length).toBe(1 << 20);
      expect(r.exited).toMatchObject({ reason: ExecExited_Reason.OUTPUT_LIMIT, signal: "SIGKILL", stdoutTruncated: true, stderrTruncated: false });
      await expectNoProcess(marker);
    }
    // The default is KILL, so an explicit KILL is the same; output below the cap is untouched.
    const small = await collectExec(e.grpc.exec({ sandboxId: id, command: shell("echo hi"), maxOutputBytes: 100n, outputLimitAction: OutputLimitAction.KILL }));
    expect(small).toMatchObject({ stdout: "hi\n", exited: { reason: ExecExited_Reason.EXITED, exitCode: 0, stdoutTruncated: false } });
  });

  it("caps output with OUTPUT_LIMIT_ACTION_DISCARD: the rest is dropped and the command runs to its end", async () => {
    const r = await collectExec(
      e.grpc.exec({ sandboxId: id, command: shell("head -c 10000 /dev/zero | tr '\\0' x; echo tail >&2; exit 4"), maxOutputBytes: 100n, outputLimitAction: OutputLimitAction.DISCARD }),
    );
    expect(r.stdout).toBe("x".repeat(100));
    expect(r.stderr).toBe("tail\n");
    expect(r.exited).toMatchObject({ reason: ExecExited_Reason.EXITED, exitCode: 4, stdoutTruncated: true, stderrTruncated: false });
  });

  it("runs 200 concurrent Exec streams on one sandbox, with no listener pile-up warning", async () => {
    // Node reports abort listeners piling up on one AbortSignal as a process warning.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => collectExec((i % 2 ? e.grpc : e.connect2).exec({ sandboxId: id, command: shell(`sleep 0.2; echo ${i}`) }))),
      );
      results.forEach((r, i) => {
        expect(r.stdout).toBe(`${i}\n`);
        expect(r.exited!.exitCode).toBe(0);
      });
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
  });

  it("maps errors: unknown sandbox, missing command, bad env, missing cwd", async () => {
    expect(await codeOf(collectExec(e.grpc.exec({ sandboxId: "sbx-nope", command: shell("true") })))).toBe("NotFound");
    const noCommand = collectExec(e.grpc.exec({ sandboxId: id }));
    await expect(noCommand).rejects.toThrow(/command/);
    expect(await codeOf(collectExec(e.grpc.exec({ sandboxId: id })))).toBe("InvalidArgument");
    expect(await codeOf(collectExec(e.connect1.exec({ sandboxId: id, command: shell("true"), env: { "1bad": "x" } })))).toBe("InvalidArgument");
    const cwd = collectExec(e.grpc.exec({ sandboxId: id, command: shell("true"), cwd: "/does/not/exist" }));
    expect(await codeOf(cwd)).toBe("FailedPrecondition");
  });
});
