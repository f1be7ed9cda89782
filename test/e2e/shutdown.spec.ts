/**
 * Graceful shutdown of a real sandboxd process (started like npm start):
 * SIGTERM lets a streaming Exec finish within the grace period, sandboxes
 * survive the restart (adopted by the next process), and RPCs still running
 * after the grace period are cancelled with UNAVAILABLE.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { collectExec, e2eInstance, purge } from "./harness.js";
import { freePort } from "../fixtures/ports.js";

const N = 4;
const ROOT = fileURLToPath(new URL("../..", import.meta.url));


interface Proc {
  child: ChildProcess;
  client: ReturnType<typeof createClient<typeof SandboxService>>;
  exited: Promise<number | null>;
  logs: () => string;
}
const procs: Proc[] = [];

async function startProcess(graceMs: number): Promise<Proc> {
  const { instance, subnet } = e2eInstance(N);
  const address = `127.0.0.1:${await freePort()}`;
  const child = spawn("node", ["--import", "tsx", "server/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, SANDBOXD_LISTEN: address, SANDBOXD_LOCAL_INSTANCE: instance, SANDBOXD_LOCAL_SUBNET: subnet,
      SANDBOXD_SHUTDOWN_GRACE: `${graceMs}ms`, SANDBOXD_DEFAULT_MEMORY_MIB: "256", SANDBOXD_DEFAULT_DISK_GIB: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d));
  child.stderr!.on("data", (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const transport = createGrpcTransport({ baseUrl: `http://${address}` });
  const p: Proc = { child, client: createClient(SandboxService, transport), exited, logs: () => out };
  procs.push(p);
  const health = createClient(Health, transport);
  for (const end = Date.now() + 60_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    if (child.exitCode !== null) throw new Error(`sandboxd exited ${child.exitCode}: ${out}`);
    const status = await health.check({}).then((r) => r.status, () => undefined);
    if (status === HealthCheckResponse_ServingStatus.SERVING) {
      expect(out).toMatch(new RegExp(`serving on ${address}`));
      return p;
    }
  }
  throw new Error(`sandboxd not SERVING within 60 s: ${out}`);
}

describe("graceful shutdown", () => {
  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await purge(N);
  });

  it("SIGTERM lets a streaming Exec finish and keeps the sandbox", async () => {
    const first = await startProcess(10_000);
    const id = (await first.client.createSandbox({ labels: { suite: "shutdown" } })).sandbox!.id;
    const stream = first.client.exec({ sandboxId: id, command: { case: "shell", value: "echo begin; sleep 2; echo end" } });
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.event.case).toBe("started");
    first.child.kill("SIGTERM");
    const rest = await collectExec({ [Symbol.asyncIterator]: () => it });
    expect(rest.stdout).toBe("begin\nend\n");
    expect(rest.exited!.exitCode).toBe(0);
    expect(await first.exited, first.logs()).toBe(0);

    const second = await startProcess(500);
    const adopted = (await second.client.getSandbox({ sandboxId: id })).sandbox!;
    expect(adopted.id).toBe(id);
    const r = await collectExec(second.client.exec({ sandboxId: id, command: { case: "shell", value: "echo still here" } }));
    expect(r.stdout).toBe("still here\n");

    // Past the grace period the RPC is cancelled (UNAVAILABLE) and the process still exits cleanly.
    const long = collectExec(second.client.exec({ sandboxId: id, command: { case: "shell", value: "sleep 30" } }));
    await new Promise((r) => setTimeout(r, 300));
    second.child.kill("SIGTERM");
    const err = await long.then(() => undefined, (x: unknown) => x);
    expect(err).toBeInstanceOf(ConnectError);
    expect(Code[(err as ConnectError).code]).toBe("Unavailable");
    expect(await second.exited, second.logs()).toBe(0);
  });
});
