/**
 * Issue 12's figures, through the gRPC server (on its own thread, like the
 * grpc part) against raw baselines on the same sandbox in the same run:
 *
 * - exec_interactive_rtt: a line typed into `cat` on a PTY until cat's copy
 *   of it comes back. Ours: Exec with `pty` and `keep_stdin_open`, one
 *   long-lived StreamInput carrying one line per sample, the answer read from
 *   the Exec stream. Raw: an ssh2 exec channel with a PTY. Both run the same
 *   `stty -echo; echo ready; exec cat`, so each line comes back exactly once.
 * - exec_attach_replay_throughput: Attach from offset 0 of a finished
 *   background command's 256 MiB of stored stdout, to its `exited` event,
 *   against Download of a 256 MiB file in the same sandbox through the same
 *   server (to the last byte). Both sources are in the sandbox's page cache.
 */
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ClientChannel, Client as SshClient } from "ssh2";
import { SandboxService, type StreamInputRequestSchema } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { LocalRuntime } from "../server/providers/local/index.js";
import { rawSsh2 } from "./lib/baselines.js";
import { compareLatency } from "./lib/compare.js";
import { STREAM_WINDOW_OPTIONS } from "./lib/http2-window.js";
import type { BenchResults } from "./lib/results.js";
import { startServerThread } from "./lib/server-thread.js";
import { mbPerSecond, nowMs, percentile } from "./lib/stats.js";

type Api = Client<typeof SandboxService>;

/** Its own runtime instance and subnet (free of tests and the other bench parts). */
const INSTANCE = { instance: "sandboxd-bench-cmds", subnet: "198.18.207.0/24" };
const PTY = { rows: 24, cols: 80, term: "xterm" };
/** The same program on both sides: no PTY echo, so each line comes back once (cat's copy). */
const CAT = "stty -echo; echo ready; exec cat";
/**
 * Lines typed on each side before measuring. The gRPC path (connect-node,
 * protobuf-es, HTTP/2, ssh2 and the server's own code, on both ends) runs
 * interpreted at first: its round trip falls from ~0.65 ms to a steady
 * ~0.3 ms over the first ~2,500 lines, as V8 optimizes it. A server in
 * service is long warm (the same code serves every RPC), so this measures
 * the steady state; the raw path is as warm after the same lines.
 */
const WARMUP_LINES = 3000;
const REPLAY_BYTES = 256 * 2 ** 20;
const REPLAY_ROUNDS = 7;
const REPLAY_FILE = "/home/sandbox/bench-replay-256m";

/** Watches a terminal's output for markers; output before a match is dropped. */
class OutputWatch {
  private text = "";
  private waiter?: { marker: string; resolve: () => void; reject: (e: unknown) => void };
  private error?: unknown;

  push(chunk: Uint8Array): void {
    this.text += Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
    this.check();
  }

  fail(err: unknown): void {
    this.error = err;
    this.waiter?.reject(err);
    this.waiter = undefined;
  }

  wait(marker: string): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiter = { marker, resolve, reject };
      this.check();
    });
  }

  private check(): void {
    const w = this.waiter;
    if (!w) return;
    const i = this.text.indexOf(w.marker);
    if (i < 0) {
      if (this.text.length > 4096) this.text = this.text.slice(-w.marker.length);
      return;
    }
    this.text = this.text.slice(i + w.marker.length);
    this.waiter = undefined;
    w.resolve();
  }
}

/** An async iterable fed by push(): a client stream's messages, sent as they come. */
class Pushed<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private ended = false;
  private wake?: () => void;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.items.length) yield this.items.shift()!;
      else if (this.ended) return;
      else await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

interface Terminal {
  /** Types one line and resolves when cat's copy of it has come back. */
  line(): Promise<void>;
  close(): Promise<void>;
}

let lineNo = 0;
/** A fresh line and the output that answers it (a PTY turns "\n" into "\r\n"). */
function nextLine(): { typed: string; answer: string } {
  const s = `L${++lineNo}.`;
  return { typed: `${s}\n`, answer: `${s}\r\n` };
}

