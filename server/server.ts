/**
 * The sandboxd server: the SandboxService (plus health and reflection) on one
 * port via connect-node, and graceful shutdown. Health says SERVING only once
 * the provider is ready, NOT_SERVING while the provider reports itself
 * unhealthy (local runtime: sandbox isolation being restored) and while draining.
 *
 * Shutdown, in the order a load balancer or mesh needs:
 *   1. health NOT_SERVING at once (Check and Watch);
 *   2. keep accepting and serving for the drain delay, while probes and
 *      endpoint lists catch up (new RPCs still succeed);
 *   3. GOAWAY and stop accepting; Health Watch streams end with UNAVAILABLE;
 *   4. the grace period for running RPCs, then cancel what is left (UNAVAILABLE).
 */
import { ProxmoxProvider } from "./providers/proxmox/index.js";
import fs from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { file_sandbox_v1_sandbox } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import { file_grpc_health_v1_health } from "../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { errorInterceptor } from "./api/errors.js";
import { Authenticator, TokenFile, defaultAllowedHosts, webSafetyHandler } from "./auth/index.js";
import { InFlightRpcs } from "./api/in-flight.js";
import { rpcLogInterceptor } from "./api/rpc-log.js";
import { withNodeRequest } from "./api/node-request.js";
import { sandboxRoutes } from "./api/service.js";
import { listen, type Handler, type Listener } from "./api/transport.js";
import { UPLOAD_MESSAGE_LIMIT } from "./api/client-stream.js";
import type { Config } from "./config/config.js";
import { HealthService, registerHealth, registerReflection, ServingStatus } from "./grpc/index.js";
import { LocalRuntime } from "./providers/local/index.js";
import type { SandboxProvider } from "./providers/provider.js";
import { ReadyGate } from "./api/ready-gate.js";
import { SandboxManager } from "./sandboxes/manager.js";
import { WarmPool } from "./sandboxes/warm-pool.js";
import { SessionRegistry } from "./ssh/index.js";
import { sleep } from "./sleep.js";
import { startAdminServer, type AdminServer } from "./telemetry/admin-server.js";
import { addScrapeSource, transport as transportMetrics } from "./telemetry/metrics.js";
import { traceRequests } from "./telemetry/tracing.js";
import { rpcMetricsInterceptor } from "./api/rpc-metrics.js";
import { ServerReflection as ServerReflectionV1 } from "../gen/ts/vendor/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../gen/ts/vendor/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../gen/ts/vendor/grpc/health/v1/health_pb.js";
import { SandboxService } from "../gen/ts/sandbox/v1/sandbox_pb.js";
import type { DescService } from "@bufbuild/protobuf";

export interface SandboxServer {
  /** host:port actually listened on (port 0 in the config picks a free one). */
  address: string;
  /** host:port of the admin listener (/metrics, /healthz, /readyz), unless it is off. */
  adminAddress?: string;
  manager: SandboxManager;
  health: HealthService;
  /** Drains (up to the grace period), cancels what is left, closes SSH and the provider. Sandboxes stay. */
  shutdown(): Promise<void>;
}

export function makeProvider(config: Config, logger: Logger): SandboxProvider {
  if (config.provider === "proxmox") return new ProxmoxProvider(config.proxmox!, { logger, egressDeny: config.egress.deny });
  const { pidsMax, ...limits } = config.local.limits;
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  return new LocalRuntime({
    instance: config.local.instance, subnet: config.local.subnet, stateDir: config.local.stateDir, logger,
    pidsMax, limits: defined(limits), totals: defined(config.local.totals),
    egress: config.egress, isolationCheckIntervalMs: config.local.isolationCheckIntervalMs,
  });
}

/** The authenticator the configuration asks for (the token file is read now and followed). */
export function makeAuthenticator(config: Config, logger: Logger): Authenticator {
  const a = config.auth;
  let tokens: TokenFile | undefined;
  if (a.tokensFile) {
    tokens = new TokenFile(a.tokensFile, logger);
    tokens.start();
  }
  if (!authMethods(config).length) {
    const how = a.insecureNoAuth ? "forced by SANDBOXD_AUTH_INSECURE_NO_AUTH" : "loopback only";
    logger[a.insecureNoAuth ? "warn" : "info"]({ listen: config.listen.host }, `no authentication (${how}): every caller manages every sandbox`);
  }
  return new Authenticator({ tokens, certificates: a.identities, mesh: a.meshIdentities, publicServices: a.publicServices });
}

function authMethods(config: Config): string[] {
  const a = config.auth;
  return [a.tokensFile && "token", a.clientCaFile && "mtls", a.meshIdentities && "mesh"].filter((m): m is string => Boolean(m));
}

