/**
 * Issue 11, through a real server with API tokens: two tenants cannot see,
 * exec in, upload to, download from, renew, toggle or destroy each other's
 * sandboxes, over gRPC, gRPC-Web, Connect/HTTP2 and Connect/HTTP1.1 (another
 * tenant's sandbox answers exactly as an unknown id); an admin sees all; a
 * viewer only reads; no, wrong or revoked tokens are UNAUTHENTICATED (a line
 * removed from the token file stops working within seconds, no restart);
 * health stays open; every mutating call is in the audit log. On both
 * providers: the tenant is stored with the sandbox (a Proxmox container's
 * description), not only in this replica's memory.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { mintToken } from "../../server/auth/index.js";
import { collectExec, PROVIDERS, startE2E, type E2E, type LogLines, type SandboxClient } from "../e2e/harness.js";

const N = 16;
let e: E2E;
const logs: LogLines = [];
let dir: string;
let tokensFile: string;
const tokens: Record<string, { token: string; line: string }> = {
  a: mintToken("team-a", "user", "alice"),
  b: mintToken("team-b", "user", "bob"),
  viewer: mintToken("team-a", "viewer", "vera"),
  admin: mintToken("ops", "admin", "root-console"),
  revoked: mintToken("team-b", "user", "leaver"),
};

const bearer = (token: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

type Kind = "grpc" | "grpcWeb" | "connect2" | "connect1";
const KINDS: Kind[] = ["grpc", "grpcWeb", "connect2", "connect1"];

function transport(kind: Kind, token?: string): Transport {
  const baseUrl = e.baseUrl;
  const interceptors = token ? [bearer(token)] : [];
  switch (kind) {
    case "grpc": return createGrpcTransport({ baseUrl, interceptors });
    case "grpcWeb": return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors });
    case "connect2": return createConnectTransport({ baseUrl, httpVersion: "2", interceptors });
    case "connect1": return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors });
  }
}
const client = (kind: Kind, token?: string): SandboxClient => createClient(SandboxService, transport(kind, token));

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

async function* uploadOf(id: string): AsyncGenerator<{ part: { case: "header"; value: { sandboxId: string; path: string } } | { case: "data"; value: Uint8Array } }> {
  yield { part: { case: "header", value: { sandboxId: id, path: "/tmp/x" } } };
  yield { part: { case: "data", value: new TextEncoder().encode("intruder") } };
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) void _;
}

describe.each(PROVIDERS)("tenants with API tokens (%s)", (provider) => {
  beforeAll(async () => {
    logs.length = 0;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-tenants-"));
    tokensFile = path.join(dir, "tokens");
    fs.writeFileSync(tokensFile, Object.values(tokens).map((t) => t.line).join("\n") + "\n", { mode: 0o600 });
    e = await startE2E(N, { SANDBOXD_AUTH_TOKENS_FILE: tokensFile }, provider, logs);
  }, 60_000);
  afterAll(async () => {
    await e?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  let aId: string;
  let bId: string;

  it("each tenant creates its own sandbox, stamped with its tenant", async () => {
    const a = (await client("grpc", tokens.a!.token).createSandbox({ labels: { who: "a" } })).sandbox!;
    const b = (await client("connect1", tokens.b!.token).createSandbox({ labels: { who: "b" } })).sandbox!;
    expect(a.tenant).toBe("team-a");
    expect(b.tenant).toBe("team-b");
    [aId, bId] = [a.id, b.id];
  });

  it.each(KINDS)("over %s, B cannot see, use, renew, toggle or destroy A's sandbox: it is NOT_FOUND, as an unknown id", async (kind) => {
    const asB = client(kind, tokens.b!.token);
    const unknown = await failure(asB.getSandbox({ sandboxId: "sbx-doesnotexist" }));
    const calls: Array<[string, (id: string) => Promise<unknown>]> = [
      ["get", (id) => asB.getSandbox({ sandboxId: id })],
      ["keepAlive", (id) => asB.keepAlive({ sandboxId: id })],
      ["setInternet", (id) => asB.setInternetAccess({ sandboxId: id, enabled: true })],
      ["setEgress", (id) => asB.setEgressAllowlist({ sandboxId: id, entries: ["10.9.9.9"] })],
      ["exec", (id) => drain(asB.exec({ sandboxId: id, command: { case: "shell", value: "touch /tmp/pwned" } }))],
      ["download", (id) => drain(asB.download({ sandboxId: id, path: "/etc/hostname" }))],
    ];
    // Upload is client streaming: gRPC-Web and Connect over HTTP/1.1 cannot carry it.
    if (kind === "grpc" || kind === "connect2") calls.push(["upload", (id) => asB.upload(uploadOf(id))]);
    for (const [name, call] of calls) {
      const err = await failure(call(aId));
      expect(Code[err.code], name).toBe("NotFound");
      expect(err.rawMessage.replace(aId, "ID"), name).toBe(unknown.rawMessage.replace("sbx-doesnotexist", "ID"));
    }
    const listed = (await asB.listSandboxes({})).sandboxes.map((s) => s.id);
    expect(listed).toContain(bId);
    expect(listed).not.toContain(aId);
    // Destroy is idempotent (an unknown id is fine), and leaves A's sandbox alone.
    await asB.destroySandbox({ sandboxId: aId });
    const a = (await client(kind, tokens.a!.token).getSandbox({ sandboxId: aId })).sandbox!;
    expect(a.internetAccess).toBe(false);
    expect(a.egressAllowlist).toEqual([]);
    const probe = await collectExec(client("grpc", tokens.a!.token).exec({ sandboxId: aId, command: { case: "shell", value: "ls /tmp/pwned /tmp/x 2>&1; true" } }));
    expect(probe.stdout).toMatch(/No such file[\s\S]*No such file/);
  });

  it("an admin sees and manages every tenant's sandboxes; a viewer only reads its own", async () => {
    const admin = client("connect2", tokens.admin!.token);
    const all = (await admin.listSandboxes({})).sandboxes.map((s) => s.id);
    expect(all).toEqual(expect.arrayContaining([aId, bId]));
    await admin.keepAlive({ sandboxId: bId });
    const viewer = client("grpc", tokens.viewer!.token);
    expect((await viewer.getSandbox({ sandboxId: aId })).sandbox!.tenant).toBe("team-a");
    expect((await viewer.listSandboxes({})).sandboxes.map((s) => s.id)).toEqual([aId]);
    const denied = await failure(viewer.createSandbox({}));
    expect(Code[denied.code]).toBe("PermissionDenied");
    expect(Code[(await failure(drain(viewer.exec({ sandboxId: aId, command: { case: "shell", value: "true" } })))).code]).toBe("PermissionDenied");
    expect(Code[(await failure(viewer.getSandbox({ sandboxId: bId }))).code]).toBe("NotFound");
  });

  it.each(KINDS)("over %s, no token, a wrong token or a malformed header is UNAUTHENTICATED; health needs none", async (kind) => {
    for (const c of [client(kind), client(kind, "sbx_wrong"), client(kind, `${tokens.a!.token}x`)]) {
      const err = await failure(c.listSandboxes({}));
      expect(Code[err.code]).toBe("Unauthenticated");
      expect(err.rawMessage).not.toContain(tokens.a!.token);
    }
    const health = createClient(Health, transport(kind));
    expect((await health.check({ service: "sandbox.v1.SandboxService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("a token removed from the file stops working within seconds, without a restart", async () => {
    const leaver = client("grpc", tokens.revoked!.token);
    await leaver.listSandboxes({});
    fs.writeFileSync(tokensFile, Object.entries(tokens).filter(([k]) => k !== "revoked").map(([, t]) => t.line).join("\n") + "\n");
    const removed = Date.now();
    let code: string | undefined;
    while (Date.now() - removed < 10_000) {
      code = await leaver.listSandboxes({}).then(() => "OK", (err: unknown) => Code[ConnectError.from(err).code]);
      if (code !== "OK") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(code).toBe("Unauthenticated");
    console.log(`[tenants] revoked token refused ${Date.now() - removed} ms after the file changed`);
    await client("grpc", tokens.b!.token).listSandboxes({}); // the others still work
  });

  it("logs every mutating call with tenant, principal, method, sandbox id and outcome; never a token", async () => {
    const audit = logs.filter((l) => l.audit === true);
    expect(audit).toEqual(expect.arrayContaining([
      expect.objectContaining({ rpc: "CreateSandbox", tenant: "team-a", principal: "alice", sandboxId: aId, code: "ok" }),
      expect.objectContaining({ rpc: "Exec", tenant: "team-b", principal: "bob", sandboxId: aId, code: "NotFound" }),
      expect.objectContaining({ rpc: "CreateSandbox", tenant: "team-a", principal: "vera", code: "PermissionDenied" }),
    ]));
    expect(logs.some((l) => l.rpc === "GetSandbox" && l.audit === true)).toBe(false);
    const text = JSON.stringify(logs);
    for (const t of Object.values(tokens)) expect(text).not.toContain(t.token);
  });
});
