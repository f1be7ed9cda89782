/** The HTTPS server: faults → authentication → route → permissions → PVE's schema → handler. */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { authenticate, type Token } from "./auth.js";
import { WithExtra, type Emu, type Route } from "./context.js";
import { ApiError, parseParams, sendData, sendError } from "./http.js";
import type { RequestCounter } from "./request-counter.js";
import { checkParams, requireSchema } from "./schema.js";
import { sleep } from "./tasks.js";
import { clusterRoutes } from "./routes/cluster.js";
import { firewallRoutes } from "./routes/firewall.js";
import { lxcRoutes } from "./routes/lxc.js";
import { powerRoutes } from "./routes/power.js";
import { taskRoutes } from "./routes/tasks.js";

const PREFIX = "/api2/json";

interface Compiled {
  route: Route;
  re: RegExp;
  names: string[];
}

const compile = (route: Route): Compiled => {
  requireSchema(routeKey(route));
  const names: string[] = [];
  const re = new RegExp(`^${route.path.replace(/\{(\w+)\}/g, (_, n: string) => (names.push(n), "([^/]+)"))}/?$`);
  return { route, re, names };
};

export const routeKey = (route: Route) => `${route.method} ${route.path}`;

export const ROUTES = [...clusterRoutes, ...lxcRoutes, ...powerRoutes, ...firewallRoutes, ...taskRoutes].map(compile);

function match(method: string, path: string): { route: Route; captures: Record<string, string> } | undefined {
  for (const c of ROUTES) {
    if (c.route.method !== method) continue;
    const m = c.re.exec(path);
    if (!m) continue;
    const captures: Record<string, string> = {};
    c.names.forEach((n, i) => (captures[n] = decodeURIComponent(m[i + 1]!)));
    return { route: c.route, captures };
  }
  return undefined;
}

export interface ServerDeps {
  emu: Emu;
  token: Token;
  authFailDelayMs: () => number;
  log: (obj: object, msg: string) => void;
  /** Hears of every request on arrival. */
  counter: RequestCounter;
  /** Requests refused by PVE's schema (400) or to an unknown route (501). */
  rejected: Rejected[];
}

export interface Rejected {
  route: string;
  params: Record<string, unknown>;
  errors: Record<string, string>;
}

/** The route of a request, found before authentication so that every request is counted by route. */
function routeOf(method: string, url: URL): { path?: string; found?: ReturnType<typeof match>; error?: unknown } {
  const path = url.pathname.startsWith(`${PREFIX}/`) ? url.pathname.slice(PREFIX.length) : undefined;
  try {
    return { path, found: path === undefined ? undefined : match(method, path.replace(/\/+$/, "") || "/") };
  } catch (error) {
    return { path, error }; // a malformed %-escape: reported after authentication, as before
  }
}

async function handle(deps: ServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { emu } = deps;
  const url = new URL(req.url ?? "/", "https://pve");
  const method = req.method ?? "GET";
  const { path, found, error } = routeOf(method, url);
  deps.counter.count(`${method} ${found ? found.route.path : "(unmatched)"}`);
  if (emu.faults.latencyMs > 0) await sleep(emu.faults.latencyMs);
  if (emu.faults.shouldDrop()) {
    req.socket.destroy();
    return;
  }
  const injected = emu.faults.injectedError();
  if (injected) return sendError(res, new ApiError(injected[0], injected[1]));
  let user: string;
  try {
    user = authenticate(req, deps.token);
  } catch (e) {
    const bad = (e as ApiError).message !== "No ticket";
    if (bad) await sleep(deps.authFailDelayMs());
    req.resume();
    return sendError(res, e as ApiError, bad);
  }
  if (error) throw error;
  if (!found) {
    req.resume();
    deps.rejected.push({ route: `${method} ${path ?? url.pathname}`, params: {}, errors: { route: "not implemented" } });
    throw new ApiError(501, `Method '${method} ${path ?? url.pathname}' not implemented`);
  }
  const { params, form } = await parseParams(req, url);
  found.route.check?.(emu, found.captures);
  let p;
  try {
    p = checkParams(routeKey(found.route), { ...params, ...found.captures }, form);
  } catch (e) {
    deps.rejected.push({ route: routeKey(found.route), params, errors: (e as ApiError).errors ?? {} });
    throw e;
  }
  const out = await found.route.handler({ emu, p, user });
  if (out instanceof WithExtra) sendData(res, out.data, out.extra);
  else sendData(res, out ?? null);
}

export function createServer(deps: ServerDeps, tls: { key: string; cert: string }): https.Server {
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const t0 = performance.now();
    handle(deps, req, res)
      .catch((e) => {
        const err = e instanceof ApiError ? e : new ApiError(500, (e as Error).message || "internal error");
        if (!res.headersSent && !res.destroyed) sendError(res, err);
      })
      .finally(() => deps.log({ method: req.method, url: req.url, status: res.statusCode, ms: Math.round(performance.now() - t0) }, "request"));
  });
  server.keepAliveTimeout = 5000;
  return server;
}