export async function startServer(config: Config, logger: Logger, provider = makeProvider(config, logger)): Promise<SandboxServer> {
  const registry = new SessionRegistry();
  const pool = config.warmPool.shapes.length && provider.claim
    ? new WarmPool({ provider, shapes: config.warmPool.shapes, refillConcurrency: config.warmPool.refillConcurrency, logger })
    : undefined;
  if (config.warmPool.shapes.length && !provider.claim) logger.warn({ provider: provider.name }, "SANDBOXD_WARM_POOL ignored: this provider cannot hand out pool members");
  const manager = new SandboxManager({ provider, registry, lease: config.lease, defaults: config.defaults, logger, quotas: config.quotas, pool });
  const health = new HealthService(["sandbox.v1.SandboxService"], ServingStatus.NOT_SERVING);
  const inFlight = new InFlightRpcs();
  const gate = new ReadyGate();

  const auth = makeAuthenticator(config, logger);
  const handler = connectNodeAdapter({
    routes: (router) => {
      sandboxRoutes(router, { manager, registry });
      registerHealth(router, health);
      registerReflection(router, [file_sandbox_v1_sandbox, file_grpc_health_v1_health]);
    },
    // The log interceptor is outermost so it sees the status the error interceptor chose (and the
    // principal auth found); in-flight tracking is innermost so the handler's signal is the one shutdown can abort.
    // RPC metrics only when something can scrape them (SANDBOXD_ADMIN_LISTEN=off drops them).
    interceptors: [...(config.admin ? [rpcMetricsInterceptor()] : []), rpcLogInterceptor(logger), errorInterceptor(logger), auth.interceptor(), gate.interceptor(), inFlight.interceptor()],
    contextValues: (req) => withNodeRequest(auth.contextValues(req), req),
    readMaxBytes: UPLOAD_MESSAGE_LIMIT,
    // Responses are never compressed: exec output and files are mostly incompressible or
    // local, and gzip cut streaming throughput tenfold. Compressed requests are still accepted.
    compressMinBytes: Number.MAX_SAFE_INTEGER,
  }) as Handler;
  const served = traceRequests(webSafetyHandler(handler, {
    allowedHosts: config.auth.allowedHosts ?? defaultAllowedHosts(config.listen.host), corsOrigins: config.auth.corsOrigins,
  }), rpcPaths([SandboxService, Health, ServerReflectionV1, ServerReflectionV1Alpha]));

  const tls = config.tls && {
    cert: fs.readFileSync(config.tls.certFile), key: fs.readFileSync(config.tls.keyFile),
    ...(config.auth.clientCaFile ? { ca: fs.readFileSync(config.auth.clientCaFile) } : {}),
  };
  // Listen before the provider is ready: health answers NOT_SERVING, the SandboxService UNAVAILABLE.
  let listener: Listener;
  try {
    listener = await listen(served, config.listen.host, config.listen.port, {
      tls: tls || undefined,
      sessions: {
        keepaliveIntervalMs: config.connections.keepaliveIntervalMs, keepaliveTimeoutMs: config.connections.keepaliveTimeoutMs,
        maxConnectionAgeMs: config.connections.maxConnectionAgeMs, maxConnectionAgeGraceMs: config.connections.maxConnectionAgeGraceMs,
      },
      events: { onKeepaliveTimeout: () => transportMetrics.keepaliveTimeouts.inc(), onMaxAge: () => transportMetrics.maxAgeGoaways.inc() },
    });
  } catch (err) {
    auth.settings.tokens?.stop();
    throw err;
  }
  const address = `${listener.host.includes(":") ? `[${listener.host}]` : listener.host}:${listener.port}`;
  const removeScrapeSource = addScrapeSource({ sandboxes: () => manager.countByState(), transport: () => listener.stats() });
  let admin: AdminServer | undefined;
  try {
    const serving = () => health.get("sandbox.v1.SandboxService") === ServingStatus.SERVING;
    if (config.admin) admin = await startAdminServer(config.admin.host, config.admin.port, serving);
    await manager.start();
    gate.open();
  } catch (err) {
    listener.stopAccepting();
    listener.destroyAll();
    removeScrapeSource();
    await admin?.close();
    auth.settings.tokens?.stop();
    await manager.close().catch(() => {});
    throw err;
  }
  // The provider's own health (local: sandbox isolation complete) until shutdown takes over.
  let draining = false;
  const unwatchProvider = provider.watchHealth?.((healthy) => {
    if (draining) return;
    health.setServing(healthy);
    logger[healthy ? "warn" : "error"]({ provider: provider.name }, healthy ? "provider healthy again: SERVING" : "provider unhealthy: NOT_SERVING");
  });
  health.setServing(provider.healthy ?? true);
  logger.info({ address, admin: admin?.address, tls: Boolean(tls), provider: provider.name, auth: authMethods(config) }, `sandboxd serving on ${address}`);

  let shuttingDown: Promise<void> | undefined;
  const shutdown = async () => {
    draining = true;
    unwatchProvider?.();
    health.setServing(false);
    logger.info({ drainDelayMs: config.drainDelayMs }, "NOT_SERVING; still accepting during the drain delay");
    await sleep(config.drainDelayMs);
    listener.stopAccepting();
    health.close();
    logger.info({ inFlight: listener.inFlight(), graceMs: config.shutdownGraceMs }, "stopped accepting (GOAWAY); draining");
    const graceEnd = Date.now() + config.shutdownGraceMs;
    while (listener.inFlight() > 0 && Date.now() < graceEnd) await sleep(50);
    if (listener.inFlight() > 0) {
      logger.warn({ inFlight: listener.inFlight() }, "grace period over: cancelling RPCs still running");
      inFlight.cancelAll(new ConnectError("sandboxd is shutting down", Code.Unavailable));
      const cancelEnd = Date.now() + 2000;
      while (listener.inFlight() > 0 && Date.now() < cancelEnd) await sleep(20);
    }
    listener.destroyAll();
    auth.settings.tokens?.stop();
    await manager.close();
    removeScrapeSource();
    await admin?.close();
    logger.info("stopped; sandboxes are kept");
  };
  return { address, adminAddress: admin?.address, manager, health, shutdown: () => (shuttingDown ??= shutdown()) };
}

/** "/<service>/<method>" of every RPC served: the only names spans may get. */
function rpcPaths(services: DescService[]): Set<string> {
  return new Set(services.flatMap((s) => s.methods.map((m) => `/${s.typeName}/${m.name}`)));
}