async function rawTerminal(conn: SshClient): Promise<Terminal> {
  const ch = await new Promise<ClientChannel>((resolve, reject) => conn.exec(CAT, { pty: PTY }, (err, c) => (err ? reject(err) : resolve(c))));
  const watch = new OutputWatch();
  ch.on("data", (d: Buffer) => watch.push(d));
  ch.stderr.resume();
  ch.once("close", () => watch.fail(new Error("raw PTY channel closed")));
  await watch.wait("ready\r\n");
  return {
    async line() {
      const { typed, answer } = nextLine();
      const seen = watch.wait(answer);
      ch.write(typed);
      await seen;
    },
    async close() {
      const closed = new Promise<void>((r) => ch.once("close", () => r()));
      ch.close();
      await closed;
    },
  };
}

async function grpcTerminal(api: Api, sandboxId: string): Promise<Terminal> {
  const ac = new AbortController();
  const watch = new OutputWatch();
  let started!: (id: string) => void;
  const execId = new Promise<string>((r) => (started = r));
  let exited = false;
  let failure: unknown;
  const reading = (async () => {
    const stream = api.exec({ sandboxId, command: { case: "shell", value: CAT }, pty: PTY, keepStdinOpen: true }, { signal: ac.signal });
    for await (const m of stream) {
      const e = m.event;
      if (e.case === "started") started(e.value.execId);
      else if (e.case === "stdout") watch.push(e.value);
      else if (e.case === "exited") exited = true;
    }
  })().catch((err) => {
    failure = err;
    watch.fail(err);
  });
  const id = await Promise.race([execId, reading.then(() => Promise.reject(failure ?? new Error("the PTY exec ended before it started")))]);
  const input = new Pushed<MessageInitShape<typeof StreamInputRequestSchema>>();
  input.push({ command: { sandboxId, command: { case: "execId", value: id } } });
  const sending = api.streamInput(input);
  sending.catch((err) => watch.fail(err));
  await watch.wait("ready\r\n");
  return {
    async line() {
      const { typed, answer } = nextLine();
      const seen = watch.wait(answer);
      input.push({ data: Buffer.from(typed) });
      await seen;
    },
    async close() {
      // Closing stdin sends the PTY's EOF: cat ends and the Exec stream with it.
      input.push({ close: true });
      input.end();
      await sending;
      const timer = setTimeout(() => ac.abort(), 10_000);
      await reading;
      clearTimeout(timer);
      if (!exited) throw new Error("the PTY command did not end after its stdin was closed");
    },
  };
}

async function benchInteractive(api: Api, sandboxId: string, raw: SshClient, results: BenchResults): Promise<void> {
  const [rawTerm, ourTerm] = [await rawTerminal(raw), await grpcTerminal(api, sandboxId)];
  try {
    const lat = await compareLatency(() => rawTerm.line(), () => ourTerm.line(), { warmup: WARMUP_LINES });
    const rawP50 = percentile(lat.raw, 50);
    results.add("exec_interactive_rtt_p50", percentile(lat.ours, 50), "ms", rawP50, {
      target_max: `baseline + 1 ms = ${(rawP50 + 1).toFixed(2)}`, samples: lat.ours.length, warmup_lines: WARMUP_LINES,
    });
    results.add("exec_interactive_rtt_p99", percentile(lat.ours, 99), "ms", percentile(lat.raw, 99));
  } finally {
    await rawTerm.close();
    await ourTerm.close();
  }
}

async function run(api: Api, sandboxId: string, args: string[]): Promise<void> {
  for await (const m of api.exec({ sandboxId, command: { case: "argv", value: { args } } })) {
    if (m.event.case === "exited" && m.event.value.exitCode !== 0) throw new Error(`${args.join(" ")}: ${JSON.stringify(m.event.value)}`);
  }
}

