/**
 * A benchmark client program in its own process (bench/data/: Go, Python,
 * TypeScript), driven over its stdin/stdout line protocol: one JSON command
 * per line, one JSON answer per line.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export interface DataClient {
  readonly name: string;
  /** Sends one command; resolves with its answer, rejects on {"error"}. */
  send<T = Record<string, unknown>>(cmd: Record<string, unknown>): Promise<T>;
  quit(): Promise<void>;
}

export async function startDataClient(name: string, command: string, args: string[], env: Record<string, string>, cwd: string): Promise<DataClient> {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const waiting: Array<(line: string | undefined) => void> = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on("line", (l) => waiting.shift()?.(l));
  let exited = false;
  const onGone = () => {
    exited = true;
    for (const w of waiting.splice(0)) w(undefined);
  };
  child.once("exit", onGone);
  child.once("error", onGone); // could not be started
  const next = () => new Promise<string | undefined>((r) => (exited ? r(undefined) : waiting.push(r)));
  const parse = (line: string | undefined) => {
    if (line === undefined) throw new Error(`${name} client exited: ${stderr.trim().slice(-2000)}`);
    const m = JSON.parse(line) as Record<string, unknown>;
    if (typeof m.error === "string") throw new Error(`${name} client: ${m.error}`);
    return m;
  };
  parse(await next()); // {"ready":true}
  let queue = Promise.resolve();
  return {
    name,
    send<T>(cmd: Record<string, unknown>) {
      const answer = queue.then(async () => {
        const reply = next();
        child.stdin!.write(`${JSON.stringify(cmd)}\n`);
        return parse(await reply) as T;
      });
      queue = answer.then(() => undefined, () => undefined);
      return answer;
    },
    async quit() {
      process.removeListener("exit", killOnExit);
      if (child.exitCode !== null) return;
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.stdin!.write(`${JSON.stringify({ op: "quit" })}\n`);
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(t);
    },
  };
}
