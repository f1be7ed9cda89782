/**
 * Issue 12 through a real server and real sandboxes, on both providers:
 * background commands (detach, list, re-attach from 0 and from a middle
 * offset with byte-identical output), a REPL fed over time (gRPC and Connect
 * over HTTP/1.1), a PTY (tty, resize, Ctrl-C), signals by name, and every
 * error the issue names.
 */
import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AttachResponse, ExecResponse } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { PROVIDERS, startE2E, type E2E, type SandboxClient } from "./harness.js";

const N = 22;

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

/** Collects a stream's output until `until` says stop (then cancels) or it ends. */
async function collect(stream: AsyncIterable<ExecResponse | AttachResponse>, until?: (text: string) => boolean, ac?: AbortController) {
  let stdout = Buffer.alloc(0);
  let stderr = "";
  let execId = "";
  let exited: unknown;
  const offsets: number[] = [];
  try {
    for await (const m of stream) {
      const e = m.event;
      if (e.case === "started") execId = e.value.execId;
      else if (e.case === "stdout") {
        offsets.push(Number(m.offset));
        stdout = Buffer.concat([stdout, e.value]);
      } else if (e.case === "stderr") stderr += Buffer.from(e.value).toString();
      else if (e.case === "exited") exited = e.value;
      if (until?.(stdout.toString("latin1"))) {
        ac?.abort();
        break;
      }
    }
  } catch (err) {
    if (!ac?.signal.aborted) throw err;
  }
  return { stdout, text: stdout.toString("latin1"), stderr, execId, exited: exited as { exitCode?: number; signal: string } | undefined, offsets };
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const waitFor = async (what: string, ok: () => Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe.each(PROVIDERS)("kept commands (%s)", (provider) => {
  let e: E2E;
  let sandboxId: string;
  let api: SandboxClient;
  beforeAll(async () => {
    e = await startE2E(N, {}, provider);
    api = e.grpc;
    sandboxId = (await api.createSandbox({ resources: { diskGib: 2 } })).sandbox!.id;
  }, 60_000);
  afterAll(async () => {
    await e?.stop();
  });

  it("a background command outlives its RPC; list shows it; attach replays from 0 and from a middle offset, byte for byte", async () => {
    // ~50 MB of output, made to be checked: the same bytes are written to a file too.
    const script = "head -c 50000000 /dev/urandom > /tmp/big; cat /tmp/big; sleep 1";
    const ac = new AbortController();
    const first = await collect(api.exec({ sandboxId, command: { case: "shell", value: script }, background: true, tag: "big" }, { signal: ac.signal }), (t) => t.length > 100_000, ac);
    expect(first.execId).toMatch(/^cmd-/);
    expect(first.offsets[0]).toBe(0);
    const listed = (await api.listCommands({ sandboxId })).commands.find((c) => c.execId === first.execId)!;
    expect(listed.tag).toBe("big");
    await waitFor("the command to end", async () => !(await e.connect1.listCommands({ sandboxId })).commands.find((c) => c.execId === first.execId)!.running, 60_000);
    const whole = await collect(api.attach({ command: { sandboxId, command: { case: "tag", value: "big" } } }));
    expect(whole.exited?.exitCode).toBe(0);
    expect(whole.stdout.length).toBe(50_000_000);
    const file = await collect(api.exec({ sandboxId, command: { case: "shell", value: "sha256sum /tmp/big | cut -d' ' -f1" } }));
    expect(sha(whole.stdout)).toBe(file.text.trim());
    const middle = 23_456_789;
    const tail = await collect(api.attach({ command: { sandboxId, command: { case: "execId", value: first.execId } }, stdoutOffset: BigInt(middle) }));
    expect(tail.offsets[0]).toBe(middle);
    expect(sha(tail.stdout)).toBe(sha(whole.stdout.subarray(middle)));
  }, 120_000);

  it("drives a REPL: input over time by WriteInput (gRPC and Connect over HTTP/1.1), then closes stdin", async () => {
    const ac = new AbortController();
    const lines: string[] = [];
    const stream = api.exec({ sandboxId, command: { case: "shell", value: "while read l; do echo \"got $l\"; done; echo bye" }, keepStdinOpen: true }, { signal: ac.signal });
    const it = stream[Symbol.asyncIterator]();
    const started = (await it.next()).value as ExecResponse;
    expect(started.event.case).toBe("started");
    const execId = (started.event.value as { execId: string }).execId;
    const ref = { sandboxId, command: { case: "execId" as const, value: execId } };
    const next = async () => {
      for (;;) {
        const r = await it.next();
        if (r.done) return undefined;
        if (r.value.event.case === "stdout") return Buffer.from(r.value.event.value).toString();
        if (r.value.event.case === "exited") return `exited ${r.value.event.value.exitCode}`;
      }
    };
    await api.writeInput({ command: ref, data: new TextEncoder().encode("one\n") });
    lines.push((await next())!);
    await e.connect1.writeInput({ command: ref, data: new TextEncoder().encode("two\n"), close: true });
    let rest = "";
    for (let s = await next(); s !== undefined; s = await next()) rest += s;
    expect(lines[0]).toBe("got one\n");
    expect(rest).toBe("got two\nbye\nexited 0");
    const err = await failure(api.writeInput({ command: ref, data: new TextEncoder().encode("late\n") }));
    expect(Code[err.code]).toBe("FailedPrecondition");
  });

  it("gives a PTY: tty, resize seen at once, Ctrl-C interrupts", async () => {
    const ac = new AbortController();
    const stream = api.exec({ sandboxId, command: { case: "shell", value: "tty; stty size; read x; stty size; sleep 100" }, pty: { rows: 24, cols: 80 }, keepStdinOpen: true, tag: "term" }, { signal: ac.signal });
    let text = "";
    let exited: { exitCode?: number; signal: string } | undefined;
    const reader = (async () => {
      for await (const m of stream) {
        if (m.event.case === "stdout") text += Buffer.from(m.event.value).toString();
        if (m.event.case === "exited") exited = m.event.value;
      }
    })();
    const ref = { sandboxId, command: { case: "tag" as const, value: "term" } };
    await waitFor("the first size", async () => /24 80/.test(text));
    expect(text).toMatch(/^\/dev\/pts\/\d+/);
    await api.resizePty({ command: ref, size: { rows: 50, cols: 132 } });
    await api.writeInput({ command: ref, data: new TextEncoder().encode("\n") });
    await waitFor("the new size", async () => /50 132/.test(text));
    await api.writeInput({ command: ref, data: new Uint8Array([3]) });
    await reader;
    expect(exited?.signal).toBe("SIGINT");
  });

  it("signals by name; answers every error with its code", async () => {
    const ac = new AbortController();
    const bg = await collect(api.exec({ sandboxId, command: { case: "argv", value: { args: ["sleep", "100"] } }, background: true, tag: "sleeper" }, { signal: ac.signal }), () => true, ac);
    const ref = { sandboxId, command: { case: "execId" as const, value: bg.execId } };
    const dup = await failure(collect(api.exec({ sandboxId, command: { case: "argv", value: { args: ["true"] } }, background: true, tag: "sleeper" })));
    expect(Code[dup.code]).toBe("AlreadyExists");
    expect(Code[(await failure(api.signalCommand({ command: ref, signal: "SIGNOPE" }))).code]).toBe("InvalidArgument");
    expect(Code[(await failure(api.resizePty({ command: ref, size: { rows: 10, cols: 10 } }))).code]).toBe("FailedPrecondition");
    expect(Code[(await failure(api.writeInput({ command: ref, data: new Uint8Array([1]) }))).code]).toBe("FailedPrecondition");
    await api.signalCommand({ command: ref, signal: "term" });
    const after = await collect(api.attach({ command: ref }));
    expect(after.exited?.signal).toBe("SIGTERM");
    expect(Code[(await failure(api.signalCommand({ command: ref, signal: "SIGKILL" }))).code]).toBe("FailedPrecondition");
    const unknown = { sandboxId, command: { case: "execId" as const, value: "cmd-nope" } };
    expect(Code[(await failure(collect(api.attach({ command: unknown })))).code]).toBe("NotFound");
    expect(Code[(await failure(api.signalCommand({ command: { sandboxId, command: { case: "tag", value: "no-such-tag" } }, signal: "INT" }))).code]).toBe("NotFound");
  });
});
