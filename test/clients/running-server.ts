/**
 * Starts sandboxd the way an operator does (`tsx server/main.ts`, configured by
 * SANDBOXD_* variables) as a child process with its own runtime instance and
 * subnet, and waits until grpc.health.v1 says SERVING.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort } from "../fixtures/ports.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const GRPCURL = `${ROOT}.tools/bin/grpcurl`;
export const run = promisify(execFile);

export interface RunningServer {
  address: string;
  process: ChildProcess;
  logs(): string;
  /** SIGTERM, then SIGKILL after 20 s; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** kill -9, as a crash: nothing is cleaned up. Resolves once the process is gone. */
  kill(): Promise<void>;
}


export async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const address = `127.0.0.1:${await freePort()}`;
  const child = spawn("node", ["--import", "tsx", "server/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, SANDBOXD_LISTEN: address, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const server: RunningServer = {
    address,
    process: child,
    logs: () => output,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}:\n${output}`);
    try {
      const { stdout } = await run(GRPCURL, ["-plaintext", address, "grpc.health.v1.Health/Check"], { timeout: 5_000 });
      if (stdout.includes("SERVING") && !stdout.includes("NOT_SERVING")) return server;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`server not SERVING within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
