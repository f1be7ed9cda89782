import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createContextValues } from "@connectrpc/connect";
import { SandboxError } from "../errors.js";
import { silentLogger } from "../providers/local/options.js";
import { Authenticator, type PeerInfo } from "./authenticator.js";
import { IdentityMap } from "./identities.js";
import { ANONYMOUS, checkMethod, principalKey, type Principal } from "./principal.js";
import { mintToken, TokenFile } from "./token-file.js";

const RUNNER = "spiffe://cluster.local/ns/agents/sa/runner";
const XFCC = `By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=abc;URI=${RUNNER}`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-authn-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const alice = mintToken("agents", "user", "alice");
const viewer = mintToken("agents", "viewer", "vic");
function tokenFile(): TokenFile {
  const file = path.join(dir, "tokens");
  fs.writeFileSync(file, `${alice.line}\n${viewer.line}\n`);
  const tf = new TokenFile(file, silentLogger);
  tf.reload();
  return tf;
}

const certificates = IdentityMap.parse(`${RUNNER}=agents,CN=ops=ops:admin`);
const mesh = IdentityMap.parse("spiffe://cluster.local/ns/agents/*=agents,spiffe://cluster.local/ns/ro/*=ro:viewer");
const PUBLIC = ["grpc.health.v1.Health"];

const headers = (h: Record<string, string> = {}) => new Headers(h);
const peer = (p: Partial<PeerInfo> & { san?: string; cn?: string }): PeerInfo => ({
  presented: true, authorized: true, ...p,
  cert: { subjectaltname: p.san, subject: p.cn ? { CN: p.cn } : {} },
});

/** The unauthenticated error authenticate throws (its message), or fails. */
function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SandboxError);
    expect((e as SandboxError).kind).toBe("unauthenticated");
    return (e as SandboxError).message;
  }
  throw new Error("expected UNAUTHENTICATED, got a principal");
}

