import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSandboxError } from "../errors.js";
import { exec } from "./exec.js";
import { execCollect } from "./exec-collect.js";
import type { ExecEvent } from "./exec-types.js";
import { startSpecSandbox, type SpecSandbox } from "./spec-sandbox.js";

let sb: SpecSandbox;
beforeAll(async () => {
  sb = await startSpecSandbox();
});
afterAll(async () => {
  await sb?.stop();
});

const run = (o: Parameters<typeof execCollect>[2]) => execCollect(sb.registry, sb.id, o);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Live (non-zombie) processes whose command line contains `marker`. */
async function live(marker: string): Promise<string[]> {
  const out = await sb.sh(`ps -eo stat=,args= | awk '$1 !~ /^Z/' | grep -F -- ${JSON.stringify(marker)} | grep -v grep || true`);
  return out.split("\n").filter(Boolean);
}

async function waitGone(marker: string): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    const procs = await live(marker);
    if (procs.length === 0) return procs;
    await sleep(100);
  }
  return live(marker);
}

describe("exec", () => {
  it("reports exit codes and signals", async () => {
    expect((await run({ argv: ["true"] })).exitCode).toBe(0);
    const r = await run({ shell: "exit 42" });
    expect(r).toMatchObject({ exitCode: 42, signal: null, reason: "exited" });
    const k = await run({ shell: "kill -TERM $$" });
    expect(k).toMatchObject({ exitCode: null, signal: "SIGTERM", reason: "exited" });
    expect(k.pid).toBeGreaterThan(1);
    expect(k.durationMs).toBeGreaterThan(0);
  });

  it("keeps stdout and stderr apart, in the order produced", async () => {
    const events: ExecEvent[] = [];
    for await (const e of exec(sb.registry, sb.id, {
      shell: "printf a; sleep 0.05; printf b >&2; sleep 0.05; printf c; sleep 0.05; printf d >&2",
    })) {
      events.push(e);
    }
    const seq = events.filter((e) => e.type === "stdout" || e.type === "stderr").map((e) => `${e.type}:${"data" in e ? e.data : ""}`);
    expect(seq).toEqual(["stdout:a", "stderr:b", "stdout:c", "stderr:d"]);
    expect(events[0]!.type).toBe("started");
    expect(events.at(-1)!.type).toBe("exited");
  });

  it("delivers binary output byte for byte (invalid UTF-8 intact)", async () => {
    const r = await run({ shell: "printf '\\377\\376\\000\\200\\303(abc'; printf '\\300\\001' >&2" });
    expect(r.stdout).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x61, 0x62, 0x63]));
    expect(r.stderr).toEqual(Buffer.from([0xc0, 0x01]));
  });

  it("passes stdin bytes then EOF, and EOF at once without stdin", async () => {
    const input = Buffer.from([0, 1, 2, 255, 10, 0xc3, 0x28]);
    expect((await run({ argv: ["cat"], stdin: input })).stdout).toEqual(input);
    const none = await run({ argv: ["cat"], timeoutMs: 5_000 });
    expect(none).toMatchObject({ exitCode: 0, reason: "exited" });
    async function* chunks() {
      for (let i = 0; i < 100; i++) yield Buffer.alloc(10_000, i);
    }
    const streamed = await run({ shell: "wc -c", stdin: chunks() });
    expect(streamed.stdout.toString().trim()).toBe("1000000");
  });

  it("stops reading stdin when the command exits early", async () => {
    let pulled = 0;
    async function* endless() {
      for (;;) {
        pulled++;
        yield Buffer.alloc(65536, 97);
      }
    }
    const r = await run({ shell: "head -c 10", stdin: endless(), timeoutMs: 10_000 });
    expect(r).toMatchObject({ exitCode: 0, reason: "exited" });
    expect(r.stdout.toString()).toBe("a".repeat(10));
    const after = pulled;
    await sleep(100);
    expect(pulled).toBe(after);
  });

  it("runs shell commands with bash reading no rc file, though bash would under sshd", async () => {
    await sb.sh(`printf 'echo RC-RAN\\nexit 0\\n' > ${sb.homeDir}/.bashrc`);
    try {
      const r = await run({ shell: 'echo "bash ${BASH_VERSION%%.*}"; exit 3' });
      expect(r).toMatchObject({ exitCode: 3, reason: "exited" });
      expect(r.stdout.toString()).toMatch(/^bash \d+\n$/);
      // Proof the file would run: a plain top-level `bash -c` under sshd's variables sources it.
      const plain = await run({ argv: ["env", "SHLVL=0", "bash", "-c", "echo cmd"] });
      expect(plain.stdout.toString()).toBe("RC-RAN\n");
    } finally {
      await sb.sh(`rm -f ${sb.homeDir}/.bashrc`);
    }
  });

  it("reports a missing program as exit 127 with the shell's message", async () => {
    const r = await run({ argv: ["no-such-program-xyz"] });
    expect(r.exitCode).toBe(127);
    expect(r.stderr.toString()).toContain("no-such-program-xyz");
  });

  it("gives up a queued exec on abort without running it", async () => {
    const { SessionRegistry } = await import("./session-registry.js");
    const registry = new SessionRegistry({ maxConnectionsPerSandbox: 1, channelsPerConnection: 2, reservedChannels: 1 });
    registry.register("q", sb.target);
    try {
      const busy = execCollect(registry, "q", { shell: "sleep 1" });
      await sleep(200);
      const ac = new AbortController();
      const queued = execCollect(registry, "q", { argv: ["true"], signal: ac.signal });
      setTimeout(() => ac.abort(), 100);
      const t0 = Date.now();
      await expect(queued).rejects.toMatchObject({ kind: "cancelled" });
      expect(Date.now() - t0).toBeLessThan(800);
      expect((await busy).exitCode).toBe(0);
    } finally {
      await registry.closeAll();
    }
  });

  it("passes argv literally", async () => {
    const args = ["a b", "'q'", '"dq"', "$(echo x)", "`id`", "$HOME", "ünïcödé 😀", "*", "\\n", "", "-n", "a'b\"c"];
    const r = await run({ argv: ["printf", "%s|", ...args] });
    expect(r.stdout.toString()).toBe(args.map((a) => a + "|").join(""));
  });

  it("runs shell strings, and sets env in the command line", async () => {
    const env = { A: "x y", B_2: "it's $(id) `x` \"q\"", _U: "ünï\nline" };
    const r = await run({ shell: 'printf "%s|%s|%s" "$A" "$B_2" "$_U"; echo " $((6*7))"', env });
    expect(r.stdout.toString()).toBe(`${env.A}|${env.B_2}|${env._U} 42\n`);
  });

  it("rejects bad env names, NUL bytes and empty commands as invalid_argument", () => {
    const bad = (o: Parameters<typeof exec>[2], field: string) => {
      try {
        exec(sb.registry, sb.id, o);
      } catch (e) {
        expect(isSandboxError(e, "invalid_argument")).toBe(true);
        expect((e as { field?: string }).field).toBe(field);
        return;
      }
      throw new Error("no error");
    };
    bad({ argv: ["true"], env: { "1X": "v" } }, "env");
    bad({ argv: ["true"], env: { "A-B": "v" } }, "env");
    bad({ argv: ["true"], env: { A: "v\0" } }, "env.A");
    bad({ argv: ["echo", "a\0b"] }, "argv[1]");
    bad({ shell: "echo", cwd: "/tmp\0" }, "cwd");
    bad({ argv: [] }, "argv");
    bad({ argv: ["true"], shell: "true" }, "argv");
    bad({ argv: ["echo", "x".repeat(200_000)] }, "argv");
    bad({ argv: ["true"], timeoutMs: -1 }, "timeoutMs");
  });

  it("runs in cwd, and fails clearly when cwd is missing or not a directory", async () => {
    expect((await run({ argv: ["pwd"], cwd: sb.workDir })).stdout.toString()).toBe(sb.workDir + "\n");
    expect((await run({ argv: ["pwd"] })).stdout.toString()).toBe(sb.homeDir + "\n");
    await sb.sh(`mkdir -p '${sb.workDir}/rel dir' && touch '${sb.workDir}/afile'`);
    const rel = sb.workDir.slice(sb.homeDir.length + 1) + "/rel dir";
    expect((await run({ argv: ["pwd"], cwd: rel })).stdout.toString()).toBe(`${sb.workDir}/rel dir\n`);
    await expect(run({ argv: ["pwd"], cwd: sb.workDir + "/nope" })).rejects.toMatchObject({
      kind: "failed_precondition",
      message: expect.stringContaining("does not exist"),
    });
    await expect(run({ argv: ["pwd"], cwd: sb.workDir + "/afile" })).rejects.toMatchObject({
      kind: "failed_precondition",
      message: expect.stringContaining("not a directory"),
    });
  });

  it("times out by killing the whole process group, children included", async () => {
    const marker = "98765" + Math.floor(Math.random() * 1000);
    const t0 = Date.now();
    const r = await run({ shell: `printf before; sleep ${marker} & sleep ${marker}1`, timeoutMs: 500 });
    expect(r).toMatchObject({ exitCode: null, signal: "SIGKILL", reason: "timeout" });
    expect(r.stdout.toString()).toBe("before"); // output produced before the timeout is kept
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await waitGone(marker)).toEqual([]);
  });

  it("cancels through the AbortSignal, killing children", async () => {
    const marker = "87654" + Math.floor(Math.random() * 1000);
    const ac = new AbortController();
    const events: ExecEvent[] = [];
    for await (const e of exec(sb.registry, sb.id, { shell: `sh -c 'sleep ${marker}' & sleep ${marker}`, signal: ac.signal })) {
      events.push(e);
      if (e.type === "started") setTimeout(() => ac.abort(), 200);
    }
    expect(events.at(-1)).toMatchObject({ type: "exited", reason: "cancelled", signal: "SIGKILL" });
    expect(await waitGone(marker)).toEqual([]);
  });

  it("kills the command and frees the channel when the consumer breaks out", async () => {
    const marker = "76543" + Math.floor(Math.random() * 1000);
    for await (const e of exec(sb.registry, sb.id, { shell: `sleep ${marker} & yes ${marker}y` })) {
      if (e.type === "stdout") break;
    }
    expect(await waitGone(marker)).toEqual([]);
    expect(sb.registry.stats(sb.id).activeChannels).toBe(0);
  });

  it("kills an endless command at its output cap, like `cmd | head -c N`", async () => {
    const marker = `yes-capped-${Date.now()}`;
    const r = await run({ argv: ["yes", marker], maxStdoutBytes: 1 << 20 });
    expect(r).toMatchObject({ reason: "output_limit", exitCode: null, signal: "SIGKILL", stdoutTruncated: true, stderrTruncated: false });
    expect(r.stdout.length).toBe(1 << 20);
    expect(r.stdout.subarray(0, marker.length + 1).toString()).toBe(`${marker}\n`);
    expect(await waitGone(marker)).toEqual([]);
    // Exactly the cap and no more is not past it: the command ends by itself.
    const exact = await run({ shell: "head -c 1000 /dev/zero", maxStdoutBytes: 1000 });
    expect(exact).toMatchObject({ reason: "exited", exitCode: 0, stdoutTruncated: false });
  });

  it("with onOutputLimit discard, drops output past the cap and lets the command run", async () => {
    const r = await run({
      shell: "head -c 5000000 /dev/zero; head -c 3000 /dev/zero >&2; echo done >&2",
      maxStdoutBytes: 1000,
      maxStderrBytes: 4000,
      onOutputLimit: "discard",
    });
    expect(r).toMatchObject({ exitCode: 0, stdoutTruncated: true, stderrTruncated: false });
    expect(r.stdout.length).toBe(1000);
    expect(r.stderr.length).toBe(3005);
  });

  it("streams 100 MB of output with flat memory", async () => {
    global.gc?.();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakHeap = base.heapUsed;
    let bytes = 0;
    const t0 = performance.now();
    for await (const e of exec(sb.registry, sb.id, { shell: "head -c 100000000 /dev/zero" })) {
      if (e.type === "stdout") {
        bytes += e.data.length;
        if ((bytes & 0xfffff) < e.data.length) {
          const m = process.memoryUsage();
          peakRss = Math.max(peakRss, m.rss);
          peakHeap = Math.max(peakHeap, m.heapUsed);
        }
      }
    }
    const secs = (performance.now() - t0) / 1000;
    console.log(`exec stream: ${(bytes / 1e6 / secs).toFixed(0)} MB/s; rss +${((peakRss - base.rss) / 1e6).toFixed(1)} MB, heap +${((peakHeap - base.heapUsed) / 1e6).toFixed(1)} MB`);
    expect(bytes).toBe(100_000_000);
    expect(peakRss - base.rss).toBeLessThan(64e6);
    expect(peakHeap - base.heapUsed).toBeLessThan(64e6);
  });

  it("pauses the remote command while the consumer is slow", async () => {
    const progress = `${sb.workDir}/progress`;
    // `echo > file` truncates first: a read can land in between and see nothing.
    const counter = async () => {
      for (;;) {
        const v = (await sb.sh(`cat '${progress}'`)).trim();
        if (v !== "") return Number(v);
      }
    };
    const it = exec(sb.registry, sb.id, {
      shell: `i=0; while :; do echo $i > '${progress}'; head -c 65536 /dev/zero; i=$((i+1)); done`,
      highWaterMark: 256 * 1024,
    });
    try {
      const first = await it.next();
      expect(first.value).toMatchObject({ type: "started" });
      await sleep(1_000); // read nothing: the SSH window fills up and the command blocks
      const a = await counter();
      await sleep(500);
      const b = await counter();
      expect(b).toBe(a); // stalled
      expect(a * 65536).toBeLessThan(16 * 1024 * 1024); // a few windows' worth, not unbounded
      let got = 0;
      while (got < 8 * 1024 * 1024) {
        const e = await it.next();
        if (e.value?.type === "stdout") got += e.value.data.length;
      }
      expect(await counter()).toBeGreaterThan(a); // resumed
    } finally {
      await it.return?.();
    }
  });

  it.each([50, 100])("runs %i concurrent commands on one sandbox", async (n) => {
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => run({ shell: `sleep 0.3; echo ${i}` })),
    );
    results.forEach((r, i) => {
      expect(r.exitCode).toBe(0);
      expect(r.stdout.toString()).toBe(`${i}\n`);
    });
    expect(sb.registry.stats(sb.id).activeChannels).toBe(0);
  });

  it("measures exec latency", async () => {
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await run({ argv: ["true"] });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    console.log(`exec true: p50 ${times[50]!.toFixed(2)} ms, p99 ${times[98]!.toFixed(2)} ms`);
    expect(times[50]).toBeLessThan(100);
  });
});
