/**
 * sbx-run on the host (no sandbox needed): built with build.sh into a temp
 * directory, driven through its command line, its attach output parsed with
 * frames.ts.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameError, FrameParser, readFrames, type ExitInfo, type Frame, type WatchRecord } from "../../server/ssh/commands/frames.js";

const here = dirname(fileURLToPath(import.meta.url));
let tmp = "";
let bin = "";
let dir = "";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sbx(args: string[], input?: string | Buffer, env?: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}

async function start(id: string, argv: string[], opts: string[] = [], env?: NodeJS.ProcessEnv): Promise<number> {
  const r = await sbx(["start", "--dir", dir, "--id", id, ...opts, "--", ...argv], undefined, env);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const m = /^started (\d+)\n$/.exec(r.stdout);
  expect(m).not.toBeNull();
  return Number(m![1]);
}

interface Attached {
  code: number | null;
  frames: Frame[];
  stderr: string;
}

/** Runs attach to its end; frames go to onFrame when given (not kept), else into frames. */
async function attach(id: string, args: string[] = [], onFrame?: (f: Frame) => void, beforeRead?: Promise<void>): Promise<Attached> {
  const child = spawn(bin, ["attach", "--dir", dir, "--id", id, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  if (beforeRead) await beforeRead;
  const frames: Frame[] = [];
  for await (const f of readFrames(child.stdout)) {
    if (onFrame) onFrame(f);
    else frames.push(f);
  }
  return { code: await closed, frames, stderr };
}

/** The bytes of one stream, checking that the data frames are contiguous from `from`. */
function streamBytes(frames: Frame[], stream: "stdout" | "stderr", from = 0): Buffer {
  const parts: Buffer[] = [];
  let at = from;
  for (const f of frames) {
    if (f.kind !== "data" || f.stream !== stream) continue;
    expect(f.offset).toBe(at);
    at += f.data.length;
    parts.push(f.data);
  }
  return Buffer.concat(parts);
}

function exitOf(frames: Frame[]): ExitInfo {
  const last = frames[frames.length - 1];
  expect(last?.kind).toBe("exit");
  return (last as Extract<Frame, { kind: "exit" }>).exit;
}

async function waitExit(id: string): Promise<ExitInfo> {
  return exitOf((await attach(id, ["--from-earliest"])).frames);
}

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Listed {
  id: string;
  tag: string | null;
  argv: string[];
  startedAt: number;
  pid: number;
  state: "running" | "exited";
  exit: ExitInfo | null;
  stdout: { earliest: number; end: number };
  stderr: { earliest: number; end: number };
  pty: boolean;
}

async function list(d = dir): Promise<Listed[]> {
  const r = await sbx(["list", "--dir", d]);
  expect(r.code).toBe(0);
  return r.stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Listed);
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (this host's pid 1 may not reap) is not alive.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "sbx-run-spec-"));
  // SBX_RUN_TEST_BIN: test another build (e.g. with -fsanitize=address,undefined; its
  // file name must start with "sbx-run").
  bin = process.env.SBX_RUN_TEST_BIN ?? join(tmp, "sbx-run");
  if (process.env.SBX_RUN_TEST_BIN === undefined) execFileSync("bash", [join(here, "build.sh"), bin], { stdio: "inherit" });
  dir = join(tmp, "cmds");
});

afterAll(async () => {
  if (!tmp) return;
  if (!bin || !existsSync(bin)) {
    rmSync(tmp, { recursive: true, force: true });
    return;
  }
  for (const d of [dir, join(tmp, "gc")]) {
    for (const c of existsSync(d) ? await list(d) : []) {
      if (c.state !== "running" && !c.exit?.lost) continue;
      try {
        process.kill(-c.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  rmSync(tmp, { recursive: true, force: true });
});

describe("frames", () => {
  const frame = (type: string, ...parts: Buffer[]): Buffer => Buffer.concat([Buffer.from(type), ...parts]);
  const be64 = (n: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const be32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const payload = Buffer.from("x".repeat(1000));
  const exit = Buffer.from('{"exitCode":3}');
  const all = Buffer.concat([
    frame("O", be64(5), be32(payload.length), payload),
    frame("E", be64(0), be32(0)),
    frame("G", be64(2), be64(10), be64(20)),
    frame("D", be64(7), be64(8)),
    frame("X", be32(exit.length), exit),
  ]);
  const expected: Frame[] = [
    { kind: "data", stream: "stdout", offset: 5, data: payload },
    { kind: "data", stream: "stderr", offset: 0, data: Buffer.alloc(0) },
    { kind: "gap", stream: "stderr", from: 10, to: 20 },
    { kind: "dropped", stdoutEarliest: 7, stderrEarliest: 8 },
    { kind: "exit", exit: { exitCode: 3 } },
  ];

  it("parses the same frames however the input is split", () => {
    for (const size of [1, 2, 3, 7, 13, 100, 999, all.length]) {
      const p = new FrameParser();
      const got: Frame[] = [];
      for (let i = 0; i < all.length; i += size) got.push(...p.push(all.subarray(i, i + size)));
      p.finish();
      expect(got).toEqual(expected);
    }
  });

  it("refuses oversized, unknown and truncated frames", () => {
    expect(() => new FrameParser().push(frame("O", be64(0), be32(262_145)))).toThrow(FrameError);
    expect(() => new FrameParser().push(frame("X", be32(70_000)))).toThrow(FrameError);
    expect(() => new FrameParser().push(Buffer.from("Z"))).toThrow(FrameError);
    expect(() => new FrameParser().push(frame("G", be64(3), be64(0), be64(1)))).toThrow(FrameError);
    const p = new FrameParser();
    p.push(frame("O", be64(0), be32(10), Buffer.from("abc")));
    expect(() => p.finish()).toThrow(FrameError);
  });
});

describe("sbx-run", () => {
  it("prints its version", async () => {
    expect(await sbx(["version"])).toEqual({ code: 0, stdout: "sbx-run 3\n", stderr: "" });
  });

  it("attach --kill-on-hangup kills the command when its reader goes away, and only then", async () => {
    await start("hang", ["sleep", "100"]);
    const child = spawn(bin, ["attach", "--dir", dir, "--id", "hang", "--kill-on-hangup"], { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise((r) => setTimeout(r, 300));
    expect((await list()).find((c) => c.id === "hang")?.state).toBe("running");
    child.stdout.destroy(); // the reader hangs up
    expect(await waitExit("hang")).toMatchObject({ signal: "SIGKILL" });
    // Without the flag the reader going away leaves the command running.
    await start("stay", ["sleep", "100"]);
    const plain = spawn(bin, ["attach", "--dir", dir, "--id", "stay"], { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise((r) => setTimeout(r, 300));
    plain.stdout.destroy();
    await new Promise((r) => plain.on("close", r));
    expect((await list()).find((c) => c.id === "stay")?.state).toBe("running");
    await sbx(["signal", "--dir", dir, "--id", "stay", "--signal", "KILL"]);
  });

  it("runs a command and replays its output, then the exit", async () => {
    await start("printf", ["printf", "hello\\nworld"]);
    const a = await attach("printf");
    expect(a.code).toBe(0);
    expect(streamBytes(a.frames, "stdout").toString()).toBe("hello\nworld");
    const exit = exitOf(a.frames);
    expect(exit.exitCode).toBe(0);
    expect(exit.endedAt).toBeGreaterThan(0);
    expect(exit.durationMs).toBeGreaterThanOrEqual(0);
    const meta = JSON.parse(readFileSync(join(dir, "printf", "meta.json"), "utf8"));
    expect(meta).toMatchObject({ id: "printf", tag: null, argv: ["printf", "hello\\nworld"], pty: null, keepStdin: false, cap: 64 << 20 });
    expect(existsSync(join(dir, "printf", "exit.json"))).toBe(true);
  });

  it("records exit codes and signals", async () => {
    await start("exit7", ["sh", "-c", "exit 7"]);
    await start("killed", ["sh", "-c", "kill -KILL $$"]);
    expect(await waitExit("exit7")).toMatchObject({ exitCode: 7 });
    const k = await waitExit("killed");
    expect(k.signal).toBe("SIGKILL");
    expect(k.exitCode).toBeUndefined();
  });

  it("keeps stderr separate, sets --env and --cwd, drops SANDBOXD_SESSION", async () => {
    await start("streams", ["sh", "-c", "echo out; echo err >&2; echo ${SANDBOXD_SESSION-unset} $FOO; pwd"], ["--env", "FOO=bar baz", "--cwd", tmp], {
      ...process.env,
      SANDBOXD_SESSION: "1:2",
    });
    const a = await attach("streams");
    expect(streamBytes(a.frames, "stdout").toString()).toBe(`out\nunset bar baz\n${tmp}\n`);
    expect(streamBytes(a.frames, "stderr").toString()).toBe("err\n");
  });

  it("fails start when the program cannot be run, leaving nothing", async () => {
    const r = await sbx(["start", "--dir", dir, "--id", "noexec", "--", "/nonexistent/program"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sbx-run: exec \/nonexistent\/program: No such file or directory\n$/);
    expect(existsSync(join(dir, "noexec"))).toBe(false);
    const cwd = await sbx(["start", "--dir", dir, "--id", "nocwd", "--cwd", "/nonexistent", "--", "true"]);
    expect(cwd.code).toBe(1);
    expect(cwd.stderr).toMatch(/cwd \/nonexistent/);
  });

  it("refuses bad arguments with 2", async () => {
    expect((await sbx(["start", "--dir", dir, "--id", "bad/id", "--", "true"])).code).toBe(2);
    expect((await sbx(["start", "--dir", dir, "--id", "x", "--cap", "100", "--", "true"])).code).toBe(2);
    expect((await sbx(["start", "--dir", dir, "--id", "x", "--env", "1A=b", "--", "true"])).code).toBe(2);
    expect((await sbx(["start", "--dir", dir, "--id", "x"])).code).toBe(2);
    expect((await sbx(["frobnicate"])).code).toBe(2);
    expect((await sbx(["attach", "--dir", dir, "--id", "x", "--bogus"])).code).toBe(2);
  });

  describe("~50 MB of output", () => {
    const file = (): string => join(tmp, "big.bin");
    let data: Buffer;

    beforeAll(async () => {
      execFileSync("sh", ["-c", `head -c 50000000 /dev/urandom > "${file()}"`]);
      data = readFileSync(file());
      await start("big", ["cat", file()]);
      await waitExit("big");
    });

    async function replayHash(args: string[], from: number): Promise<{ hash: string; bytes: number; exit: ExitInfo | null }> {
      const h = createHash("sha256");
      let at = from;
      let exit: ExitInfo | null = null;
      const a = await attach("big", args, (f) => {
        if (f.kind === "data") {
          expect(f.stream).toBe("stdout");
          expect(f.offset).toBe(at);
          expect(f.data.length).toBeLessThanOrEqual(262_144);
          at += f.data.length;
          h.update(f.data);
        } else if (f.kind === "exit") exit = f.exit;
        else throw new Error(`unexpected ${f.kind} frame`);
      });
      expect(a.code).toBe(0);
      return { hash: h.digest("hex"), bytes: at - from, exit };
    }

    it("replays it from 0, byte-identical", async () => {
      const t = Date.now();
      const r = await replayHash([], 0);
      expect(r.bytes).toBe(50_000_000);
      expect(r.hash).toBe(sha256(data));
      expect(r.exit).toMatchObject({ exitCode: 0 });
      console.log(`replayed 50 MB in ${Date.now() - t} ms`);
    });

    it("replays it from a middle offset, byte-identical", async () => {
      const from = 23_456_789;
      const r = await replayHash(["--stdout-offset", String(from)], from);
      expect(r.bytes).toBe(50_000_000 - from);
      expect(r.hash).toBe(sha256(data.subarray(from)));
    });

    it("lists its sizes", async () => {
      const c = (await list()).find((x) => x.id === "big")!;
      expect(c).toMatchObject({ state: "exited", stdout: { earliest: 0, end: 50_000_000 }, stderr: { earliest: 0, end: 0 }, pty: false });
    });
  });

  it("follows a running command live, then sends the exit", async () => {
    await start("live", ["sh", "-c", "echo a; sleep 0.4; echo b; sleep 0.4; echo c"]);
    const seen: { text: string; t: number }[] = [];
    const a = await attach("live", [], (f) => {
      if (f.kind === "data") seen.push({ text: f.data.toString(), t: Date.now() });
      if (f.kind === "exit") seen.push({ text: "X", t: Date.now() });
    });
    expect(a.code).toBe(0);
    expect(seen.map((s) => s.text).join("")).toBe("a\nb\nc\nX");
    expect(seen[seen.length - 1]!.t - seen[0]!.t).toBeGreaterThan(600);

    // --no-follow stops at what is stored; an offset past the end waits for it.
    await start("later", ["sh", "-c", "printf abc; sleep 0.5; printf def"]);
    await until(async () => (await list()).find((c) => c.id === "later")!.stdout.end === 3);
    const nf = await attach("later", ["--no-follow"]);
    expect(nf.code).toBe(0);
    expect(streamBytes(nf.frames, "stdout").toString()).toBe("abc");
    expect(nf.frames.some((f) => f.kind === "exit")).toBe(false);
    const ahead = await attach("later", ["--stdout-offset", "4"]);
    expect(streamBytes(ahead.frames, "stdout", 4).toString()).toBe("ef");
    expect(exitOf(ahead.frames)).toMatchObject({ exitCode: 0 });
  });

  it("delivers input to a running cat and its echo within a millisecond or so", async () => {
    await start("rtt", ["cat"], ["--keep-stdin"]);
    const input = spawn(bin, ["input", "--dir", dir, "--id", "rtt"], { stdio: ["pipe", "ignore", "inherit"] });
    let wake: (() => void) | null = null;
    let got = "";
    let exit: ExitInfo | null = null;
    const attached = attach("rtt", [], (f) => {
      if (f.kind === "data") {
        got += f.data.toString();
        wake?.();
      } else if (f.kind === "exit") exit = f.exit;
    });
    const rtts: number[] = [];
    for (let i = 0; i < 50; i++) {
      const line = `ping ${i}\n`;
      const t = process.hrtime.bigint();
      const echoed = new Promise<void>((resolve) => (wake = () => got.endsWith(line) && resolve()));
      input.stdin.write(line);
      await echoed;
      rtts.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    input.stdin.end();
    await new Promise((r) => input.on("close", r));
    expect((await sbx(["input", "--dir", dir, "--id", "rtt", "--close"])).code).toBe(0);
    expect((await attached).code).toBe(0);
    expect(exit).toMatchObject({ exitCode: 0 });
    rtts.sort((x, y) => x - y);
    const p50 = rtts[25]!;
    console.log(`input → cat → attach round trip p50 ${p50.toFixed(3)} ms, max ${rtts[49]!.toFixed(3)} ms`);
    expect(p50).toBeLessThan(5);
  });

  it("keeps retention under the cap and names the earliest offset", async () => {
    const file = join(tmp, "five.bin");
    execFileSync("sh", ["-c", `head -c 5242880 /dev/urandom > "${file}"`]);
    const data = readFileSync(file);
    await start("ret", ["cat", file], ["--cap", String(1 << 20)]);
    await waitExit("ret");
    const c = (await list()).find((x) => x.id === "ret")!;
    expect(c.stdout.end).toBe(5_242_880);
    expect(c.stdout.earliest).toBeGreaterThan(0);
    expect(c.stdout.end - c.stdout.earliest).toBeLessThanOrEqual(1 << 20);

    const below = await attach("ret");
    expect(below.code).toBe(3);
    expect(below.frames).toEqual([{ kind: "dropped", stdoutEarliest: c.stdout.earliest, stderrEarliest: 0 }]);
    expect(below.stderr).toMatch(/earliest stdout offset/);

    const fe = await attach("ret", ["--from-earliest"]);
    expect(fe.code).toBe(0);
    expect(sha256(streamBytes(fe.frames, "stdout", c.stdout.earliest))).toBe(sha256(data.subarray(c.stdout.earliest)));
  });

  it("reports bytes dropped under a slow attach as a gap", async () => {
    const file = join(tmp, "four.bin");
    execFileSync("sh", ["-c", `head -c 4000000 /dev/urandom > "${file}"`]);
    const data = readFileSync(file);
    await start("gap", ["sh", "-c", `sleep 0.3; cat "${file}"`], ["--cap", "65536"]);
    // Attach at once but read nothing for a while: it blocks writing, the writer moves on.
    const a = await attach("gap", [], undefined, new Promise((r) => setTimeout(r, 1500)));
    expect(a.code).toBe(0);
    let at = 0;
    let gaps = 0;
    for (const f of a.frames) {
      if (f.kind === "gap") {
        expect(f).toMatchObject({ stream: "stdout", from: at });
        expect(f.to).toBeGreaterThan(at);
        at = f.to;
        gaps++;
      } else if (f.kind === "data") {
        expect(f.offset).toBe(at);
        expect(f.data.equals(data.subarray(f.offset, f.offset + f.data.length))).toBe(true);
        at += f.data.length;
      }
    }
    expect(exitOf(a.frames)).toMatchObject({ exitCode: 0 });
    expect(gaps).toBeGreaterThan(0);
    expect(at).toBe(4_000_000);
  });

  it("drives a REPL through a kept-open stdin, then closes it", async () => {
    await start("repl", ["sh", "-c", "while read l; do echo got $l; done; echo bye"], ["--keep-stdin"]);
    expect((await sbx(["input", "--dir", dir, "--id", "repl"], "one\n")).code).toBe(0);
    expect((await sbx(["input", "--dir", dir, "--id", "repl"], "two\n")).code).toBe(0);
    await until(() => readFileSync(join(dir, "repl", "stdout.0000000000000000"), "utf8") === "got one\ngot two\n");
    expect(alive((await list()).find((c) => c.id === "repl")!.pid)).toBe(true);
    expect((await sbx(["input", "--dir", dir, "--id", "repl", "--close"], "three\n")).code).toBe(0);
    const a = await attach("repl");
    expect(streamBytes(a.frames, "stdout").toString()).toBe("got one\ngot two\ngot three\nbye\n");
    expect(exitOf(a.frames)).toMatchObject({ exitCode: 0 });
    expect(existsSync(join(dir, "repl", "stdin"))).toBe(false);

    const fin = await sbx(["input", "--dir", dir, "--id", "repl"], "x\n");
    expect(fin.code).toBe(3);
    expect(fin.stderr).toMatch(/^sbx-run: .*\n$/);
    await start("nostdin", ["sleep", "30"]);
    const ns = await sbx(["input", "--dir", dir, "--id", "nostdin"], "x\n");
    expect(ns).toMatchObject({ code: 3, stderr: expect.stringMatching(/stdin is not open/) });
    expect((await sbx(["signal", "--dir", dir, "--id", "nostdin", "--signal", "KILL"])).code).toBe(0);
  });

  it("closes stdin of cat with --close and no data", async () => {
    await start("cat", ["cat"], ["--keep-stdin"]);
    expect((await sbx(["input", "--dir", dir, "--id", "cat"], "abc")).code).toBe(0);
    expect((await sbx(["input", "--dir", dir, "--id", "cat", "--close"])).code).toBe(0);
    const a = await attach("cat");
    expect(streamBytes(a.frames, "stdout").toString()).toBe("abc");
    expect(exitOf(a.frames)).toMatchObject({ exitCode: 0 });
  });

  describe("PTY", () => {
    it("gives the command a terminal", async () => {
      await start("tty", ["sh", "-c", "tty; echo $TERM"], ["--pty", "24", "80", "xterm-256color"]);
      const a = await attach("tty");
      expect(streamBytes(a.frames, "stdout").toString()).toMatch(/^\/dev\/pts\/\d+\r\nxterm-256color\r\n$/);
      expect(a.frames.some((f) => f.kind === "data" && f.stream === "stderr")).toBe(false);
      expect((await list()).find((c) => c.id === "tty")).toMatchObject({ pty: true, stderr: { earliest: 0, end: 0 } });
    });

    it("resizes at once", async () => {
      await start("resize", ["sh", "-c", "stty size; read l; stty size"], ["--pty", "24", "80", "xterm", "--keep-stdin"]);
      await until(async () => streamBytes((await attach("resize", ["--no-follow"])).frames, "stdout").toString().includes("24 80"));
      expect(await sbx(["resize", "--dir", dir, "--id", "resize", "--rows", "50", "--cols", "132"])).toEqual({ code: 0, stdout: "", stderr: "" });
      expect((await sbx(["input", "--dir", dir, "--id", "resize"], "\n")).code).toBe(0);
      const a = await attach("resize");
      expect(streamBytes(a.frames, "stdout").toString()).toMatch(/^24 80\r\n\r\n50 132\r\n$/);
      expect((await sbx(["resize", "--dir", dir, "--id", "resize", "--rows", "5", "--cols", "5"])).code).toBe(3);
      expect((await sbx(["resize", "--dir", dir, "--id", "printf", "--rows", "5", "--cols", "5"]))).toMatchObject({
        code: 3,
        stderr: "sbx-run: no pty\n",
      });
      expect((await sbx(["resize", "--dir", dir, "--id", "resize", "--rows", "0", "--cols", "5"])).code).toBe(2);
    });

    it("interrupts the foreground job on \\x03", async () => {
      await start("ctrlc", ["sleep", "100"], ["--pty", "24", "80", "xterm", "--keep-stdin"]);
      expect((await sbx(["input", "--dir", dir, "--id", "ctrlc"], "\x03")).code).toBe(0);
      expect(await waitExit("ctrlc")).toMatchObject({ signal: "SIGINT" });
    });
  });

  it("signals the process group by name", async () => {
    await start("sig", ["sh", "-c", "sleep 100 & wait"]);
    for (const bad of ["SIGFOO", "9", "", "SIGSEGV"]) {
      expect((await sbx(["signal", "--dir", dir, "--id", "sig", "--signal", bad])).code).toBe(2);
    }
    expect((await sbx(["signal", "--dir", dir, "--id", "sig", "--signal", "Term"])).code).toBe(0);
    expect(await waitExit("sig")).toMatchObject({ signal: "SIGTERM" });
    expect((await sbx(["signal", "--dir", dir, "--id", "sig", "--signal", "SIGKILL"])).code).toBe(3);
    await start("usr1", ["sleep", "100"]);
    expect((await sbx(["signal", "--dir", dir, "--id", "usr1", "--signal", "sigusr1"])).code).toBe(0);
    expect(await waitExit("usr1")).toMatchObject({ signal: "SIGUSR1" });
  });

  it("refuses a duplicate id or running tag with 5, an unknown id with 4", async () => {
    await start("tagged", ["sleep", "100"], ["--tag", "server"]);
    const dup = await sbx(["start", "--dir", dir, "--id", "tagged2", "--tag", "server", "--", "true"]);
    expect(dup).toMatchObject({ code: 5, stderr: expect.stringMatching(/tag server/) });
    expect(existsSync(join(dir, "tagged2"))).toBe(false);
    expect((await sbx(["start", "--dir", dir, "--id", "tagged", "--", "true"])).code).toBe(5);
    expect((await sbx(["signal", "--dir", dir, "--id", "tagged", "--signal", "KILL"])).code).toBe(0);
    await waitExit("tagged");
    await start("tagged3", ["true"], ["--tag", "server"]); // a finished command frees its tag

    for (const args of [
      ["attach"],
      ["input"],
      ["signal", "--signal", "TERM"],
      ["resize", "--rows", "1", "--cols", "1"],
    ]) {
      const r = await sbx([args[0]!, "--dir", dir, "--id", "nosuch", ...args.slice(1)]);
      expect(r).toMatchObject({ code: 4, stderr: "sbx-run: no command nosuch\n" });
    }
  });

  it("keeps the command running when the process that started it dies", async () => {
    const wrapper = spawn("setsid", ["sh", "-c", `"${bin}" start --dir "${dir}" --id survivor -- sleep 60; sleep 60`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    wrapper.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    await until(() => /started \d+\n/.test(out));
    const pid = Number(/started (\d+)/.exec(out)![1]);
    process.kill(-wrapper.pid!, "SIGHUP");
    process.kill(-wrapper.pid!, "SIGKILL");
    await new Promise((r) => wrapper.on("close", r));
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(pid)).toBe(true);
    expect((await list()).find((c) => c.id === "survivor")).toMatchObject({ state: "running", exit: null });
    expect((await sbx(["signal", "--dir", dir, "--id", "survivor", "--signal", "KILL"])).code).toBe(0);
    expect(await waitExit("survivor")).toMatchObject({ signal: "SIGKILL" });
  });

  it("lists commands, and one whose supervisor died as lost", async () => {
    await start("lost", ["sleep", "100"], ["--tag", "lost-tag"]);
    await start("listed", ["sleep", "100"], ["--tag", "a \"quoted\" tag"]);
    const all = await list();
    const listed = all.find((c) => c.id === "listed")!;
    expect(listed).toMatchObject({ tag: 'a "quoted" tag', argv: ["sleep", "100"], state: "running", exit: null, pty: false });
    expect(listed.startedAt).toBeGreaterThan(Date.now() - 60_000);
    expect(all.find((c) => c.id === "printf")).toMatchObject({ state: "exited", exit: { exitCode: 0 }, stdout: { earliest: 0, end: 11 } });
    expect(all.map((c) => c.startedAt)).toEqual([...all.map((c) => c.startedAt)].sort((a, b) => a - b));

    const meta = JSON.parse(readFileSync(join(dir, "lost", "meta.json"), "utf8")) as { supervisorPid: number; pid: number };
    process.kill(meta.supervisorPid, "SIGKILL");
    await until(() => !alive(meta.supervisorPid));
    expect((await list()).find((c) => c.id === "lost")).toMatchObject({ state: "exited", exit: { lost: true } });
    expect(await waitExit("lost")).toEqual({ lost: true });
    expect((await sbx(["signal", "--dir", dir, "--id", "lost", "--signal", "TERM"])).code).toBe(3);
    // A lost command's tag is free again.
    await start("lost2", ["true"], ["--tag", "lost-tag"]);
    process.kill(-meta.pid, "SIGKILL");
    expect((await sbx(["signal", "--dir", dir, "--id", "listed", "--signal", "KILL"])).code).toBe(0);
  });

  it("gc removes commands finished longer ago than asked", async () => {
    const gcDir = join(tmp, "gc");
    const saved = dir;
    dir = gcDir;
    try {
      await start("done1", ["true"]);
      await start("done2", ["sh", "-c", "exit 3"]);
      await start("running", ["sleep", "100"]);
      await waitExit("done1");
      await waitExit("done2");
      await new Promise((r) => setTimeout(r, 20));
      expect(await sbx(["gc", "--dir", gcDir, "--keep-finished", "3600"])).toEqual({ code: 0, stdout: "", stderr: "" });
      expect((await list()).map((c) => c.id).sort()).toEqual(["done1", "done2", "running"]);
      const r = await sbx(["gc", "--dir", gcDir, "--keep-finished", "0"]);
      expect(r.code).toBe(0);
      expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(["removed done1", "removed done2"]);
      expect((await list()).map((c) => c.id)).toEqual(["running"]);
      expect(existsSync(join(gcDir, "done1"))).toBe(false);
      expect((await sbx(["signal", "--dir", gcDir, "--id", "running", "--signal", "KILL"])).code).toBe(0);
      await waitExit("running");
      await new Promise((r) => setTimeout(r, 20));
      expect((await sbx(["gc", "--dir", gcDir, "--keep-finished", "0"])).stdout).toBe("removed running\n");
    } finally {
      dir = saved;
    }
  });
});

describe("watch", () => {
  interface Watching {
    events: WatchRecord[];
    overflows: number;
    ready: Promise<void>;
    stop(): Promise<number | null>;
  }

  const watchChild = new WeakMap<object, ReturnType<typeof spawn>>();

  function watch(path: string, args: string[] = []): Watching {
    const child = spawn(bin, ["watch", "--path", path, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const parser = new FrameParser();
    const w = { events: [] as WatchRecord[], overflows: 0 };
    let onReady: () => void = () => {};
    const ready = new Promise<void>((r) => (onReady = r));
    child.stdout.on("data", (d: Buffer) => {
      for (const f of parser.push(d)) {
        if (f.kind === "ready") onReady();
        else if (f.kind === "overflow") w.overflows++;
        else if (f.kind === "watch") w.events.push(f.event);
      }
    });
    const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    watchChild.set(w, child);
    return Object.assign(w, {
      ready,
      stop: async () => {
        child.stdout.destroy(); // the reader goes away: it exits 0 by itself
        return closed;
      },
    }) as Watching;
  }

  const has = (w: Watching, type: string, path: string, oldPath = "") =>
    w.events.some((e) => e.type === type && e.path === path && (oldPath === "" || e.oldPath === oldPath));

  it("reports created, modified, renamed and removed files", async () => {
    const root = mkdtempSync(join(tmp, "watch-"));
    const w = watch(root);
    await w.ready;
    writeFileSync(join(root, "a"), "1");
    appendFileSync(join(root, "a"), "2");
    renameSync(join(root, "a"), join(root, "b"));
    chmodSync(join(root, "b"), 0o600);
    mkdirSync(join(root, "d"));
    rmSync(join(root, "b"));
    await until(() => has(w, "removed", "b"));
    expect(has(w, "created", "a")).toBe(true);
    expect(has(w, "modified", "a")).toBe(true);
    expect(has(w, "renamed", "b", "a")).toBe(true);
    expect(has(w, "modified", "b")).toBe(true);
    expect(w.events.find((e) => e.path === "d")).toMatchObject({ type: "created", isDir: true });
    expect(Math.abs(w.events[0]!.timeMs - Date.now())).toBeLessThan(60_000);
    expect(w.overflows).toBe(0);
    expect(await w.stop()).toBe(0);
  });

  it("recursive: watches new subdirectories, and what was created in them before their watch", async () => {
    const root = mkdtempSync(join(tmp, "watch-"));
    mkdirSync(join(root, "old"));
    const w = watch(root, ["--recursive"]);
    await w.ready;
    writeFileSync(join(root, "old", "x"), "");
    mkdirSync(join(root, "n1", "n2"), { recursive: true });
    writeFileSync(join(root, "n1", "n2", "f"), "");
    await until(() => has(w, "created", "n1/n2/f") && has(w, "created", "old/x"));
    renameSync(join(root, "n1"), join(root, "m1"));
    await until(() => has(w, "renamed", "m1", "n1"));
    writeFileSync(join(root, "m1", "n2", "g"), "");
    await until(() => has(w, "created", "m1/n2/g"));
    // Moved out of the tree: a remove, and nothing more from inside it.
    const outside = mkdtempSync(join(tmp, "outside-"));
    renameSync(join(root, "m1"), join(outside, "m1"));
    await until(() => has(w, "removed", "m1"));
    writeFileSync(join(outside, "m1", "n2", "late"), "");
    writeFileSync(join(root, "marker"), "");
    await until(() => has(w, "created", "marker"));
    expect(w.events.some((e) => e.path.endsWith("late"))).toBe(false);
    expect(await w.stop()).toBe(0);
  });

  it("a burst of 1,000 creations: all seen, or an overflow", async () => {
    const root = mkdtempSync(join(tmp, "watch-"));
    const w = watch(root);
    await w.ready;
    for (let i = 0; i < 1000; i++) writeFileSync(join(root, `f${i}`), "");
    await until(() => w.overflows > 0 || new Set(w.events.filter((e) => e.type === "created").map((e) => e.path)).size === 1000);
    if (w.overflows === 0) expect(new Set(w.events.filter((e) => e.type === "created").map((e) => e.path)).size).toBe(1000);
    expect(await w.stop()).toBe(0);
  });

  it("a reader too slow for the kernel's queue gets an overflow frame, and the watch goes on", async () => {
    const max = Number(readFileSync("/proc/sys/fs/inotify/max_queued_events", "utf8"));
    const root = mkdtempSync(join(tmp, "watch-"));
    const w = watch(root);
    await w.ready;
    // Stop reading: the helper blocks on its full stdout pipe, the kernel queue fills.
    const out = (watchChild.get(w) as ReturnType<typeof spawn>).stdout!;
    out.pause();
    for (let i = 0; i < max + 2000; i++) writeFileSync(join(root, `f${i}`), "");
    out.resume();
    await until(() => w.overflows > 0, 30_000);
    writeFileSync(join(root, "after"), "");
    await until(() => has(w, "created", "after"));
    expect(await w.stop()).toBe(0);
  }, 60_000);

  it("errors: missing (4), not a directory (3), usage (2)", async () => {
    writeFileSync(join(tmp, "plain"), "");
    expect(await sbx(["watch", "--path", join(tmp, "nope")])).toMatchObject({ code: 4, stdout: "" });
    expect(await sbx(["watch", "--path", join(tmp, "plain")])).toMatchObject({ code: 3, stdout: "" });
    expect((await sbx(["watch"])).code).toBe(2);
  });

  it("parses watch frames, bounded", () => {
    const rec = Buffer.concat([Buffer.from([1, 1]), Buffer.alloc(8), Buffer.from([0, 1]), Buffer.from("p"), Buffer.from([0, 0])]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(rec.length);
    const frames = new FrameParser().push(Buffer.concat([Buffer.from("R"), Buffer.from("W"), len, rec, Buffer.from("Q")]));
    expect(frames).toEqual([{ kind: "ready" }, { kind: "watch", event: { type: "created", isDir: true, timeMs: 0, path: "p", oldPath: "" } }, { kind: "overflow" }]);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(1 << 20);
    expect(() => new FrameParser().push(Buffer.concat([Buffer.from("W"), big]))).toThrow(FrameError);
    const bad = Buffer.from(rec);
    bad[0] = 9;
    expect(() => new FrameParser().push(Buffer.concat([Buffer.from("W"), len, bad]))).toThrow(FrameError);
  });
});
