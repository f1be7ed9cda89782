/**
 * Issue 11's mTLS, through a real server with TLS and a client CA
 * (SANDBOXD_AUTH_CLIENT_CA, SANDBOXD_AUTH_IDENTITIES), certificates made here
 * with the openssl CLI: the tenant comes from the client certificate's SPIFFE
 * URI SAN (or CN); another tenant's sandbox is NOT_FOUND and lists show one's
 * own; an expired certificate, one from a foreign CA, an unmapped one and none
 * at all are each UNAUTHENTICATED, saying why (the TLS handshake itself
 * succeeds: the RPC is refused); health needs no certificate. Over gRPC
 * (HTTP/2) and Connect over HTTP/1.1.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { collectExec, startE2E, type E2E, type SandboxClient } from "../e2e/harness.js";

const N = 17;
const RUNNER = "spiffe://cluster.local/ns/agents/sa/runner";
const WORKER = "spiffe://cluster.local/ns/batch/sa/worker";
const IDENTITIES = `${RUNNER}=agents,spiffe://cluster.local/ns/batch/*=batch,CN=ops=ops:admin`;

let e: E2E;
let dir: string;
let baseUrl: string;
let serverCa: Buffer;

/** A client's key pair, or none. */
interface Credentials {
  cert: Buffer;
  key: Buffer;
}
const creds: Record<"a" | "b" | "ops" | "expired" | "foreign" | "unmapped", Credentials> = {} as never;

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });

