/**
 * Issue 12: kept commands survive `kill -9` of sandboxd. A background command
 * printing a counter keeps running while no sandboxd runs; a restarted
 * sandboxd (same instance, same state dir) lists it and attaches to it by tag
 * from offset 0 (the early lines, then live), and the crash tidy of issue 5,
 * which runs before the restarted server's first RPC on the adopted sandbox
 * (server/sandboxes/recovery-tidy.ts), kills the cut-off plain Exec but not
 * the kept commands. sandboxd runs as a child process (test/fixtures/
 * sandboxd-process.ts) so it can be killed; its own local instance and /24.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AttachResponse, CommandInfo, ExecResponse } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { LocalRuntime } from "../../server/providers/local/index.js";
import { eventually, sandboxd, type Sandboxd } from "../crash/harness.js";
import { collectExec } from "./harness.js";

const INSTANCE = { instance: "sandboxd-t-cmd-restart", subnet: "198.18.178.0/24" };
const ENV = {
  SANDBOXD_PROVIDER: "local",
  SANDBOXD_LOCAL_INSTANCE: INSTANCE.instance,
  SANDBOXD_LOCAL_SUBNET: INSTANCE.subnet,
  SANDBOXD_DEFAULT_MEMORY_MIB: "256",
  SANDBOXD_DEFAULT_DISK_GIB: "1",
  SANDBOXD_LEASE_REAP_INTERVAL: "200ms",
  SANDBOXD_LOG_LEVEL: "info",
};
const COUNTER = `i=0; while :; do echo "line $i"; i=$((i+1)); sleep 0.1; done`;
const MARKER = `4244${Math.floor(Math.random() * 1000)}`;

const purge = () => new LocalRuntime(INSTANCE).purge();
const text = (b: Uint8Array) => Buffer.from(b).toString();

/** Reads an Exec/Attach stream's stdout until `enough` holds; the stream is left open (the caller cancels it). */
async function readUntil(it: AsyncIterator<ExecResponse | AttachResponse>, enough: (out: string) => boolean, ms = 15_000) {
  let out = "";
  const offsets: Array<[number, number]> = [];
  let started: { execId: string; pid: number } | undefined;
  const deadline = Date.now() + ms;
  while (!enough(out)) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms; got ${JSON.stringify(out.slice(-300))}`);
    const r = await it.next();
    if (r.done) throw new Error(`stream ended; got ${JSON.stringify(out.slice(-300))}`);
    const e = r.value.event;
    if (e.case === "started") started = e.value;
    else if (e.case === "stdout") {
      offsets.push([Number(r.value.offset), e.value.length]);
      out += text(e.value);
    } else if (e.case === "exited") throw new Error(`command exited: ${JSON.stringify(e.value)}`);
  }
  return { out, offsets, started };
}

const lineNumbers = (out: string) => [...out.matchAll(/^line (\d+)$/gm)].map((m) => Number(m[1]));

describe("kept commands across kill -9 of sandboxd and a restart (local)", () => {
  const servers: Sandboxd[] = [];
  const start = async () => {
    const s = await sandboxd(ENV);
    servers.push(s);
    return s;
  };
  const cancels: AbortController[] = [];
  let s1: Sandboxd;
  let s2: Sandboxd;
  let sandboxId: string;
  let counter: { execId: string; pid: number; lines: number[] };
  let fg: { execId: string; pid: number };
  let listed: CommandInfo[];

  beforeAll(async () => {
    await purge(); // leftovers of an interrupted run
  });
  afterAll(async () => {
    for (const ac of cancels) ac.abort();
    await Promise.allSettled(servers.map((s) => s.kill()));
    await purge();
  }, 120_000);

  it("kill -9 with a background command, a foreground kept command and a plain Exec running; after the restart the background one runs on, the others are gone", async () => {
    s1 = await start();
    sandboxId = (await s1.client.createSandbox({ leaseTtl: { seconds: 900n } })).sandbox!.id;
    const api = s1.client;

    // The background counter: a few lines read, then detached (cancelling detaches, it does not kill).
    const bgAbort = new AbortController();
    cancels.push(bgAbort);
    const bg = api.exec({ sandboxId, command: { case: "shell", value: COUNTER }, background: true, tag: "counter" }, { signal: bgAbort.signal })[Symbol.asyncIterator]();
    const early = await readUntil(bg, (o) => /^line 3$/m.test(o));
    bgAbort.abort();
    await bg.return?.(undefined).catch(() => {});
    counter = { execId: early.started!.execId, pid: early.started!.pid, lines: lineNumbers(early.out) };
    expect(counter.lines.slice(0, 4)).toEqual([0, 1, 2, 3]);

    // A foreground kept command (keep_stdin_open, not background): its Exec is still streaming when the server dies.
    const fgAbort = new AbortController();
    cancels.push(fgAbort);
    const fgStream = api.exec({ sandboxId, command: { case: "shell", value: `while read l; do echo "fg got $l"; done` }, keepStdinOpen: true, tag: "fg" }, { signal: fgAbort.signal })[Symbol.asyncIterator]();
    expect((await fgStream.next()).value?.event.case).toBe("started");
    const fgList = (await api.listCommands({ sandboxId })).commands.find((c) => c.tag === "fg")!;
    fg = { execId: fgList.execId, pid: fgList.pid };
    await api.writeInput({ command: { sandboxId, command: { case: "tag", value: "fg" } }, data: new TextEncoder().encode("one\n") });
    await readUntil(fgStream, (o) => o.includes("fg got one\n"));

    // A plain Exec cut off by the crash: the tidy must kill it (so the kept commands' survival below means something).
    const plainAbort = new AbortController();
    cancels.push(plainAbort);
    const plain = api.exec({ sandboxId, command: { case: "shell", value: `sleep ${MARKER}` } }, { signal: plainAbort.signal })[Symbol.asyncIterator]();
    expect((await plain.next()).value?.event.case).toBe("started");

    await s1.kill();
    for (const it of [fgStream, plain]) await it.return?.(undefined).catch(() => {});
    for (const ac of cancels) ac.abort();
    // Nothing runs sandboxd for a moment: the counter goes on by itself.
    await new Promise((r) => setTimeout(r, 1000));

    s2 = await start();
    // The first RPC on the adopted sandbox runs the crash tidy before it answers.
    listed = (await s2.client.listCommands({ sandboxId })).commands;
    const c = listed.find((x) => x.execId === counter.execId);
    expect(c, listed.map((x) => `${x.tag} ${x.execId} running=${x.running}`).join("; ")).toBeDefined();
    expect(c!.tag).toBe("counter");
    expect(c!.running).toBe(true);
    expect(c!.pid).toBe(counter.pid);
    expect(c!.args).toEqual(["bash", "-c", COUNTER]);
    expect(Number(c!.stdoutEarliest)).toBe(0);
    expect(Number(c!.stdoutEnd)).toBeGreaterThan(early.out.length);
    const procs = (await collectExec(s2.client.exec({ sandboxId, command: { case: "shell", value: `echo plain=$(pgrep -c -x -f 'sleep ${MARKER}'); kill -0 ${counter.pid} && echo counter=alive` } }))).stdout;
    expect(procs).toBe("plain=0\ncounter=alive\n");
    const log = s2.logs();
    expect(log).toContain("adopted a sandbox with a live lease");
    expect(log).not.toContain("tidying up after a crash failed");
  }, 120_000);

  it("attach by tag from offset 0 through the restarted server: the early lines, in order, then live output", async () => {
    const endAtList = Math.max(...listed.filter((x) => x.execId === counter.execId).map((x) => Number(x.stdoutEnd)));
    const ac = new AbortController();
    cancels.push(ac);
    const it = s2.client.attach({ command: { sandboxId, command: { case: "tag", value: "counter" } } }, { signal: ac.signal })[Symbol.asyncIterator]();
    // Past what was stored when it was listed, by some 2 s of new lines: it follows live.
    const got = await readUntil(it, (o) => o.length > endAtList + 200, 20_000);
    ac.abort();
    await it.return?.(undefined).catch(() => {});
    expect(got.started?.execId).toBe(counter.execId);
    expect(got.offsets[0]![0]).toBe(0);
    for (let i = 1; i < got.offsets.length; i++) expect(got.offsets[i]![0]).toBe(got.offsets[i - 1]![0] + got.offsets[i - 1]![1]);
    const lines = lineNumbers(got.out);
    expect(lines.slice(0, counter.lines.length)).toEqual(counter.lines);
    expect(lines).toEqual(lines.map((_, i) => i)); // 0, 1, 2, …: nothing lost across the crash
    // Still running after the attach went away.
    const again = (await s2.client.listCommands({ sandboxId })).commands.find((x) => x.execId === counter.execId)!;
    expect(again.running).toBe(true);
  });

  it("a foreground kept command dies with its server's SSH connection, like a plain Exec: listed as ended by SIGKILL, its stdin refused", async () => {
    const api = s2.client;
    const ref = { sandboxId, command: { case: "tag" as const, value: "fg" } };
    const info = listed.find((x) => x.execId === fg.execId);
    expect(info?.running).toBe(false);
    expect(info?.exited?.signal).toBe("SIGKILL");
    const late = await api.writeInput({ command: ref, data: new TextEncoder().encode("two\n") }).then(() => undefined, (e: unknown) => e);
    expect(Code[(late as ConnectError).code]).toBe("FailedPrecondition");
    // What it printed before is still there to read.
    const ac = new AbortController();
    cancels.push(ac);
    const got = await readUntil(api.attach({ command: ref }, { signal: ac.signal })[Symbol.asyncIterator](), (o) => o.includes("fg got one\n"));
    expect(got.out).toBe("fg got one\n");
  });

  it("signal, then destroy; the instance is purged", async () => {
    const api = s2.client;
    const ref = { sandboxId, command: { case: "execId" as const, value: counter.execId } };
    await api.signalCommand({ command: ref, signal: "TERM" });
    await eventually("the counter ends", 10_000, async () => !(await api.listCommands({ sandboxId })).commands.find((x) => x.execId === counter.execId)!.running);
    const late = await api.signalCommand({ command: ref, signal: "TERM" }).then(() => undefined, (e: unknown) => e);
    expect(late).toBeInstanceOf(ConnectError);
    expect(Code[(late as ConnectError).code]).toBe("FailedPrecondition");
    await api.destroySandbox({ sandboxId });
    expect(await s2.stop()).toBe(0);
  });
});
