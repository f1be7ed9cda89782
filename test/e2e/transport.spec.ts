/**
 * The listener without real sandboxes (a provider with none): TLS with
 * HTTP/2 and HTTP/1.1 on one port, and health NOT_SERVING until the provider
 * is ready.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { createLogger } from "../../server/api/logger.js";
import { loadConfig } from "../../server/config/config.js";
import { startServer, type SandboxServer } from "../../server/server.js";
import { emptyProvider } from "../fixtures/empty-provider.js";
import { freePort } from "../fixtures/ports.js";

const servers: SandboxServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.shutdown()));
});

describe("transport", () => {
  it("serves gRPC over HTTP/2 and Connect over HTTP/1.1 on one TLS port", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-tls-"));
    const cert = path.join(dir, "cert.pem");
    const key = path.join(dir, "key.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
    const config = loadConfig({ SANDBOXD_LISTEN: "127.0.0.1:0", SANDBOXD_ADMIN_LISTEN: "127.0.0.1:0", SANDBOXD_DRAIN_DELAY: "0s", SANDBOXD_TLS_CERT: cert, SANDBOXD_TLS_KEY: key });
    const server = await startServer(config, createLogger("silent"), emptyProvider(Promise.resolve()));
    servers.push(server);
    const ca = fs.readFileSync(cert);
    const baseUrl = `https://${server.address}`;
    for (const transport of [
      createGrpcTransport({ baseUrl, nodeOptions: { ca } }),
      createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }),
      createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions: { ca } }),
    ]) {
      const err = await createClient(SandboxService, transport).getSandbox({ sandboxId: "sbx-x" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.NotFound);
      expect((await createClient(SandboxService, transport).listSandboxes({})).sandboxes).toEqual([]);
    }
    // A plain HTTPS/1.1 POST as curl sends it.
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(`${baseUrl}/sandbox.v1.SandboxService/ListSandboxes`, { method: "POST", ca, headers: { "content-type": "application/json" } }, (res) => {
        let s = "";
        res.on("data", (d) => (s += d));
        res.on("end", () => resolve(s));
      });
      req.on("error", reject);
      req.end("{}");
    });
    expect(JSON.parse(body)).toEqual({});
  });

  it("health is NOT_SERVING and the SandboxService UNAVAILABLE until the provider is ready", async () => {
    let open!: () => void;
    const ready = new Promise<void>((r) => (open = r));
    const port = await freePort();
    const starting = startServer(loadConfig({ SANDBOXD_LISTEN: `127.0.0.1:${port}`, SANDBOXD_ADMIN_LISTEN: "127.0.0.1:0", SANDBOXD_DRAIN_DELAY: "0s" }), createLogger("silent"), emptyProvider(ready));
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    let status: HealthCheckResponse_ServingStatus | undefined;
    for (let i = 0; i < 100 && status === undefined; i++) {
      status = await health.check({}).then((r) => r.status, () => undefined);
      if (status === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    // Not NOT_FOUND for sandboxes it has not loaded yet: UNAVAILABLE, which clients retry.
    const api = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    const early = await api.getSandbox({ sandboxId: "sbx-abc" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(early?.code).toBe(Code.Unavailable);
    open();
    const server = await starting;
    servers.push(server);
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const late = await api.getSandbox({ sandboxId: "sbx-abc" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(late?.code).toBe(Code.NotFound);
    const shutdown = server.shutdown();
    expect(server.health.get("")).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    await shutdown;
  });
});
