/**
 * What a browser could make of sandboxd: a page on another site posting to
 * it (CSRF), or a DNS name rebound to 127.0.0.1 so the page's requests reach
 * a local sandboxd as same-origin. So, before any RPC:
 *   - the Host (HTTP/2 :authority) must be one of the allowed host names
 *     (default: the listen address, localhost, 127.0.0.1, ::1; for a wildcard
 *     listen address also the machine's own addresses and host name); a
 *     rebound name is not among them: 421 Misdirected Request;
 *   - a request with an Origin header (browsers send one) must come from a
 *     configured origin (SANDBOXD_CORS_ORIGINS, none by default): 403.
 * With origins configured, CORS preflights are answered for them (the
 * headers gRPC-Web and Connect need, from connect's `cors` constants).
 */
import { cors } from "@connectrpc/connect";
import os from "node:os";
import type { Handler } from "../api/transport.js";

export interface WebSafety {
  /** Host names (no port) requests may name; "*" allows any. */
  allowedHosts: readonly string[];
  /** Origins ("https://app.example.com") browsers may call from. */
  corsOrigins: readonly string[];
}

/** The default host names for a listen address. */
export function defaultAllowedHosts(listenHost: string): string[] {
  const names = new Set(["localhost", "127.0.0.1", "::1", listenHost.toLowerCase()]);
  if (listenHost === "0.0.0.0" || listenHost === "::") {
    names.add(os.hostname().toLowerCase());
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) names.add(a.address.toLowerCase());
  }
  return [...names];
}

/** "host:port", "[v6]:port", "host" → the host, lower-case, without brackets. */
export function hostOf(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith("[")) return a.slice(1, a.indexOf("]") > 0 ? a.indexOf("]") : undefined);
  const colons = a.split(":").length - 1;
  return colons === 1 ? a.slice(0, a.indexOf(":")) : a;
}

export function webSafetyHandler(handler: Handler, settings: WebSafety): Handler {
  const anyHost = settings.allowedHosts.includes("*");
  const hosts = new Set(settings.allowedHosts.map((h) => h.toLowerCase()));
  const origins = new Set(settings.corsOrigins);
  return (req, res) => {
    const h = req.headers;
    const authority = String(h[":authority"] ?? h.host ?? "");
    if (!anyHost && !hosts.has(hostOf(authority))) {
      res.writeHead(421, { "content-type": "text/plain" });
      res.end(`sandboxd does not serve the host '${authority.slice(0, 200)}' (SANDBOXD_ALLOWED_HOSTS)\n`);
      return;
    }
    const origin = typeof h.origin === "string" ? h.origin : undefined;
    if (origin !== undefined) {
      if (!origins.has(origin)) {
        res.writeHead(403, { "content-type": "text/plain" });
        res.end(`sandboxd does not serve browsers from '${origin.slice(0, 200)}' (SANDBOXD_CORS_ORIGINS)\n`);
        return;
      }
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("vary", "Origin");
      res.setHeader("access-control-expose-headers", [...cors.exposedHeaders, "x-request-id"].join(", "));
      if (req.method === "OPTIONS") {
        res.writeHead(204, {
          "access-control-allow-methods": cors.allowedMethods.join(", "),
          "access-control-allow-headers": [...cors.allowedHeaders, "authorization", "x-request-id"].join(", "),
          "access-control-max-age": "7200",
        });
        res.end();
        return;
      }
    }
    handler(req, res);
  };
}
