/**
 * The TypeScript side of the data-path benchmark: a long-lived client
 * program measuring sandboxd the way a Node user's service sees it, through
 * the client library (clients/ts, connect-node over HTTP/2) with its default
 * transport, in its own process. Started and driven by bench/data-path.ts as
 * `SANDBOXD_ADDR=host:port SANDBOX_ID=sbx-... node --import tsx bench/data/ts_client.ts`,
 * with the same line protocol as bench/data/go and bench/data/python_client.py:
 * `{"ready":true}` once attached, then one JSON answer line per JSON command
 * line (exec, stream, upload, download, concurrent, quit); a failed op answers
 * {"error":"..."} and the program keeps serving.
 */
import { createInterface } from "node:readline";
import { SandboxdClient } from "../../clients/ts/src/index.js";

type Command =
  | { op: "exec"; n: number }
  | { op: "stream"; bytes: number }
  | { op: "upload"; local: string; remote: string }
  | { op: "download"; remote: string; local: string }
  | { op: "concurrent"; n: number; args: string[] }
  | { op: "quit" };

const answer = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const ms = (t0: number) => performance.now() - t0;

const client = new SandboxdClient({ address: process.env.SANDBOXD_ADDR });
const sb = await client.get(process.env.SANDBOX_ID ?? "");
sb.detach(); // the orchestrator owns the sandbox: never renew or destroy it here
answer({ ready: true });

async function handle(c: Command): Promise<object> {
  switch (c.op) {
    case "exec": {
      const out: number[] = [];
      for (let i = 0; i < c.n; i++) {
        const t0 = performance.now();
        const r = await sb.run(["true"]);
        out.push(ms(t0));
        if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
      }
      return { ms: out };
    }
    case "stream": {
      const t0 = performance.now();
      let bytes = 0;
      let exit: number | null = null;
      for await (const ev of sb.stream(["head", "-c", String(c.bytes), "/dev/zero"])) {
        if (ev.type === "stdout") bytes += ev.data.length;
        else if (ev.type === "exited") exit = ev.exitCode;
      }
      if (exit !== 0) throw new Error(`head exited ${exit}`);
      return { ms: ms(t0), bytes };
    }
    case "upload": {
      const t0 = performance.now();
      const r = await sb.upload(c.remote, c.local);
      return { ms: ms(t0), bytes: Number(r.bytesWritten) };
    }
    case "download": {
      const t0 = performance.now();
      const r = await sb.download(c.remote, c.local);
      return { ms: ms(t0), bytes: r.size };
    }
    case "concurrent": {
      let failures = 0;
      const out = await Promise.all(
        Array.from({ length: c.n }, async () => {
          const t0 = performance.now();
          try {
            const r = await sb.run(c.args);
            if (r.exitCode !== 0 || r.stdoutText !== "ok\n") failures++;
          } catch (err) {
            failures++;
            process.stderr.write(`ts_client: ${String(err)}\n`);
          }
          return ms(t0);
        }),
      );
      return { ms: out, failures };
    }
    case "quit":
      return { ok: true };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let cmd: Command;
  try {
    cmd = JSON.parse(line) as Command;
    answer(await handle(cmd));
  } catch (err) {
    answer({ error: String(err) });
    continue;
  }
  if (cmd.op === "quit") break;
}
client.close();