async function benchReplay(api: Api, sandboxId: string, results: BenchResults): Promise<void> {
  await run(api, sandboxId, ["sh", "-c", `head -c ${REPLAY_BYTES} /dev/urandom > ${REPLAY_FILE}`]);
  // The same bytes as a background command's stored stdout; detach at once and wait for its end.
  let execId = "";
  const detach = new AbortController();
  const bg = api.exec({
    sandboxId, command: { case: "argv", value: { args: ["cat", REPLAY_FILE] } },
    background: true, retainBytes: BigInt(2 * REPLAY_BYTES),
  }, { signal: detach.signal });
  try {
    for await (const m of bg) {
      if (m.event.case === "started") {
        execId = m.event.value.execId;
        detach.abort(); // cancels the RPC (a bare break leaves the HTTP/2 stream open): the command is only detached from
        break;
      }
    }
  } catch (err) {
    if (!detach.signal.aborted) throw err;
  }
  if (!execId) throw new Error("background exec did not start");
  const deadline = Date.now() + 120_000;
  for (;;) {
    const c = (await api.listCommands({ sandboxId })).commands.find((x) => x.execId === execId);
    if (!c) throw new Error(`command ${execId} not listed`);
    if (!c.running) {
      if (c.stdoutEnd !== BigInt(REPLAY_BYTES) || c.stdoutEarliest !== 0n) throw new Error(`stored stdout is [${c.stdoutEarliest}, ${c.stdoutEnd})`);
      break;
    }
    if (Date.now() > deadline) throw new Error("the background command did not end");
    await new Promise((r) => setTimeout(r, 100));
  }

  const attach = async () => {
    let bytes = 0;
    let exited = false;
    for await (const m of api.attach({ command: { sandboxId, command: { case: "execId", value: execId } } })) {
      if (m.event.case === "stdout") bytes += m.event.value.length;
      else if (m.event.case === "exited") exited = true;
    }
    if (bytes !== REPLAY_BYTES || !exited) throw new Error(`attach replayed ${bytes} bytes${exited ? "" : " without an exited event"}`);
  };
  const download = async () => {
    let bytes = 0;
    for await (const m of api.download({ sandboxId, path: REPLAY_FILE })) if (m.part.case === "data") bytes += m.part.value.length;
    if (bytes !== REPLAY_BYTES) throw new Error(`download got ${bytes} bytes`);
  };
  const timed = async (fn: () => Promise<void>) => {
    const t0 = nowMs();
    await fn();
    return nowMs() - t0;
  };
  await download(); // warm-up: both sources in the page cache, connections and helpers set up
  await attach();
  const ours: number[] = [];
  const base: number[] = [];
  for (let round = 0; round < REPLAY_ROUNDS; round++) {
    base.push(await timed(download));
    ours.push(await timed(attach));
  }
  const rate = (ms: number[]) => mbPerSecond(REPLAY_BYTES, percentile(ms, 50));
  results.add("exec_attach_replay_throughput", rate(ours), "MB/s", rate(base), {
    target_ratio_min: 0.9, bytes: REPLAY_BYTES, rounds: REPLAY_ROUNDS,
    round_ms: { attach: ours.map(Math.round), download: base.map(Math.round) }, // rounds alternate; medians count
  });
  await run(api, sandboxId, ["rm", "-f", REPLAY_FILE]);
}

export async function benchCommands(results: BenchResults): Promise<void> {
  const server = await startServerThread(INSTANCE.instance, INSTANCE.subnet);
  try {
    const api = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://${server.address}`, nodeOptions: STREAM_WINDOW_OPTIONS }));
    const { sandbox } = await api.createSandbox({ resources: { cores: 2, memoryMib: 2048, diskGib: 2 }, labels: { bench: "commands" } });
    const sandboxId = sandbox!.id;
    const raw = await rawSsh2(await server.sshTarget(sandboxId));
    try {
      await benchInteractive(api, sandboxId, raw, results);
      await benchReplay(api, sandboxId, results);
    } finally {
      raw.end();
    }
    await api.destroySandbox({ sandboxId });
  } finally {
    await server.stop();
    await new LocalRuntime(INSTANCE).purge(); // also when the worker died
  }
}