describe("Authenticator.authenticate", () => {
  const tokens = tokenFile();
  const all = new Authenticator({ tokens, certificates, mesh, publicServices: PUBLIC });

  it("without any method configured everyone is ANONYMOUS", () => {
    const none = new Authenticator({ publicServices: PUBLIC });
    expect(none.enabled).toBe(false);
    expect(none.authenticate(headers(), undefined)).toBe(ANONYMOUS);
    expect(none.authenticate(headers({ authorization: "Bearer nonsense" }), undefined)).toBe(ANONYMOUS);
  });

  it("a valid token gives its tenant, role and name", () => {
    expect(all.enabled).toBe(true);
    expect(all.authenticate(headers({ authorization: `Bearer ${alice.token}` }), undefined)).toEqual({ tenant: "agents", role: "user", name: "alice", via: "token" });
    // The scheme is case-insensitive; trailing blanks are tolerated.
    expect(all.authenticate(headers({ authorization: `bearer ${viewer.token}  ` }), undefined)).toMatchObject({ name: "vic", role: "viewer" });
  });

  it("an invalid token is refused, and the token decides even with a good certificate or mesh header", () => {
    expect(refusal(() => all.authenticate(headers({ authorization: "Bearer sbx_wrong" }), undefined))).toMatch(/API token is not valid/);
    const withCert = peer({ san: `URI:${RUNNER}` });
    expect(refusal(() => all.authenticate(headers({ authorization: "Bearer sbx_wrong", "x-forwarded-client-cert": XFCC }), withCert))).toMatch(/API token is not valid/);
  });

  it.each(["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Token abc", ""])("a malformed authorization header (%j) is refused", (value) => {
    expect(refusal(() => all.authenticate(headers({ authorization: value }), undefined))).toMatch(/must be 'Bearer <token>'/);
  });

  it("the secret never appears in a refusal", () => {
    const secret = "sbx_this-is-not-a-valid-token";
    expect(refusal(() => all.authenticate(headers({ authorization: `Bearer ${secret}` }), undefined))).not.toContain(secret);
  });

  it("a certificate presented, signed by the client CA and mapped gives its tenant", () => {
    expect(all.authenticate(headers(), peer({ san: `DNS:runner, URI:${RUNNER}` }))).toEqual({ tenant: "agents", role: "user", name: RUNNER, via: "mtls" });
    expect(all.authenticate(headers(), peer({ cn: "ops" }))).toEqual({ tenant: "ops", role: "admin", name: "CN=ops", via: "mtls" });
  });

  it("a certificate presented but not authorized is refused with the TLS layer's reason", () => {
    expect(refusal(() => all.authenticate(headers(), peer({ san: `URI:${RUNNER}`, authorized: false, error: "CERT_HAS_EXPIRED" }))))
      .toBe("the client certificate was refused: CERT_HAS_EXPIRED (it has expired)");
    expect(refusal(() => all.authenticate(headers(), peer({ san: `URI:${RUNNER}`, authorized: false, error: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" }))))
      .toBe("the client certificate was refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE (it is not signed by the client CA, SANDBOXD_AUTH_CLIENT_CA)");
    expect(refusal(() => all.authenticate(headers(), peer({ authorized: false, error: "SOME_NEW_CODE" })))).toBe("the client certificate was refused: SOME_NEW_CODE");
    expect(refusal(() => all.authenticate(headers(), peer({ san: `URI:${RUNNER}`, authorized: false })))).toMatch(/not signed by the client CA/);
  });

  it("a refused certificate is not rescued by a mesh header", () => {
    const expired = peer({ san: `URI:${RUNNER}`, authorized: false, error: "CERT_HAS_EXPIRED" });
    expect(refusal(() => all.authenticate(headers({ "x-forwarded-client-cert": XFCC }), expired))).toMatch(/CERT_HAS_EXPIRED/);
  });

  it("a valid certificate whose identity is not mapped is refused, naming the identity and the setting", () => {
    const m = refusal(() => all.authenticate(headers(), peer({ san: "URI:spiffe://cluster.local/ns/other/sa/x", cn: "stranger" })));
    expect(m).toMatch(/spiffe:\/\/cluster\.local\/ns\/other\/sa\/x, CN=stranger/);
    expect(m).toMatch(/SANDBOXD_AUTH_IDENTITIES/);
    expect(refusal(() => all.authenticate(headers(), peer({})))).toMatch(/identity \(none\) is not mapped/);
  });

  it("a mesh header gives the tenant of its last element's URI", () => {
    expect(all.authenticate(headers({ "x-forwarded-client-cert": XFCC }), undefined)).toEqual({ tenant: "agents", role: "user", name: RUNNER, via: "mesh" });
    expect(all.authenticate(headers({ "x-forwarded-client-cert": "URI=spiffe://cluster.local/ns/ro/sa/dash" }), undefined)).toMatchObject({ tenant: "ro", role: "viewer" });
    // Without certificates configured, a peer is irrelevant.
    const meshOnly = new Authenticator({ mesh, publicServices: PUBLIC });
    expect(meshOnly.authenticate(headers({ "x-forwarded-client-cert": XFCC }), peer({ cn: "ops" }))).toMatchObject({ via: "mesh", tenant: "agents" });
  });

  it("a mesh header with an unmapped or no identity is refused, saying which", () => {
    expect(refusal(() => all.authenticate(headers({ "x-forwarded-client-cert": "URI=spiffe://cluster.local/ns/other/sa/x" }), undefined)))
      .toMatch(/mesh identity \(spiffe:\/\/cluster\.local\/ns\/other\/sa\/x\) is not mapped .*SANDBOXD_AUTH_MESH_IDENTITIES/);
    expect(refusal(() => all.authenticate(headers({ "x-forwarded-client-cert": "By=spiffe://x/y;Hash=1;URI=" }), undefined)))
      .toMatch(/x-forwarded-client-cert header names no identity/);
  });

  it("a mesh header is ignored when mesh identities are not configured", () => {
    const certsOnly = new Authenticator({ certificates, publicServices: PUBLIC });
    expect(refusal(() => certsOnly.authenticate(headers({ "x-forwarded-client-cert": XFCC }), undefined))).toBe("credentials required: a client certificate");
  });

  it("no credentials: the message lists the ways configured", () => {
    expect(refusal(() => all.authenticate(headers(), undefined)))
      .toBe("credentials required: 'authorization: Bearer <token>' or a client certificate or a mesh identity");
    expect(refusal(() => all.authenticate(headers(), { presented: false, authorized: false }))).toMatch(/^credentials required/);
    expect(refusal(() => new Authenticator({ tokens, publicServices: PUBLIC }).authenticate(headers(), undefined)))
      .toBe("credentials required: 'authorization: Bearer <token>'");
  });
});

describe("Authenticator.contextValues", () => {
  const auth = new Authenticator({ certificates, publicServices: PUBLIC });
  // The peer's context key is private: what contextValues found shows in what the interceptor decides.
  const read = (a: Authenticator, socket: unknown) => a.contextValues({ socket });

  it("reads what the TLS socket says of the client certificate", () => {
    const socket = { getPeerCertificate: () => ({ subjectaltname: `URI:${RUNNER}`, subject: {} }), authorized: false, authorizationError: "CERT_HAS_EXPIRED" };
    const interceptor = auth.interceptor();
    const req = fakeRequest("sandbox.v1.SandboxService", "GetSandbox", headers(), read(auth, socket));
    return expect(interceptor(async () => "ok" as never)(req as never)).rejects.toMatchObject({ kind: "unauthenticated", message: /CERT_HAS_EXPIRED/ });
  });

  it("no certificate (an empty object) is not presented; a plaintext socket has none", async () => {
    const interceptor = auth.interceptor();
    for (const socket of [{ getPeerCertificate: () => ({}), authorized: false, authorizationError: "UNABLE_TO_GET_ISSUER_CERT" }, {}, undefined]) {
      const req = fakeRequest("sandbox.v1.SandboxService", "GetSandbox", headers(), read(auth, socket));
      await expect(interceptor(async () => "ok" as never)(req as never)).rejects.toMatchObject({ message: "credentials required: a client certificate" });
    }
  });

  it("an authorized, mapped certificate passes", async () => {
    const socket = { getPeerCertificate: () => ({ subjectaltname: `URI:${RUNNER}`, subject: {} }), authorized: true, authorizationError: null };
    const req = fakeRequest("sandbox.v1.SandboxService", "GetSandbox", headers(), read(auth, socket));
    await expect(auth.interceptor()(async () => "ok" as never)(req as never)).resolves.toBe("ok");
    expect(req.contextValues.get(principalKey)).toMatchObject({ tenant: "agents", via: "mtls" });
  });
});

function fakeRequest(service: string, method: string, header: Headers, contextValues = createContextValues()) {
  return { service: { typeName: service }, method: { name: method }, header, contextValues };
}

describe("Authenticator.interceptor", () => {
  const tokens = tokenFile();
  const auth = new Authenticator({ tokens, publicServices: PUBLIC });
  const call = (service: string, method: string, h: Record<string, string> = {}) => {
    const req = fakeRequest(service, method, headers(h));
    let reached = false;
    const run = auth.interceptor()(async () => {
      reached = true;
      return "ok" as never;
    })(req as never);
    return { req, run, reached: () => reached };
  };

  it("public services pass without credentials and carry no principal", async () => {
    const c = call("grpc.health.v1.Health", "Check");
    await expect(c.run).resolves.toBe("ok");
    expect(c.reached()).toBe(true);
    expect(c.req.contextValues.get(principalKey)).toBeUndefined();
    // A bad token on a public service is not even looked at.
    await expect(call("grpc.health.v1.Health", "Check", { authorization: "Bearer sbx_wrong" }).run).resolves.toBe("ok");
  });

  it("other services need credentials; the principal is set for the handlers", async () => {
    const refused = call("sandbox.v1.SandboxService", "ListSandboxes");
    await expect(refused.run).rejects.toMatchObject({ kind: "unauthenticated" });
    expect(refused.reached()).toBe(false);
    // Reflection is public only when configured so (here it is not).
    await expect(call("grpc.reflection.v1.ServerReflection", "ServerReflectionInfo").run).rejects.toMatchObject({ kind: "unauthenticated" });
    const ok = call("sandbox.v1.SandboxService", "CreateSandbox", { authorization: `Bearer ${alice.token}` });
    await expect(ok.run).resolves.toBe("ok");
    expect(ok.req.contextValues.get(principalKey)).toMatchObject({ tenant: "agents", name: "alice" });
  });

  it("a viewer reads (Get, List, Download) and is PERMISSION_DENIED on everything else", async () => {
    const auth = { authorization: `Bearer ${viewer.token}` };
    for (const m of ["GetSandbox", "ListSandboxes", "Download"]) await expect(call("sandbox.v1.SandboxService", m, auth).run).resolves.toBe("ok");
    for (const m of ["CreateSandbox", "DestroySandbox", "KeepAlive", "SetInternetAccess", "SetEgressAllowlist", "Exec", "Upload"]) {
      const c = call("sandbox.v1.SandboxService", m, auth);
      await expect(c.run).rejects.toMatchObject({ kind: "permission_denied", message: `vic (role viewer) may not call ${m}: it only reads` });
      expect(c.reached()).toBe(false);
    }
  });
});

describe("checkMethod", () => {
  const as = (role: Principal["role"]): Principal => ({ tenant: "t", role, name: "n", via: "token" });
  it("lets users and admins call anything, viewers only read", () => {
    for (const m of ["CreateSandbox", "Exec", "DestroySandbox"]) {
      expect(() => checkMethod(as("user"), m)).not.toThrow();
      expect(() => checkMethod(as("admin"), m)).not.toThrow();
      expect(() => checkMethod(as("viewer"), m)).toThrow(/role viewer/);
    }
    expect(() => checkMethod(as("viewer"), "GetSandbox")).not.toThrow();
  });
});
