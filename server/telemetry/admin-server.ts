/**
 * The admin listener (SANDBOXD_ADMIN_LISTEN, plain HTTP, keep it off the
 * public network): Prometheus metrics, and HTTP probes for whatever cannot
 * speak grpc.health.v1.
 *   GET /metrics  Prometheus text format
 *   GET /healthz  200 while the process serves at all (liveness)
 *   GET /readyz   200 while health says SERVING, else 503 (readiness: drains, provider down)
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { registry } from "./metrics.js";

export interface AdminServer {
  address: string;
  close(): Promise<void>;
}

export async function startAdminServer(host: string, port: number, ready: () => boolean): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const text = (status: number, body: string) => res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(req.method === "HEAD" ? undefined : body);
    if (path === "/healthz") return void text(200, "ok\n");
    if (path === "/readyz") return void (ready() ? text(200, "ready\n") : text(503, "not ready\n"));
    if (path !== "/metrics") return void text(404, "not found: try /metrics, /healthz or /readyz\n");
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(req.method === "HEAD" ? undefined : body),
      (err: unknown) => text(500, `collecting metrics failed: ${String(err)}\n`),
    );
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval: one connection per scraper
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.address.includes(":") ? `[${a.address}]` : a.address}:${a.port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
