/**
 * Issue 11 behind a service mesh: a sidecar terminates mTLS and forwards the
 * client's identity in `x-forwarded-client-cert`; sandboxd, listening on
 * loopback (where only the sidecar reaches it), maps the URI of the header's
 * last element to a tenant (SANDBOXD_AUTH_MESH_IDENTITIES). Without the header,
 * or with an identity nobody mapped, RPCs are UNAUTHENTICATED; health stays
 * open. Trusting the header on a port others reach would let anyone forge it,
 * so sandboxd refuses mesh identities unless it listens on loopback.
 */
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { ConfigError, loadConfig } from "../../server/config/config.js";
import { collectExec, startE2E, type E2E, type SandboxClient } from "../e2e/harness.js";

const N = 21;
const MESH = "spiffe://cluster.local/ns/agents/sa/runner=agents,spiffe://cluster.local/ns/batch/*=batch";
/** What an Istio/Envoy sidecar with SANITIZE_SET sends for a client whose certificate is the runner's. */
const RUNNER_XFCC = "By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=abc;URI=spiffe://cluster.local/ns/agents/sa/runner";
const WORKER_XFCC = 'By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=def;Subject="";URI=spiffe://cluster.local/ns/batch/sa/worker';

let e: E2E;

const xfcc = (value: string): Interceptor => (next) => (req) => {
  req.header.set("x-forwarded-client-cert", value);
  return next(req);
};

type Kind = "grpc" | "connect1";
const KINDS: Kind[] = ["grpc", "connect1"];
function transport(kind: Kind, header?: string): Transport {
  const interceptors = header === undefined ? [] : [xfcc(header)];
  return kind === "grpc"
    ? createGrpcTransport({ baseUrl: e.baseUrl, interceptors })
    : createConnectTransport({ baseUrl: e.baseUrl, httpVersion: "1.1", interceptors });
}
const client = (kind: Kind, header?: string): SandboxClient => createClient(SandboxService, transport(kind, header));

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

beforeAll(async () => {
  e = await startE2E(N, { SANDBOXD_AUTH_MESH_IDENTITIES: MESH });
}, 60_000);
afterAll(async () => {
  await e?.stop();
});

describe("mesh identities (x-forwarded-client-cert)", () => {
  let aId: string;

  it.each(KINDS)("over %s, the sidecar's header makes the caller tenant agents", async (kind) => {
    const c = client(kind, RUNNER_XFCC);
    const s = (await c.createSandbox({ labels: { via: kind } })).sandbox!;
    expect(s.tenant).toBe("agents");
    const r = await collectExec(c.exec({ sandboxId: s.id, command: { case: "shell", value: "echo mesh" } }));
    expect(r.stdout).toBe("mesh\n");
    if (kind === "grpc") aId = s.id;
    else await c.destroySandbox({ sandboxId: s.id });
  });

  it("another mesh identity is another tenant: A's sandbox is NOT_FOUND to it", async () => {
    const b = client("grpc", WORKER_XFCC);
    expect(Code[(await failure(b.getSandbox({ sandboxId: aId }))).code]).toBe("NotFound");
    expect((await b.listSandboxes({})).sandboxes).toEqual([]);
    expect((await client("connect1", RUNNER_XFCC).listSandboxes({})).sandboxes.map((s) => s.id)).toEqual([aId]);
  });

  it.each(KINDS)("over %s, without the header (or with a forged or unmapped one) RPCs are UNAUTHENTICATED; health is open", async (kind) => {
    const none = await failure(client(kind).listSandboxes({}));
    expect(Code[none.code]).toBe("Unauthenticated");
    expect(none.rawMessage).toBe("credentials required: a mesh identity");
    const unmapped = await failure(client(kind, "By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=1;URI=spiffe://cluster.local/ns/other/sa/x").getSandbox({ sandboxId: aId }));
    expect(Code[unmapped.code]).toBe("Unauthenticated");
    expect(unmapped.rawMessage).toMatch(/spiffe:\/\/cluster\.local\/ns\/other\/sa\/x\) is not mapped/);
    // An unterminated quote that would swallow the element a proxy appends (APPEND_FORWARD) is not trusted.
    const forged = await failure(client(kind, `URI=spiffe://cluster.local/ns/agents/sa/runner;Subject=",${WORKER_XFCC}`).getSandbox({ sandboxId: aId }));
    expect(Code[forged.code]).toBe("Unauthenticated");
    const health = createClient(Health, transport(kind));
    expect((await health.check({ service: "sandbox.v1.SandboxService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("the owner destroys its sandbox", async () => {
    await client("grpc", RUNNER_XFCC).destroySandbox({ sandboxId: aId });
    expect((await client("grpc", RUNNER_XFCC).listSandboxes({})).sandboxes).toEqual([]);
  });
});

describe("mesh identities need a loopback listener", () => {
  it.each(["0.0.0.0:0", "192.0.2.10:8080", "[::]:8080"])("refuses to start on %s, saying why", (listen) => {
    const load = () => loadConfig({ SANDBOXD_LISTEN: listen, SANDBOXD_AUTH_MESH_IDENTITIES: MESH });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/SANDBOXD_AUTH_MESH_IDENTITIES: .*must listen on loopback .*anyone else reaching the port could send the header/);
  });

  it("even beside another method (API tokens), which would be enough to listen beyond loopback on its own", () => {
    const load = () => loadConfig({ SANDBOXD_LISTEN: "0.0.0.0:0", SANDBOXD_AUTH_MESH_IDENTITIES: MESH, SANDBOXD_AUTH_TOKENS_FILE: "/dev/null" });
    expect(load).toThrow(/SANDBOXD_AUTH_MESH_IDENTITIES: .*loopback \(got 0\.0\.0\.0\)/);
  });

  it.each(["127.0.0.1:0", "[::1]:0", "localhost:0"])("accepts %s", (listen) => {
    expect(loadConfig({ SANDBOXD_LISTEN: listen, SANDBOXD_AUTH_MESH_IDENTITIES: MESH }).auth.meshIdentities?.size).toBe(2);
  });
});
