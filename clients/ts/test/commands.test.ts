/** run, stream, the UTF-8 text helper, kept commands. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TextStream, decodeText, type ExecEvent, type Sandbox, type SandboxdClient } from "../src/index.js";
import { acquireLiveLock, newClient, skipLive, uniqueLabel, releaseLiveLock } from "./helpers.js";

let client: SandboxdClient;
let sb: Sandbox;

before(async () => {
  await acquireLiveLock();
  if (skipLive) return;
  client = newClient();
  sb = await client.create({ ttlMs: 60_000, labels: uniqueLabel() });
});
after(async () => {
  try {
    await sb?.close();
  } finally {
    releaseLiveLock();
  }
});

test("TextStream never splits a UTF-8 character (offline)", () => {
  const euro = new TextEncoder().encode("€\n");
  const t = new TextStream();
  assert.equal(t.write(euro.subarray(0, 1)), "");
  assert.equal(t.write(euro.subarray(1, 2)), "");
  assert.equal(t.write(euro.subarray(2)), "€\n");
  assert.equal(t.end(), "");
});

test("run: shell string and argv, env, cwd, stdin", { skip: skipLive }, async () => {
  const r = await sb.run("echo $GREETING; pwd; cat", { env: { GREETING: "hi" }, cwd: "/tmp", stdin: "in\n", check: true });
  assert.equal(r.stdoutText, "hi\n/tmp\nin\n");
  assert.equal(r.exitCode, 0);
  assert.equal(r.reason, "exited");
  assert.ok(r.execId);
  const a = await sb.run(["printf", "%s|", "a b", "$HOME"], { check: true });
  assert.equal(a.stdoutText, "a b|$HOME|");
  const k = await sb.run("kill -TERM $$");
  assert.equal(k.exitCode, null);
  assert.equal(k.signal, "SIGTERM");
});

test("run: output cap", { skip: skipLive }, async () => {
  const r = await sb.run(["yes"], { maxOutputBytes: 1000 });
  assert.equal(r.reason, "output_limit");
  assert.equal(r.stdout.length, 1000);
  assert.ok(r.stdoutTruncated);
});

test("stream: events in order, stdout and stderr apart", { skip: skipLive }, async () => {
  const events: ExecEvent[] = [];
  for await (const ev of sb.stream("echo a; sleep 0.1; echo b >&2; exit 2")) events.push(ev);
  assert.deepEqual(
    events.map((e) => e.type),
    ["started", "stdout", "stderr", "exited"],
  );
  const last = events.at(-1);
  assert.ok(last?.type === "exited" && last.exitCode === 2);
});

test("UTF-8 split across chunks comes out whole through the text helper", { skip: skipLive }, async () => {
  const raw: Uint8Array[] = [];
  let text = "";
  async function* tap(src: AsyncIterable<ExecEvent>): AsyncGenerator<ExecEvent> {
    for await (const ev of src) {
      if (ev.type === "stdout") raw.push(ev.data);
      yield ev;
    }
  }
  for await (const ev of decodeText(tap(sb.stream("printf '\\xe2\\x82'; sleep 0.2; printf '\\xac\\n'")))) {
    if (ev.type === "stdout") text += ev.text;
  }
  assert.equal(text, "€\n");
  assert.ok(raw.length >= 2, `expected the bytes in two chunks, got ${raw.length}`);
  let viaStreamText = "";
  for await (const ev of sb.streamText("printf '\\xe2\\x82'; sleep 0.2; printf '\\xac\\n'")) {
    if (ev.type === "stdout") viaStreamText += ev.text;
  }
  assert.equal(viaStreamText, "€\n");
});

test("leaving a stream early cancels the command", { skip: skipLive, timeout: 30_000 }, async () => {
  for await (const ev of sb.stream("echo first; sleep 30")) {
    if (ev.type === "stdout") break;
  }
  // Killed with its process group once the RPC is cancelled (allow a moment).
  const r = await sb.run("for i in $(seq 50); do pgrep -f '^sleep 30$' >/dev/null || exit 0; sleep 0.1; done; exit 1");
  assert.equal(r.exitCode, 0, "sleep 30 still runs after the stream was left");
});

test("kept commands: spawn with a tag, list, attach, write input, signal", { skip: skipLive, timeout: 60_000 }, async () => {
  const counter = await sb.spawn("for i in 1 2 3; do echo $i; sleep 0.3; done", { tag: "counter" });
  assert.ok(counter.execId);
  const listed = (await sb.listCommands()).find((c) => c.tag === "counter");
  assert.ok(listed && listed.execId === counter.execId);
  const done = await sb.command({ tag: "counter" }).wait({ check: true });
  assert.equal(done.stdoutText, "1\n2\n3\n");

  const cat = await sb.spawn(["cat"], { tag: "cat", keepStdinOpen: true });
  await cat.writeInput("hello ");
  await cat.writeInput("world\n", { close: true });
  const r = await cat.wait();
  assert.equal(r.stdoutText, "hello world\n");
  assert.equal(r.exitCode, 0);

  const sleeper = await sb.spawn("sleep 60", { tag: "sleeper" });
  await sleeper.signal("SIGTERM");
  const s = await sleeper.wait();
  assert.equal(s.signal, "SIGTERM");
});

test("a PTY command: its size, resize, and input streamed as typed", { skip: skipLive, timeout: 60_000 }, async () => {
  const term = await sb.spawn("stty size; read line; stty size; echo got $line", { pty: { rows: 30, cols: 100 }, keepStdinOpen: true });
  const seen: string[] = [];
  const text = new TextStream();
  const reading = (async () => {
    for await (const ev of term.attach()) if (ev.type === "stdout") seen.push(text.write(ev.data));
  })();
  const until = async (s: string) => {
    for (let i = 0; i < 100 && !seen.join("").includes(s); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(seen.join("").includes(s), `waited for ${JSON.stringify(s)} in ${JSON.stringify(seen.join(""))}`);
  };
  await until("30 100");
  await term.resize(40, 120);
  async function* typed() {
    yield "hel";
    yield "lo\n";
  }
  await term.streamInput(typed());
  await reading;
  const out = seen.join("");
  assert.match(out, /40 120/);
  assert.match(out, /got hello/);
});
