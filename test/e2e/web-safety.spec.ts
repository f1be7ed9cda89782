/**
 * Issue 11's web safety and start-up rules, on a real listener (a provider
 * with no sandboxes): a request naming a foreign Host (a DNS-rebound name,
 * HTTP/1.1 Host or HTTP/2 :authority) or sent by a browser from a foreign
 * Origin is refused before any RPC; CORS is answered only for configured
 * origins; sandboxd refuses to listen beyond loopback without
 * authentication, and says why.
 */
import { spawnSync } from "node:child_process";
import http from "node:http";
import http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { createLogger } from "../../server/api/logger.js";
import { loadConfig } from "../../server/config/config.js";
import { startServer, type SandboxServer } from "../../server/server.js";
import { emptyProvider } from "../fixtures/empty-provider.js";
import { ROOT } from "../fixtures/sandboxd-process.js";

const APP = "https://app.example.com";
let server: SandboxServer;
let port: number;

beforeAll(async () => {
  server = await startServer(
    loadConfig({ SANDBOXD_LISTEN: "127.0.0.1:0", SANDBOXD_ADMIN_LISTEN: "127.0.0.1:0", SANDBOXD_DRAIN_DELAY: "0s", SANDBOXD_CORS_ORIGINS: APP }),
    createLogger("silent"),
    emptyProvider(Promise.resolve()),
  );
  port = Number(server.address.split(":").pop());
});
afterAll(async () => {
  await server?.shutdown();
});

/** A Connect unary call over HTTP/1.1 with the given extra headers; resolves status, headers and body. */
function connectCall(headers: Record<string, string>, method = "POST"): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: "/sandbox.v1.SandboxService/ListSandboxes", headers: { "content-type": "application/json", ...headers } }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(method === "POST" ? "{}" : undefined);
  });
}

describe("Host and Origin", () => {
  it("serves the listen address and localhost by name", async () => {
    expect((await connectCall({ host: `127.0.0.1:${port}` })).status).toBe(200);
    expect((await connectCall({ host: `localhost:${port}` })).status).toBe(200);
    const grpc = createClient(SandboxService, createGrpcTransport({ baseUrl: `http://localhost:${port}` }));
    expect((await grpc.listSandboxes({})).sandboxes).toEqual([]);
  });

  it("refuses a foreign Host (a rebound DNS name) over HTTP/1.1 and HTTP/2 before any RPC runs", async () => {
    const r = await connectCall({ host: `rebind.attacker.example:${port}` });
    expect(r.status).toBe(421);
    expect(r.body).toMatch(/SANDBOXD_ALLOWED_HOSTS/);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({
          ":method": "POST", ":path": "/sandbox.v1.SandboxService/ListSandboxes", ":authority": `rebind.attacker.example:${port}`,
          "content-type": "application/grpc", te: "trailers",
        });
        req.on("response", (h) => resolve(Number(h[":status"])));
        req.on("error", reject);
        req.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      expect(status).toBe(421);
    } finally {
      session.close();
    }
  });

  it("refuses a browser from a foreign origin; answers a configured one, with CORS", async () => {
    const foreign = await connectCall({ host: `127.0.0.1:${port}`, origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expect(foreign.headers["access-control-allow-origin"]).toBeUndefined();
    const preflight = await connectCall({ host: `127.0.0.1:${port}`, origin: APP, "access-control-request-method": "POST" }, "OPTIONS");
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe(APP);
    expect(String(preflight.headers["access-control-allow-headers"])).toMatch(/authorization/);
    const call = await connectCall({ host: `127.0.0.1:${port}`, origin: APP });
    expect(call.status).toBe(200);
    expect(call.headers["access-control-allow-origin"]).toBe(APP);
  });
});

describe("start-up", () => {
  it("refuses to listen beyond loopback without authentication, naming the settings that fix it", () => {
    expect(() => loadConfig({ SANDBOXD_LISTEN: "0.0.0.0:8080" })).toThrow(/refusing to listen on 0\.0\.0\.0 without authentication.*SANDBOXD_AUTH_TOKENS_FILE/);
    expect(loadConfig({ SANDBOXD_LISTEN: "0.0.0.0:8080", SANDBOXD_AUTH_INSECURE_NO_AUTH: "1" }).auth.insecureNoAuth).toBe(true);
    // The real process: exits at once, saying why, without listening.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SANDBOXD_")));
    const r = spawnSync("node", ["--import", "tsx", "server/main.ts"], { cwd: ROOT, env: { ...env, SANDBOXD_LISTEN: "0.0.0.0:0" }, timeout: 30_000, encoding: "utf8" });
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/refusing to listen on 0\.0\.0\.0 without authentication/);
  });
});
