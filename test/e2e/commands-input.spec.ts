/**
 * Issue 12: StreamInput, the client-streaming input path, through a real
 * server and sandbox (local): a REPL (bash reading commands from stdin) fed
 * message by message over gRPC, each answered before the next is sent, stdin
 * closed by the flag in the last message. Over HTTP/1.1 too (Connect and
 * gRPC-Web, a request body streamed as it is written, or sent whole as curl
 * does); a client that goes away mid-stream ends the call at once, leaves no
 * helper process behind and the command running.
 */
import http from "node:http";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { SandboxService, type StreamInputRequestSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { collectExec, startE2E, type E2E, type SandboxClient } from "./harness.js";
import { reader } from "../fixtures/command-stream.js";

const N = 25;
const enc = (s: string) => new TextEncoder().encode(s);
type Input = MessageInitShape<typeof StreamInputRequestSchema>;

/** One HTTP/1.1 POST with a Content-Length body (as curl sends it). */
function http1Post(url: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: { ...headers, "content-length": String(body.length) }, timeout: 10_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end(body);
  });
}

describe("StreamInput (local)", () => {
  let e: E2E;
  let api: SandboxClient;
  let sandboxId: string;

  beforeAll(async () => {
    e = await startE2E(N);
    api = e.grpc;
    sandboxId = (await api.createSandbox({})).sandbox!.id;
  }, 60_000);
  afterAll(async () => {
    await e?.stop();
  });

  it("over gRPC: a REPL fed message by message, each answered before the next is sent; the close flag in the last message ends its stdin", async () => {
    const ac = new AbortController();
    const out = reader(api.exec({ sandboxId, command: { case: "argv", value: { args: ["bash", "--norc", "--noprofile"] } }, keepStdinOpen: true, tag: "repl" }, { signal: ac.signal }));
    const first = await out.it.next();
    expect(first.value?.event.case).toBe("started");
    const execId = (first.value!.event.value as { execId: string }).execId;
    // Listed with its argv as given (a shell command would be ["bash", "-c", <shell>]).
    expect((await api.listCommands({ sandboxId })).commands.find((c) => c.execId === execId)?.args).toEqual(["bash", "--norc", "--noprofile"]);
    const answers: string[] = [];
    async function* input(): AsyncGenerator<Input> {
      // The first message names the command; later ones need not (and a different one is ignored).
      yield { command: { sandboxId, command: { case: "tag", value: "repl" } }, data: enc("x=6\n") };
      yield { data: enc("echo $((x*7))\n") };
      answers.push(await out.until((o) => o.includes("42\n")));
      yield { command: { sandboxId, command: { case: "execId", value: "cmd-ignored" } }, data: enc("echo $$ >/dev/null; ") };
      yield { data: enc("echo two\n") };
      answers.push(await out.until((o) => o.includes("two\n")));
      yield { data: enc("echo bye\n"), close: true };
    }
    const t0 = Date.now();
    await api.streamInput(input());
    const rest = await out.until((o) => /exited/.test(o));
    expect(answers).toEqual(["42\n", "42\ntwo\n"]);
    expect(rest).toBe("42\ntwo\nbye\nexited 0");
    console.log(`[streamInput] a three-step REPL session over one StreamInput took ${Date.now() - t0} ms`);
    // Closed: more input is refused.
    const late = await api.writeInput({ command: { sandboxId, command: { case: "execId", value: execId } }, data: enc("echo late\n") }).then(() => undefined, (x: unknown) => x);
    expect(late).toBeInstanceOf(ConnectError);
    expect(Code[(late as ConnectError).code]).toBe("FailedPrecondition");
  });

  it("over gRPC: `exit` with the close flag in the last message succeeds although the command ended before the close", async () => {
    const ac = new AbortController();
    const out = reader(api.exec({ sandboxId, command: { case: "argv", value: { args: ["bash", "--norc", "--noprofile"] } }, keepStdinOpen: true }, { signal: ac.signal }));
    const first = await out.it.next();
    const execId = (first.value!.event.value as { execId: string }).execId;
    async function* input(): AsyncGenerator<Input> {
      yield { command: { sandboxId, command: { case: "execId", value: execId } }, data: enc("echo hi\n") };
      answers.push(await out.until((o) => o.includes("hi\n")));
      // Give bash the time to exit before the close arrives.
      yield { data: enc("exit 3\n") };
      await out.until((o) => /exited/.test(o));
      yield { data: new Uint8Array(0), close: true };
    }
    const answers: string[] = [];
    await api.streamInput(input());
    expect(await out.until((o) => /exited/.test(o))).toBe("hi\nexited 3");
  });

  it("over gRPC: errors of the first message (no command, unknown command, finished command)", async () => {
    async function* of(...msgs: Input[]): AsyncGenerator<Input> {
      for (const m of msgs) yield m;
    }
    const code = async (p: Promise<unknown>) => p.then(() => "OK", (x: unknown) => Code[ConnectError.from(x).code]);
    expect(await code(api.streamInput(of()))).toBe("InvalidArgument");
    expect(await code(api.streamInput(of({ data: enc("x") })))).toBe("InvalidArgument");
    expect(await code(api.streamInput(of({ command: { sandboxId, command: { case: "execId", value: "cmd-nope" } }, data: enc("x\n") })))).toBe("NotFound");
    expect(await code(api.streamInput(of({ command: { sandboxId, command: { case: "tag", value: "repl" } }, data: enc("x\n") })))).toBe("FailedPrecondition");
  });

  // Over HTTP/1.1 there are no bidirectional streams, but a client stream is only a request body sent as it
  // is written (chunked): connect-node's Connect and gRPC-Web transports carry StreamInput there, message by
  // message. (A browser's fetch cannot stream a request body over HTTP/1.1: such clients use WriteInput.)
  it.each(["connect1", "grpcWeb1"] as const)("over %s (Connect / gRPC-Web on HTTP/1.1): it works too, each message delivered as it is sent", async (kind) => {
    const client = kind === "grpcWeb1" ? createClient(SandboxService, createGrpcWebTransport({ baseUrl: e.baseUrl, httpVersion: "1.1" })) : e.connect1;
    const ac = new AbortController();
    const out = reader(api.exec({ sandboxId, command: { case: "shell", value: `while read l; do echo "got $l"; done` }, keepStdinOpen: true, tag: `h1-${kind}` }, { signal: ac.signal }));
    expect((await out.it.next()).value?.event.case).toBe("started");
    const ref = { sandboxId, command: { case: "tag" as const, value: `h1-${kind}` } };
    let answer = "";
    async function* input(): AsyncGenerator<Input> {
      yield { command: ref, data: enc("a\n") };
      // The next message is only sent once the first one was answered: no buffering of the whole body.
      answer = await out.until((o) => o.includes("got a\n"), 5_000);
      yield { data: enc("b\n"), close: true };
    }
    await client.streamInput(input(), { timeoutMs: 15_000 });
    expect(answer).toBe("got a\n");
    expect(await out.until((o) => /exited/.test(o))).toBe("got a\ngot b\nexited 0");
  });

  it("over HTTP/1.1 with the whole body at once (a plain POST, as curl sends it) it works; a client that goes away mid-stream ends the call at once and leaves the command running", async () => {
    const ac = new AbortController();
    const out = reader(api.exec({ sandboxId, command: { case: "shell", value: `while read l; do echo "got $l"; done` }, keepStdinOpen: true, tag: "raw" }, { signal: ac.signal }));
    expect((await out.it.next()).value?.event.case).toBe("started");
    const url = `${e.baseUrl}/sandbox.v1.SandboxService/StreamInput`;
    const envelope = (o: unknown) => {
      const json = Buffer.from(JSON.stringify(o));
      const head = Buffer.alloc(5);
      head.writeUInt32BE(json.length, 1);
      return Buffer.concat([head, json]);
    };
    const command = { sandboxId, tag: "raw" };
    const body = Buffer.concat([envelope({ command, data: Buffer.from("one\n").toString("base64") }), envelope({ data: Buffer.from("two\n").toString("base64") })]);
    const res = await http1Post(url, { "content-type": "application/connect+json" }, body);
    expect(res.status).toBe(200);
    // The response message ({}), then the end-of-stream envelope (flag 2) without an error.
    const envelopes: Array<[number, unknown]> = [];
    for (let i = 0; i < res.body.length; ) {
      const len = res.body.readUInt32BE(i + 1);
      envelopes.push([res.body[i]!, JSON.parse(res.body.subarray(i + 5, i + 5 + len).toString())]);
      i += 5 + len;
    }
    expect(envelopes).toEqual([[0, {}], [2, {}]]);
    await out.until((o) => o.includes("got two\n"));

    // A client that sends one message and then goes away (HTTP/1.1 and gRPC): the call ends, the helper's
    // input process too, and the command runs on, still fed by the next caller.
    const helpers = async () => (await collectExec(api.exec({ sandboxId, command: { case: "shell", value: "pgrep -c -f '^[^ ]*sbx-run-[0-9]+ input' || true" } }))).stdout.trim();
    for (const client of [e.connect1, api]) {
      const gone = new AbortController();
      async function* stalled(): AsyncGenerator<Input> {
        yield { command: { sandboxId, command: { case: "tag", value: "raw" } }, data: enc("partial\n") };
        await new Promise((r) => setTimeout(r, 60_000));
      }
      const call = client.streamInput(stalled(), { signal: gone.signal }).then(() => "OK", (x: unknown) => Code[ConnectError.from(x).code]);
      await out.until((o) => o.split("got partial\n").length === (client === api ? 3 : 2));
      expect(await helpers()).toBe("1"); // the helper feeding this call's input
      const t0 = Date.now();
      gone.abort();
      expect(await call).toBe("Canceled");
      expect(Date.now() - t0).toBeLessThan(2_000);
    }
    const deadline = Date.now() + 5_000;
    while ((await helpers()) !== "0") {
      if (Date.now() > deadline) throw new Error(`sbx-run input processes left: ${await helpers()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await e.connect1.writeInput({ command: { sandboxId, command: { case: "tag", value: "raw" } }, data: enc("last\n"), close: true });
    expect(await out.until((o) => /exited/.test(o))).toBe("got one\ngot two\ngot partial\ngot partial\ngot last\nexited 0");
  });
});
