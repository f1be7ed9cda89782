/**
 * Issue 12: kept commands through the other replica. Two sandboxd servers
 * (A and B) against one Proxmox (the PVE emulator): a background command
 * started through A is listed, attached to (by tag, from 0, live), fed
 * (WriteInput and StreamInput) and signalled through B, which never saw it
 * start — its state lives in the sandbox. B's first use of the sandbox runs
 * the crash tidy (B adopts it on request), which must leave A's kept command
 * and A's live plain Exec alone.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/api/logger.js";
import { loadConfig } from "../../server/config/config.js";
import { ProxmoxProvider } from "../../server/providers/proxmox/index.js";
import { startServer, type SandboxServer } from "../../server/server.js";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { proxmoxConfigOf } from "../pve-emulator/index.js";
import { collectExec, startE2E, type E2E, type LogLines, type SandboxClient } from "./harness.js";
import { reader } from "../fixtures/command-stream.js";

const N = 23;
const MARKER = `4246${Math.floor(Math.random() * 1000)}`;
const enc = (s: string) => new TextEncoder().encode(s);

describe("kept commands through the other replica (two servers, one PVE emulator)", () => {
  let a: E2E;
  let b: SandboxServer | undefined;
  let viaA: SandboxClient;
  let viaB: SandboxClient;
  const logs: LogLines = [];
  const cancels: AbortController[] = [];

  beforeAll(async () => {
    a = await startE2E(N, { SANDBOXD_SYNC_INTERVAL: "500ms" }, "proxmox");
    const logger = createLogger("info", { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    const config = loadConfig({ SANDBOXD_LISTEN: "127.0.0.1:0", SANDBOXD_ADMIN_LISTEN: "127.0.0.1:0", SANDBOXD_DEFAULT_MEMORY_MIB: "256", SANDBOXD_DEFAULT_DISK_GIB: "1", SANDBOXD_DRAIN_DELAY: "0s", SANDBOXD_SYNC_INTERVAL: "500ms" });
    b = await startServer(config, logger, new ProxmoxProvider(proxmoxConfigOf(a.emulator!.connection), { logger }));
    viaA = a.grpc;
    viaB = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${b.address}` }));
  }, 120_000);
  afterAll(async () => {
    for (const ac of cancels) ac.abort();
    try {
      await b?.shutdown();
    } finally {
      await a?.stop(); // closes the emulator (purging its containers); fails on any request Proxmox's schema refuses
    }
  }, 120_000);

  it("started through A; listed, attached, fed, signalled through B; A's stream sees it all", async () => {
    const sandboxId = (await viaA.createSandbox({ leaseTtl: { seconds: 600n } })).sandbox!.id;
    // A's live plain Exec: B's tidy (B adopts the sandbox on its first request) must not take it for an orphan.
    const plainAc = new AbortController();
    cancels.push(plainAc);
    const plain = reader(viaA.exec({ sandboxId, command: { case: "shell", value: `sleep ${MARKER}; echo plain-done` } }, { signal: plainAc.signal }));
    await plain.until(() => plain.execId !== "");

    // The kept command, through A: a line reader (each input line comes back as output).
    const ac = new AbortController();
    cancels.push(ac);
    const script = `echo ready; while read -r l; do echo "got $l"; done; echo eof; sleep 100`;
    const onA = reader(viaA.exec({ sandboxId, command: { case: "shell", value: script }, background: true, keepStdinOpen: true, tag: "svc" }, { signal: ac.signal }));
    await onA.until((o) => o.includes("ready\n"));
    const execId = onA.execId;
    expect(execId).toMatch(/^cmd-/);

    // B never saw it start: it lists it from the sandbox.
    const listed = (await viaB.listCommands({ sandboxId })).commands;
    const svc = listed.find((c) => c.tag === "svc");
    expect(svc?.execId).toBe(execId);
    expect(svc?.running).toBe(true);
    expect((await b!.manager.get(sandboxId)).id).toBe(sandboxId);
    expect(logs.some((l) => l.sandboxId === sandboxId && l.msg === "adopted a sandbox with a live lease")).toBe(true);

    // B attaches by tag from 0 and follows live; B's WriteInput shows up on B's attach and on A's Exec stream.
    const bAc = new AbortController();
    cancels.push(bAc);
    const onB = reader(viaB.attach({ command: { sandboxId, command: { case: "tag", value: "svc" } } }, { signal: bAc.signal }));
    expect(await onB.until((o) => o.includes("ready\n"))).toBe("ready\n");
    expect(onB.execId).toBe(execId);
    expect(onB.offsets[0]![0]).toBe(0);
    const ref = { sandboxId, command: { case: "tag" as const, value: "svc" } };
    await viaB.writeInput({ command: ref, data: enc("from-b\n") });
    await onB.until((o) => o.includes("got from-b\n"));
    await onA.until((o) => o.includes("got from-b\n"));
    // StreamInput through B (gRPC client stream), then A's WriteInput: one stdin, whoever writes.
    async function* lines() {
      yield { command: { sandboxId, command: { case: "execId" as const, value: execId } }, data: enc("stream-1\n") };
      yield { data: enc("stream-2\n") };
    }
    await viaB.streamInput(lines());
    await viaA.writeInput({ command: ref, data: enc("from-a\n"), close: true });
    const expected = "ready\ngot from-b\ngot stream-1\ngot stream-2\ngot from-a\neof\n";
    expect(await onB.until((o) => o.includes("eof\n"))).toBe(expected);
    expect(await onA.until((o) => o.includes("eof\n"))).toBe(expected);
    // Closed through A: B's input is refused.
    const late = await viaB.writeInput({ command: ref, data: enc("late\n") }).then(() => undefined, (x: unknown) => ConnectError.from(x));
    expect(late && Code[late.code]).toBe("FailedPrecondition");

    // The plain Exec through A was left alone by B's tidy.
    expect((await collectExec(viaB.exec({ sandboxId, command: { case: "shell", value: `pgrep -c -x -f 'sleep ${MARKER}'` } }))).stdout).toBe("1\n");

    // Signalled through B: both streams end with the signal; A lists it as ended.
    await viaB.signalCommand({ command: ref, signal: "SIGTERM" });
    expect(await onA.until((o) => /exited/.test(o))).toBe(`${expected}exited SIGTERM`);
    expect(await onB.until((o) => /exited/.test(o))).toBe(`${expected}exited SIGTERM`);
    const after = (await viaA.listCommands({ sandboxId })).commands.find((c) => c.execId === execId)!;
    expect(after.running).toBe(false);
    expect(after.exited?.signal).toBe("SIGTERM");
    expect(Number(after.stdoutEnd)).toBe(expected.length);
    // Detached streams and the finished command: B's signal is refused, tag lookups still find it.
    const again = await viaB.signalCommand({ command: ref, signal: "KILL" }).then(() => undefined, (x: unknown) => ConnectError.from(x));
    expect(again && Code[again.code]).toBe("FailedPrecondition");

    plainAc.abort();
    await viaB.destroySandbox({ sandboxId });
  });

  it("a PTY command started through B is resized and interrupted through A", async () => {
    const sandboxId = (await viaB.createSandbox({ leaseTtl: { seconds: 600n } })).sandbox!.id;
    const ac = new AbortController();
    cancels.push(ac);
    const onB = reader(viaB.exec({ sandboxId, command: { case: "shell", value: "stty size; read x; stty size; sleep 100" }, pty: { rows: 24, cols: 80 }, keepStdinOpen: true, background: true, tag: "term" }, { signal: ac.signal }));
    await onB.until((o) => /24 80/.test(o));
    const ref = { sandboxId, command: { case: "tag" as const, value: "term" } };
    await viaA.resizePty({ command: ref, size: { rows: 40, cols: 100 } });
    await viaA.writeInput({ command: ref, data: enc("\n") });
    await onB.until((o) => /40 100/.test(o));
    await viaA.writeInput({ command: ref, data: new Uint8Array([3]) });
    expect(await onB.until((o) => /exited/.test(o))).toMatch(/exited SIGINT$/);
    await viaA.destroySandbox({ sandboxId });
  });
});