/** A self-signed CA `name`.pem/.key. */
function makeCa(name: string, subject: string): void {
  fs.writeFileSync(path.join(dir, `${name}.ext`), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n");
  openssl("req", "-new", ...EC, "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.csr`);
  openssl("x509", "-req", "-in", `${name}.csr`, "-signkey", `${name}.key`, "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
}

let serial = 100;
/** A key and CSR for `name`, and the extensions file of a client certificate with these SANs. */
function clientRequest(name: string, subject: string, san?: string): void {
  const ext = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth", ...(san ? [`subjectAltName=${san}`] : [])];
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext.join("\n") + "\n");
  openssl("req", "-new", ...EC, "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.csr`);
}

/** A client certificate signed by `ca`, valid from now for a day. */
function clientCert(name: string, ca: string, subject: string, san?: string): Credentials {
  clientRequest(name, subject, san);
  openssl("x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-set_serial", String(serial++), "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
  return read(name);
}

/**
 * A client certificate signed by `ca` that expired in 2020. OpenSSL 3.0's
 * `x509 -req` has no -not_before/-not_after (3.4+), so `openssl ca` with
 * -startdate/-enddate and a minimal CA configuration signs it.
 */
function expiredCert(name: string, ca: string, subject: string, san: string): Credentials {
  clientRequest(name, subject, san);
  fs.mkdirSync(path.join(dir, "newcerts"));
  fs.writeFileSync(path.join(dir, "index.txt"), "");
  fs.writeFileSync(path.join(dir, "serial"), "1000\n");
  fs.writeFileSync(path.join(dir, "ca.cnf"), [
    "[ca]", "default_ca = d",
    "[d]", `database = ${dir}/index.txt`, `new_certs_dir = ${dir}/newcerts`, `serial = ${dir}/serial`,
    "default_md = sha256", "policy = p", "unique_subject = no",
    "[p]", "commonName = supplied",
  ].join("\n") + "\n");
  openssl("ca", "-batch", "-config", "ca.cnf", "-cert", `${ca}.pem`, "-keyfile", `${ca}.key`, "-in", `${name}.csr`, "-out", `${name}.pem`,
    "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile", `${name}.ext`, "-notext");
  return read(name);
}

const read = (name: string): Credentials => ({ cert: fs.readFileSync(path.join(dir, `${name}.pem`)), key: fs.readFileSync(path.join(dir, `${name}.key`)) });

type Kind = "grpc" | "connect1";
const KINDS: Kind[] = ["grpc", "connect1"];

function transport(kind: Kind, who?: Credentials): Transport {
  const tls = { ca: serverCa, ...(who ?? {}) };
  return kind === "grpc"
    ? createGrpcTransport({ baseUrl, nodeOptions: tls })
    : createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: tls });
}
const client = (kind: Kind, who?: Credentials): SandboxClient => createClient(SandboxService, transport(kind, who));

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) void _;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-mtls-"));
  // The server's own certificate (self-signed, for 127.0.0.1 and localhost): clients trust it directly.
  openssl("req", "-x509", ...EC, "-days", "2", "-subj", "/CN=sandboxd test server",
    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", "server.key", "-out", "server.pem");
  serverCa = fs.readFileSync(path.join(dir, "server.pem"));
  makeCa("client-ca", "/CN=sandboxd test client CA");
  makeCa("foreign-ca", "/CN=someone else's CA");
  creds.a = clientCert("a", "client-ca", "/CN=runner", `URI:${RUNNER}`);
  creds.b = clientCert("b", "client-ca", "/CN=worker", `URI:${WORKER}`);
  creds.ops = clientCert("ops", "client-ca", "/O=Example/CN=ops");
  creds.unmapped = clientCert("unmapped", "client-ca", "/CN=stranger", "URI:spiffe://cluster.local/ns/other/sa/stranger");
  creds.foreign = clientCert("foreign", "foreign-ca", "/CN=runner", `URI:${RUNNER}`);
  creds.expired = expiredCert("expired", "client-ca", "/CN=runner", `URI:${RUNNER}`);
  e = await startE2E(N, {
    SANDBOXD_TLS_CERT: path.join(dir, "server.pem"),
    SANDBOXD_TLS_KEY: path.join(dir, "server.key"),
    SANDBOXD_AUTH_CLIENT_CA: path.join(dir, "client-ca.pem"),
    SANDBOXD_AUTH_IDENTITIES: IDENTITIES,
  });
  baseUrl = `https://${e.server.address}`;
}, 60_000);
afterAll(async () => {
  try {
    await e?.stop();
  } finally {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe("mTLS client certificates", () => {
  let aId: string;
  let bId: string;

  it("the harness's plaintext clients get nowhere: the port speaks TLS only", async () => {
    expect(e.baseUrl.startsWith("http://")).toBe(true);
    const err = await failure(e.grpc.listSandboxes({}));
    // h2c against a TLS port: the connection is dropped (node: CANCEL), no RPC runs.
    expect([Code.Canceled, Code.Unavailable, Code.Internal, Code.Unknown]).toContain(err.code);
  });

  it("tenant A's certificate (SPIFFE URI SAN) creates and execs, over gRPC and Connect/HTTP1.1", async () => {
    const a = (await client("grpc", creds.a).createSandbox({ labels: { who: "a" } })).sandbox!;
    expect(a.tenant).toBe("agents");
    aId = a.id;
    for (const kind of KINDS) {
      const r = await collectExec(client(kind, creds.a).exec({ sandboxId: aId, command: { case: "shell", value: `echo hello-${kind}` } }));
      expect(r.stdout).toBe(`hello-${kind}\n`);
      expect(r.exited?.exitCode).toBe(0);
    }
    const b = (await client("connect1", creds.b).createSandbox({ labels: { who: "b" } })).sandbox!;
    expect(b.tenant).toBe("batch");
    bId = b.id;
  });

  it.each(KINDS)("over %s, tenant B cannot get, exec in, renew or destroy A's sandbox (NOT_FOUND, as an unknown id) and lists only its own", async (kind) => {
    const asB = client(kind, creds.b);
    const unknown = await failure(asB.getSandbox({ sandboxId: "sbx-doesnotexist" }));
    expect(Code[unknown.code]).toBe("NotFound");
    const calls: Array<[string, (id: string) => Promise<unknown>]> = [
      ["get", (id) => asB.getSandbox({ sandboxId: id })],
      ["keepAlive", (id) => asB.keepAlive({ sandboxId: id })],
      ["exec", (id) => drain(asB.exec({ sandboxId: id, command: { case: "shell", value: "touch /tmp/pwned" } }))],
    ];
    for (const [name, call] of calls) {
      const err = await failure(call(aId));
      expect(Code[err.code], name).toBe("NotFound");
      expect(err.rawMessage.replace(aId, "ID"), name).toBe(unknown.rawMessage.replace("sbx-doesnotexist", "ID"));
    }
    // Destroy is idempotent: another tenant's sandbox answers as an unknown id does (OK), and stays.
    await asB.destroySandbox({ sandboxId: aId });
    const listed = (await asB.listSandboxes({})).sandboxes.map((s) => s.id);
    expect(listed).toEqual([bId]);
    expect((await client(kind, creds.a).listSandboxes({})).sandboxes.map((s) => s.id)).toEqual([aId]);
    const probe = await collectExec(client("grpc", creds.a).exec({ sandboxId: aId, command: { case: "shell", value: "ls /tmp/pwned 2>&1; true" } }));
    expect(probe.stdout).toMatch(/No such file/);
  });

  it("a certificate mapped by CN (an admin) sees every tenant's sandboxes", async () => {
    const ops = client("grpc", creds.ops);
    expect((await ops.listSandboxes({})).sandboxes.map((s) => s.id).sort()).toEqual([aId, bId].sort());
    expect((await ops.getSandbox({ sandboxId: aId })).sandbox!.tenant).toBe("agents");
  });

  it.each(KINDS)("over %s, an expired certificate from the client CA is UNAUTHENTICATED, saying it expired", async (kind) => {
    const err = await failure(client(kind, creds.expired).listSandboxes({}));
    expect(Code[err.code]).toBe("Unauthenticated");
    expect(err.rawMessage).toBe("the client certificate was refused: CERT_HAS_EXPIRED (it has expired)");
    // It is the same identity as A's good certificate: A's sandbox stays out of reach.
    expect(Code[(await failure(drain(client(kind, creds.expired).exec({ sandboxId: aId, command: { case: "shell", value: "true" } })))).code]).toBe("Unauthenticated");
  });

  it.each(KINDS)("over %s, a certificate from a foreign CA (with A's SPIFFE id) is UNAUTHENTICATED", async (kind) => {
    const err = await failure(client(kind, creds.foreign).getSandbox({ sandboxId: aId }));
    expect(Code[err.code]).toBe("Unauthenticated");
    expect(err.rawMessage).toBe("the client certificate was refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE (it is not signed by the client CA, SANDBOXD_AUTH_CLIENT_CA)");
  });

  it.each(KINDS)("over %s, a good certificate whose identity is not mapped is UNAUTHENTICATED, naming the identity", async (kind) => {
    const err = await failure(client(kind, creds.unmapped).listSandboxes({}));
    expect(Code[err.code]).toBe("Unauthenticated");
    expect(err.rawMessage).toMatch(/spiffe:\/\/cluster\.local\/ns\/other\/sa\/stranger, CN=stranger\) is not mapped .*SANDBOXD_AUTH_IDENTITIES/);
  });

  it.each(KINDS)("over %s, no certificate is UNAUTHENTICATED, yet health answers without one", async (kind) => {
    const err = await failure(client(kind).listSandboxes({}));
    expect(Code[err.code]).toBe("Unauthenticated");
    expect(err.rawMessage).toBe("credentials required: a client certificate");
    const health = createClient(Health, transport(kind));
    expect((await health.check({ service: "sandbox.v1.SandboxService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("the owners destroy their sandboxes", async () => {
    await client("grpc", creds.a).destroySandbox({ sandboxId: aId });
    await client("connect1", creds.b).destroySandbox({ sandboxId: bId });
    expect((await client("grpc", creds.ops).listSandboxes({})).sandboxes).toEqual([]);
  });
});
