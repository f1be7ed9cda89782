/**
 * An Exec that prints nothing for 2 minutes (`sleep 120; echo done`) through
 * nginx and haproxy, whose idle timeouts are 60 s, still delivers `done` and
 * exit 0. All run at once, so the 2 minutes are spent once:
 * - nginx: sandboxd's HTTP/2 PINGs (SANDBOXD_KEEPALIVE_INTERVAL, default 30 s)
 *   reset grpc_read_timeout; without them (interval 0) nginx cuts the stream at 60 s;
 * - haproxy: PINGs do not count (its server timeout is per stream), so the
 *   fixture gives streaming RPCs `http-request set-timeout server 1h`; with
 *   the plain 60 s the stream is cut at 60 s.
 * The clients send no PINGs of their own: neither proxy needs them.
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { e2eInstance, purge } from "../e2e/harness.js";
import { startSandboxd, type SandboxdProcess } from "../fixtures/sandboxd-process.js";
import { grpcClient, makeCerts, run, startProxy, type Certs, type Proxy, type ProxyKind, type ProxyOptions } from "../fixtures/proxies.js";

const PINGING = 35;
const SILENT = 45;
const SCRIPT = "sleep 120; echo done";

let certs: Certs;
const servers: Record<string, SandboxdProcess> = {};
const sandboxes: Record<string, string> = {};
const proxies: Proxy[] = [];

async function server(n: number, env: Record<string, string>) {
  await purge(n);
  const { instance, subnet } = e2eInstance(n);
  const s = await startSandboxd({ SANDBOXD_LOCAL_INSTANCE: instance, SANDBOXD_LOCAL_SUBNET: subnet, SANDBOXD_DEFAULT_MEMORY_MIB: "256", SANDBOXD_DEFAULT_DISK_GIB: "1", ...env });
  const id = (await grpcClient(`http://${s.address}`).createSandbox({ labels: { suite: "proxy-silent" } })).sandbox!.id;
  return { s, id };
}

beforeAll(async () => {
  certs = makeCerts();
  // Default keepalive (a PING every 30 s), and none at all.
  const [a, b] = await Promise.all([server(PINGING, {}), server(SILENT, { SANDBOXD_KEEPALIVE_INTERVAL: "0s" })]);
  servers.pinging = a.s;
  sandboxes.pinging = a.id;
  servers.silent = b.s;
  sandboxes.silent = b.id;
});
afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.stop()));
  await Promise.allSettled(Object.values(servers).map((s) => s.stop()));
  await Promise.allSettled([purge(PINGING), purge(SILENT)]);
  if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
});

interface Case {
  kind: ProxyKind;
  server: "pinging" | "silent";
  opts?: Partial<ProxyOptions>;
  survives: boolean;
}

const CASES: Case[] = [
  { kind: "nginx", server: "pinging", survives: true },
  { kind: "haproxy", server: "pinging", survives: true },
  // Controls: what each of the two settings is for.
  { kind: "nginx", server: "silent", survives: false },
  { kind: "haproxy", server: "pinging", opts: { streamServerTimeout: "60s" }, survives: false },
];

async function attempt(c: Case) {
  const p = await startProxy(c.kind, { upstreams: [servers[c.server]!.address], tls: certs, ...c.opts });
  proxies.push(p);
  const t0 = Date.now();
  const result = await run(grpcClient(p.baseUrl, certs.ca), sandboxes[c.server]!, SCRIPT).then((r) => r, (err: unknown) => err as Error);
  return { c, p, result, seconds: (Date.now() - t0) / 1000 };
}

describe("a streaming Exec silent for 2 minutes behind proxies with 60 s timeouts", () => {
  it("nginx and haproxy deliver its output and exit code (and cut it at 60 s without the settings)", { timeout: 240_000 }, async () => {
    const outcomes = await Promise.all(CASES.map(attempt));
    for (const { c, p, result, seconds } of outcomes) {
      const what = `${c.kind} with ${c.server} sandboxd ${JSON.stringify(c.opts ?? {})}: ${result instanceof Error ? result.message : JSON.stringify(result)} after ${seconds} s`;
      console.log(what);
      if (c.survives) {
        expect(result, `${what}\n${p.logs().slice(-3000)}`).toEqual({ stdout: "done\n", stderr: "", exitCode: 0 });
        expect(seconds).toBeGreaterThanOrEqual(120);
      } else {
        expect(result, what).toBeInstanceOf(Error);
        // Cut at the proxy's 60 s, not by anything else.
        expect(seconds, what).toBeGreaterThanOrEqual(59);
        expect(seconds, what).toBeLessThan(90);
      }
    }
  });
});
