/**
 * sandboxd behind real reverse proxies (nginx grpc_pass, haproxy mode http
 * with h2 both sides): a sandbox is created, runs a command whose stdout,
 * stderr and exit code come back streamed, and is destroyed, through a
 * connect-node gRPC client and through grpcurl (reflection through the proxy).
 * - TLS terminated at the proxy, h2c from the proxy to sandboxd;
 * - TLS end to end: the proxy re-encrypts to a sandboxd that serves TLS
 *   itself, and verifies its certificate.
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startE2E, type E2E } from "../e2e/harness.js";
import { PROXIES, grpcClient, grpcurl, makeCerts, run, startProxy, type Certs, type Proxy } from "../fixtures/proxies.js";

const PLAIN = 33;
const TLS = 34;

let certs: Certs;
let plain: E2E;
let tls: E2E;

beforeAll(async () => {
  certs = makeCerts();
  plain = await startE2E(PLAIN);
  tls = await startE2E(TLS, { SANDBOXD_TLS_CERT: certs.certFile, SANDBOXD_TLS_KEY: certs.keyFile });
});
afterAll(async () => {
  await Promise.allSettled([plain?.stop(), tls?.stop()]);
  if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
});

/** The ExecResponse events grpcurl printed (one JSON object each), stdout/stderr decoded. */
function execEvents(out: string) {
  const objects = out.split(/\n(?=\{)/).filter((s) => s.trim()).map((s) => JSON.parse(s) as Record<string, Record<string, unknown>>);
  const b64 = (v: unknown) => Buffer.from(String(v ?? ""), "base64").toString();
  return {
    stdout: objects.map((o) => b64(o.stdout)).join(""),
    stderr: objects.map((o) => b64(o.stderr)).join(""),
    exited: objects.find((o) => o.exited)?.exited,
  };
}

const SCRIPT = "echo out; echo err >&2; for i in 1 2 3; do echo $i; sleep 0.2; done; exit 7";

describe.each(PROXIES)("behind %s", (kind) => {
  const proxies: Proxy[] = [];
  const start = async (upstreamTls: boolean) => {
    // End to end, the proxy verifies sandboxd's certificate (same test CA).
    const p = await startProxy(kind, { upstreams: [(upstreamTls ? tls : plain).server.address], tls: certs, upstreamTls: upstreamTls ? certs : undefined });
    proxies.push(p);
    return p;
  };
  afterAll(async () => {
    await Promise.allSettled(proxies.map((p) => p.stop()));
  });

  for (const upstreamTls of [false, true]) {
    const how = upstreamTls ? "TLS end to end (the proxy re-encrypts)" : "TLS terminated at the proxy, h2c to sandboxd";
    it(`${how}: create, a streamed Exec, destroy, over connect-node and grpcurl`, async () => {
      const p = await start(upstreamTls);
      try {
        // connect-node, gRPC protocol, trusting only the test CA.
        const client = grpcClient(p.baseUrl, certs.ca);
        const id = (await client.createSandbox({ labels: { suite: "proxy" } })).sandbox!.id;
        const events: string[] = [];
        for await (const m of client.exec({ sandboxId: id, command: { case: "shell", value: "echo a; sleep 0.5; echo b" } })) {
          events.push(m.event.case === "stdout" ? `stdout:${Buffer.from(m.event.value).toString()}` : String(m.event.case));
        }
        // Output arrives as it is written, not all at the end: two separate stdout events.
        expect(events).toEqual(["started", "stdout:a\n", "stdout:b\n", "exited"]);
        expect(await run(client, id, SCRIPT)).toEqual({ stdout: "out\n1\n2\n3\n", stderr: "err\n", exitCode: 7 });
        await client.destroySandbox({ sandboxId: id });
        await expect(client.getSandbox({ sandboxId: id })).rejects.toThrow(/not.found/i);

        // grpcurl: no .proto files, reflection through the proxy.
        const g = (...args: string[]) => grpcurl(["-cacert", certs.caFile, ...args.slice(0, -1), p.address, args.at(-1)!]);
        expect((await g("list")).split("\n")).toContain("sandbox.v1.SandboxService");
        expect(await grpcurl(["-cacert", certs.caFile, p.address, "describe", "sandbox.v1.SandboxService.Exec"])).toMatch(/rpc Exec \( \.sandbox\.v1\.ExecRequest \) returns \( stream \.sandbox\.v1\.ExecResponse \)/);
        const created = JSON.parse(await g("-d", '{"labels":{"suite":"proxy-grpcurl"}}', "sandbox.v1.SandboxService/CreateSandbox")) as { sandbox: { id: string } };
        const sid = created.sandbox.id;
        const ex = execEvents(await g("-d", JSON.stringify({ sandboxId: sid, shell: "echo out; echo err >&2; exit 0" }), "sandbox.v1.SandboxService/Exec"));
        expect(ex).toMatchObject({ stdout: "out\n", stderr: "err\n" });
        expect(ex.exited).toMatchObject({ reason: "REASON_EXITED" });
        expect(ex.exited?.exitCode ?? 0).toBe(0);
        const failing = execEvents(await g("-d", JSON.stringify({ sandboxId: sid, shell: "exit 3" }), "sandbox.v1.SandboxService/Exec"));
        expect(failing.exited?.exitCode).toBe(3);
        await g("-d", JSON.stringify({ sandboxId: sid }), "sandbox.v1.SandboxService/DestroySandbox");
        expect((await client.listSandboxes({})).sandboxes.map((s) => s.id)).not.toContain(sid);
        // The request really went through the proxy (its log has the calls).
        expect(p.logs()).toMatch(/sandbox\.v1\.SandboxService\/Exec/);
      } catch (err) {
        console.error(`${kind} logs:\n${p.logs()}`);
        throw err;
      }
    });
  }
});
