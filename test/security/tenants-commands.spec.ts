/**
 * Issue 12 with API tokens (local): another tenant cannot list, attach to,
 * feed, signal or resize a kept command in a sandbox it cannot see — every
 * call is NOT_FOUND with exactly the message of an unknown sandbox id, over
 * gRPC and Connect/HTTP1.1, by tag and by exec id — and nothing reaches the
 * command. An exec id is no capability: named with the other tenant's own
 * sandbox it is an unknown command there. A viewer of the owning tenant reads
 * (ListCommands, Attach) but may not write, signal or resize
 * (PERMISSION_DENIED); a viewer of another tenant gets NOT_FOUND.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxService, type ExecResponse } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { mintToken } from "../../server/auth/index.js";
import { startE2E, type E2E, type LogLines, type SandboxClient } from "../e2e/harness.js";

const N = 28;
const tokens = {
  a: mintToken("team-a", "user", "alice"),
  b: mintToken("team-b", "user", "bob"),
  viewerA: mintToken("team-a", "viewer", "vera"),
  viewerB: mintToken("team-b", "viewer", "victor"),
};
const enc = (s: string) => new TextEncoder().encode(s);
const bearer = (token: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

async function outcome(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  return p.then(() => ({ code: "OK", message: "" }), (x: unknown) => {
    const err = ConnectError.from(x);
    return { code: Code[err.code], message: err.rawMessage };
  });
}
async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) void _;
}

describe("kept commands and tenants (API tokens, local)", () => {
  let e: E2E;
  let dir: string;
  const logs: LogLines = [];
  const as = (who: keyof typeof tokens, kind: "grpc" | "connect1" = "grpc"): SandboxClient => {
    const interceptors = [bearer(tokens[who].token)];
    return createClient(SandboxService, kind === "grpc" ? createGrpcTransport({ baseUrl: e.baseUrl, interceptors }) : createConnectTransport({ baseUrl: e.baseUrl, httpVersion: "1.1", interceptors }));
  };
  let aId: string;
  let bId: string;
  let execId: string;
  let aStream: AsyncIterator<ExecResponse>;
  const ac = new AbortController();

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-tenants-cmds-"));
    const file = path.join(dir, "tokens");
    fs.writeFileSync(file, Object.values(tokens).map((t) => t.line).join("\n") + "\n", { mode: 0o600 });
    e = await startE2E(N, { SANDBOXD_AUTH_TOKENS_FILE: file }, "local", logs);
    aId = (await as("a").createSandbox({})).sandbox!.id;
    bId = (await as("b").createSandbox({})).sandbox!.id;
    // A's kept command: a PTY line reader, so resize applies to it too.
    aStream = as("a").exec({ sandboxId: aId, command: { case: "shell", value: `while read -r l; do echo "got $l $(stty size)"; done` }, background: true, keepStdinOpen: true, pty: { rows: 24, cols: 80 }, tag: "svc" }, { signal: ac.signal })[Symbol.asyncIterator]();
    const first = (await aStream.next()).value!;
    expect(first.event.case).toBe("started");
    execId = (first.event.value as { execId: string }).execId;
  }, 60_000);
  afterAll(async () => {
    ac.abort();
    await e?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Every kept-command RPC on `ref`. */
  const calls = (c: SandboxClient, ref: { sandboxId: string; command: { case: "tag"; value: string } | { case: "execId"; value: string } }) => ({
    listCommands: () => c.listCommands({ sandboxId: ref.sandboxId }),
    attach: () => drain(c.attach({ command: ref })),
    writeInput: () => c.writeInput({ command: ref, data: enc("pwned\n") }),
    streamInput: () => c.streamInput((async function* () {
      yield { command: ref, data: enc("pwned\n") };
    })()),
    signalCommand: () => c.signalCommand({ command: ref, signal: "KILL" }),
    resizePty: () => c.resizePty({ command: ref, size: { rows: 10, cols: 10 } }),
  });

  it.each(["grpc", "connect1"] as const)("over %s, B cannot list, attach, feed, signal or resize A's command: NOT_FOUND, as an unknown sandbox", async (kind) => {
    const b = as("b", kind);
    for (const command of [{ case: "tag" as const, value: "svc" }, { case: "execId" as const, value: execId }]) {
      const unknown = calls(b, { sandboxId: "sbx-doesnotexi", command });
      const intruding = calls(b, { sandboxId: aId, command });
      for (const name of Object.keys(intruding) as Array<keyof typeof intruding>) {
        const want = await outcome(unknown[name]());
        const got = await outcome(intruding[name]());
        expect(got.code, `${name} by ${command.case}`).toBe("NotFound");
        expect(got.message.replace(aId, "ID"), `${name} by ${command.case}`).toBe(want.message.replace("sbx-doesnotexi", "ID"));
      }
    }
  });

  it("an exec id is no capability: with B's own sandbox id it names no command there", async () => {
    const b = as("b");
    const mine = calls(b, { sandboxId: bId, command: { case: "execId", value: execId } });
    for (const name of ["attach", "writeInput", "streamInput", "signalCommand", "resizePty"] as const) {
      expect((await outcome(mine[name]())).code, name).toBe("NotFound");
    }
    expect((await b.listCommands({ sandboxId: bId })).commands).toEqual([]);
  });

  it("a viewer of A's tenant reads (list, attach) but may not write, signal or resize; a viewer of B's tenant sees nothing", async () => {
    const ref = { sandboxId: aId, command: { case: "tag" as const, value: "svc" } };
    const viewer = calls(as("viewerA"), ref);
    const listed = (await as("viewerA").listCommands({ sandboxId: aId })).commands;
    expect(listed.map((c) => [c.tag, c.execId, c.running])).toEqual([["svc", execId, true]]);
    // Attach works for a viewer: it streams until cancelled.
    const vac = new AbortController();
    const it = as("viewerA").attach({ command: ref }, { signal: vac.signal })[Symbol.asyncIterator]();
    expect((await it.next()).value?.event.case).toBe("started");
    vac.abort();
    await it.return?.(undefined).catch(() => {});
    for (const name of ["writeInput", "streamInput", "signalCommand", "resizePty"] as const) {
      const got = await outcome(viewer[name]());
      expect(got.code, name).toBe("PermissionDenied");
      expect(got.message, name).toMatch(/vera \(role viewer\) may not call/);
    }
    const other = calls(as("viewerB"), ref);
    for (const name of ["listCommands", "attach"] as const) expect((await outcome(other[name]())).code, name).toBe("NotFound");
  });

  it("nothing reached A's command: no input, no signal, no resize; A still drives it", async () => {
    const a = as("a");
    const ref = { sandboxId: aId, command: { case: "execId" as const, value: execId } };
    const info = (await a.listCommands({ sandboxId: aId })).commands[0]!;
    expect(info.running).toBe(true);
    expect(Number(info.stdoutEnd)).toBe(0);
    await a.writeInput({ command: ref, data: enc("hello\n") });
    let out = "";
    while (!out.includes("got hello")) {
      const r = await aStream.next();
      if (r.done || r.value.event.case === "exited") throw new Error(`ended early: ${out}`);
      if (r.value.event.case === "stdout") out += Buffer.from(r.value.event.value).toString();
    }
    // The terminal echoes the line, then the reader answers: "pwned" never came, the size is still 24x80.
    expect(out).toBe("hello\r\ngot hello 24 80\r\n");
    expect(logs.some((l) => l.rpc === "WriteInput" && l.tenant === "team-b" && l.code === "NotFound" && l.audit === true)).toBe(true);
  });
});
