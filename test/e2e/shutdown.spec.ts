/**
 * Graceful shutdown of a real sandboxd process, started the way the README
 * and the systemd unit start it (`scripts/start.sh`, which becomes the node
 * process): on SIGTERM health turns NOT_SERVING at once while the port still
 * accepts and serves for the drain delay, then GOAWAY (new connections are
 * refused, Health Watch ends with UNAVAILABLE), running RPCs finish within
 * the grace period, and only then does the process exit. Sandboxes survive
 * the restart; RPCs still running after the grace period get UNAVAILABLE.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { collectExec, e2eInstance, purge } from "./harness.js";
import { freePort } from "../fixtures/ports.js";
import { ROOT } from "../fixtures/sandboxd-process.js";

const N = 4;

interface Proc {
  child: ChildProcess;
  address: string;
  client: ReturnType<typeof createClient<typeof SandboxService>>;
  exited: Promise<number | null>;
  logs: () => string;
}
const procs: Proc[] = [];

/** A client on a connection of its own (a new TCP connection, as a load balancer would open). */
const fresh = <T extends typeof SandboxService | typeof Health>(service: T, address: string) =>
  createClient(service, createGrpcTransport({ baseUrl: `http://${address}` }));

async function startProcess(env: Record<string, string>): Promise<Proc> {
  const { instance, subnet } = e2eInstance(N);
  const address = `127.0.0.1:${await freePort()}`;
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^SANDBOXD?_/.test(k)));
  const child = spawn("scripts/start.sh", [], {
    cwd: ROOT,
    env: { ...inherited, SANDBOXD_LISTEN: address, SANDBOXD_LOCAL_INSTANCE: instance, SANDBOXD_LOCAL_SUBNET: subnet,
      SANDBOXD_DEFAULT_MEMORY_MIB: "256", SANDBOXD_DEFAULT_DISK_GIB: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d));
  child.stderr!.on("data", (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const p: Proc = { child, address, client: fresh(SandboxService, address), exited, logs: () => out };
  procs.push(p);
  const health = fresh(Health, address);
  for (const end = Date.now() + 120_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    if (child.exitCode !== null) throw new Error(`sandboxd exited ${child.exitCode}: ${out}`);
    const status = await health.check({}).then((r) => r.status, () => undefined);
    if (status === Status.SERVING) return p;
  }
  throw new Error(`sandboxd not SERVING within 120 s: ${out}`);
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  return err === undefined ? undefined : Code[ConnectError.from(err).code];
}

describe("graceful shutdown", () => {
  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await purge(N);
  });

  it("scripts/start.sh leaves one process, node running sandboxd, which handles SIGTERM in order", async () => {
    const p = await startProcess({ SANDBOXD_DRAIN_DELAY: "1500ms", SANDBOXD_SHUTDOWN_GRACE: "10s" });
    // What the supervisor started is the server itself, not a shell or npm in front of it.
    expect(readlinkSync(`/proc/${p.child.pid}/exe`)).toMatch(/\/node$/);
    expect(readFileSync(`/proc/${p.child.pid}/cmdline`, "utf8").split("\0").filter(Boolean)).toEqual(["node", "--max-semi-space-size=64", "--import", "tsx", "server/main.ts"]);

    const id = (await p.client.createSandbox({ labels: { suite: "shutdown" } })).sandbox!.id;
    const watchSeen: Status[] = [];
    let watchSawNotServing!: () => void;
    const notServing = new Promise<void>((r) => (watchSawNotServing = r));
    const watch = (async () => {
      for await (const r of fresh(Health, p.address).watch({ service: "sandbox.v1.SandboxService" })) {
        watchSeen.push(r.status);
        if (r.status === Status.NOT_SERVING) watchSawNotServing();
      }
    })();
    const watchEnd = codeOf(watch);
    const stream = p.client.exec({ sandboxId: id, command: { case: "shell", value: "echo begin; sleep 3; echo end" } });
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.event.case).toBe("started");
    const exec = collectExec({ [Symbol.asyncIterator]: () => it });

    p.child.kill("SIGTERM");
    await notServing;
    // NOT_SERVING is out, yet a new connection is still accepted and served (the drain delay).
    expect((await fresh(Health, p.address).check({})).status).toBe(Status.NOT_SERVING);
    const during = await fresh(SandboxService, p.address).getSandbox({ sandboxId: id });
    expect(during.sandbox!.id).toBe(id);
    expect(p.child.exitCode).toBeNull();

    // After the drain delay: the watch ends with UNAVAILABLE (not OK) and new connections are refused.
    expect(await watchEnd).toBe("Unavailable");
    expect(watchSeen).toEqual([Status.SERVING, Status.NOT_SERVING]);
    expect(await codeOf(fresh(Health, p.address).check({}, { timeoutMs: 2000 }))).toBe("Unavailable");
    expect(p.child.exitCode).toBeNull(); // still draining the Exec: a supervisor must see it running

    // The running Exec finishes; the process is alive until then and exits cleanly after.
    const rest = await exec;
    expect(rest.stdout).toBe("begin\nend\n");
    expect(rest.exited!.exitCode).toBe(0);
    expect(await p.exited, p.logs()).toBe(0);
    const log = p.logs();
    expect(log.indexOf("NOT_SERVING")).toBeGreaterThan(-1);
    expect(log.indexOf("NOT_SERVING")).toBeLessThan(log.indexOf("stopped accepting"));
    expect(log).not.toMatch(/MaxListenersExceeded/);

    // The sandbox survives: the next process adopts it.
    const second = await startProcess({ SANDBOXD_DRAIN_DELAY: "0s", SANDBOXD_SHUTDOWN_GRACE: "500ms" });
    expect((await second.client.getSandbox({ sandboxId: id })).sandbox!.id).toBe(id);
    const r = await collectExec(second.client.exec({ sandboxId: id, command: { case: "shell", value: "echo still here" } }));
    expect(r.stdout).toBe("still here\n");

    // Past the grace period the RPC is cancelled (UNAVAILABLE) and the process still exits cleanly.
    const long = collectExec(second.client.exec({ sandboxId: id, command: { case: "shell", value: "sleep 30" } }));
    await new Promise((res) => setTimeout(res, 300));
    second.child.kill("SIGTERM");
    expect(await codeOf(long)).toBe("Unavailable");
    expect(await second.exited, second.logs()).toBe(0);
  });
});
