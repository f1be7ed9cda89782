/**
 * sandboxd as a child process, started the way an operator does (`node
 * --import tsx server/main.ts`, configured by SANDBOXD_* variables), so its
 * CPU can be read from /proc on its own and it shares no event loop with the
 * benchmark's load generator. Ready once grpc.health.v1 says SERVING.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { freePort } from "../../test/fixtures/ports.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const LOG_TAIL = 64 * 1024;

export interface ChildServer {
  address: string;
  pid: number;
  /** The last 64 KiB of its stdout and stderr. */
  logTail(): string;
  /** SIGTERM (sandboxes are kept), SIGKILL after 20 s. Idempotent. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts sandboxd with exactly `env` as its SANDBOXD_* settings (none are inherited from the benchmark's environment). */
export async function startChildServer(env: Record<string, string>, readyTimeoutMs = 120_000): Promise<ChildServer> {
  const address = `127.0.0.1:${await freePort()}`;
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^SANDBOXD?_/.test(k)));
  const child = spawn("node", ["--import", "tsx", "server/main.ts"], {
    cwd: ROOT,
    env: { ...inherited, SANDBOXD_LISTEN: address, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-LOG_TAIL));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  // If the benchmark dies without reaching its finally blocks, the server must not outlive it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  let stopping: Promise<void> | undefined;
  const server: ChildServer = {
    address,
    pid: child.pid!,
    logTail: () => output,
    stop: () => (stopping ??= (async () => {
      process.removeListener("exit", killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(t);
    })()),
  };
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://${address}` }));
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`sandboxd exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    try {
      const res = await health.check({ service: "" }, { timeoutMs: 2000 });
      if (res.status === HealthCheckResponse_ServingStatus.SERVING) return server;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`sandboxd not SERVING within ${readyTimeoutMs / 1000} s:\n${output}`);
    }
    await sleep(250);
  }
}
