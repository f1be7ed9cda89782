/**
 * sandboxd's configuration: defaults, then an optional JSON file named by
 * SANDBOXD_CONFIG, then SANDBOXD_* environment variables (env wins). Every
 * value is validated at start; errors name the setting at fault.
 */
import fs from "node:fs";
import { DEFAULT_EGRESS_POLICY, EgressSyntaxError, parseCidrList, parsePorts, type EgressPolicy } from "../providers/egress.js";
import { PROXMOX_SETTINGS, ProxmoxConfigError, parseProxmoxConfig, type ProxmoxConfig } from "../providers/proxmox/config.js";
import { AUTH_SETTINGS, AuthConfigError, parseAuthConfig, type AuthConfig } from "../auth/config.js";
import { QuotaConfigError, parseTenantQuotas, type QuotaConfig } from "./quotas.js";
import { parseWarmPool, PoolConfigError, type PoolShape } from "./warm-pool.js";

export interface Config {
  listen: { host: string; port: number };
  provider: "local" | "proxmox";
  /** Set when provider is "proxmox". */
  proxmox?: ProxmoxConfig;
  tls?: { certFile: string; keyFile: string };
  /** Who may call, and from which web origins (server/auth/config.ts). */
  auth: AuthConfig;
  /** Per-tenant quotas (SANDBOXD_TENANT_QUOTAS; see server/config/quotas.ts). */
  quotas: QuotaConfig;
  logLevel: string;
  /** syncIntervalMs: how often a replica re-lists the provider's sandboxes (positive). */
  lease: { defaultTtlMs: number; maxTtlMs: number; reapIntervalMs: number; syncIntervalMs: number };
  defaults: { cores: number; memoryMiB: number; diskGiB: number };
  /** What sandboxes may reach beyond their host (SANDBOXD_EGRESS_*; see server/providers/egress.ts). */
  egress: EgressPolicy;
  local: {
    instance: string;
    subnet: string;
    stateDir?: string;
    /** Per sandbox (unset: the runtime's defaults from the host). */
    limits: { maxSandboxes?: number; maxCores?: number; maxMemoryMiB?: number; maxDiskGiB?: number; pidsMax?: number };
    /** All sandboxes together (unset: derived from the host, see server/providers/local/admission.ts). */
    totals: { totalCores?: number; totalMemoryMiB?: number; totalPids?: number; diskReserveGiB?: number };
    /** How often the host firewall and port isolation are re-checked and restored (positive). */
    isolationCheckIntervalMs: number;
  };
  /** After SIGTERM: how long health says NOT_SERVING while the port still accepts and serves (load balancers catch up). */
  drainDelayMs: number;
  /** Then: how long running RPCs may finish before they are cancelled. */
  shutdownGraceMs: number;
  /** The admin listener (plain HTTP: /metrics, /healthz, /readyz); undefined when SANDBOXD_ADMIN_LISTEN=off. */
  admin?: { host: string; port: number };
  /**
   * Connections: an HTTP/2 PING every keepaliveIntervalMs (0: never), the connection closed when one is not
   * acknowledged within keepaliveTimeoutMs. Pings keep silent streams alive through proxies and NATs and find dead peers.
   * maxConnectionAgeMs (0: unlimited) sends a GOAWAY to connections older than that, so clients reconnect and
   * land on other replicas; running RPCs get maxConnectionAgeGraceMs before the connection is closed.
   */
  connections: { keepaliveIntervalMs: number; keepaliveTimeoutMs: number; maxConnectionAgeMs: number; maxConnectionAgeGraceMs: number };
  /** Sandboxes kept made and ready, by shape (SANDBOXD_WARM_POOL; see server/config/warm-pool.ts); refills at most refillConcurrency at once. */
  warmPool: { shapes: PoolShape[]; refillConcurrency: number };
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Setting name in the file → its environment variable. */
const SETTINGS = {
  listen: "SANDBOXD_LISTEN",
  provider: "SANDBOXD_PROVIDER",
  tlsCert: "SANDBOXD_TLS_CERT",
  tlsKey: "SANDBOXD_TLS_KEY",
  logLevel: "SANDBOXD_LOG_LEVEL",
  leaseDefaultTtl: "SANDBOXD_LEASE_DEFAULT_TTL",
  leaseMaxTtl: "SANDBOXD_LEASE_MAX_TTL",
  leaseReapInterval: "SANDBOXD_LEASE_REAP_INTERVAL",
  syncInterval: "SANDBOXD_SYNC_INTERVAL",
  defaultCores: "SANDBOXD_DEFAULT_CORES",
  defaultMemoryMiB: "SANDBOXD_DEFAULT_MEMORY_MIB",
  defaultDiskGiB: "SANDBOXD_DEFAULT_DISK_GIB",
  localInstance: "SANDBOXD_LOCAL_INSTANCE",
  localSubnet: "SANDBOXD_LOCAL_SUBNET",
  localStateDir: "SANDBOXD_LOCAL_STATE_DIR",
  localMaxSandboxes: "SANDBOXD_LOCAL_MAX_SANDBOXES",
  localMaxCores: "SANDBOXD_LOCAL_MAX_CORES",
  localMaxMemoryMiB: "SANDBOXD_LOCAL_MAX_MEMORY_MIB",
  localMaxDiskGiB: "SANDBOXD_LOCAL_MAX_DISK_GIB",
  localPidsMax: "SANDBOXD_LOCAL_PIDS_MAX",
  localTotalCores: "SANDBOXD_LOCAL_TOTAL_CORES",
  localTotalMemoryMiB: "SANDBOXD_LOCAL_TOTAL_MEMORY_MIB",
  localTotalPids: "SANDBOXD_LOCAL_TOTAL_PIDS",
  localDiskReserveGiB: "SANDBOXD_LOCAL_DISK_RESERVE_GIB",
  localIsolationCheckInterval: "SANDBOXD_LOCAL_ISOLATION_CHECK_INTERVAL",
  egressDeny: "SANDBOXD_EGRESS_DENY",
  egressAllow: "SANDBOXD_EGRESS_ALLOW",
  egressPorts: "SANDBOXD_EGRESS_PORTS",
  egressNewConnRate: "SANDBOXD_EGRESS_NEW_CONN_RATE",
  shutdownGrace: "SANDBOXD_SHUTDOWN_GRACE",
  drainDelay: "SANDBOXD_DRAIN_DELAY",
  adminListen: "SANDBOXD_ADMIN_LISTEN",
  keepaliveInterval: "SANDBOXD_KEEPALIVE_INTERVAL",
  keepaliveTimeout: "SANDBOXD_KEEPALIVE_TIMEOUT",
  maxConnectionAge: "SANDBOXD_MAX_CONNECTION_AGE",
  maxConnectionAgeGrace: "SANDBOXD_MAX_CONNECTION_AGE_GRACE",
  warmPool: "SANDBOXD_WARM_POOL",
  warmPoolRefillConcurrency: "SANDBOXD_WARM_POOL_REFILL_CONCURRENCY",
  tenantQuotas: "SANDBOXD_TENANT_QUOTAS",
  ...AUTH_SETTINGS,
} as const;
type Setting = keyof typeof SETTINGS;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const PROVIDERS = ["local", "proxmox"];

/** Reads the file (if SANDBOXD_CONFIG is set) and the environment. */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  readFile = (p: string) => fs.readFileSync(p, "utf8"),
  exists = (p: string) => fs.existsSync(p),
): Config {
  let file: Record<string, unknown> = {};
  const path = env.SANDBOXD_CONFIG;
  if (path) {
    let text: string;
    try {
      text = readFile(path);
    } catch (e) {
      throw new ConfigError(`SANDBOXD_CONFIG: cannot read ${path}: ${(e as Error).message}`);
    }
    try {
      file = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`SANDBOXD_CONFIG: ${path} is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof file !== "object" || file === null || Array.isArray(file)) throw new ConfigError(`SANDBOXD_CONFIG: ${path} must hold a JSON object`);
    for (const key of Object.keys(file)) {
      if (!(key in SETTINGS) && !(key in PROXMOX_SETTINGS)) {
        throw new ConfigError(`SANDBOXD_CONFIG: unknown setting '${key}' (known: ${[...Object.keys(SETTINGS), ...Object.keys(PROXMOX_SETTINGS)].join(", ")})`);
      }
    }
  }
  /** The raw value and the name to blame in errors. */
  const get = (s: Setting): { value: string | undefined; name: string } => {
    const e = env[SETTINGS[s]];
    if (e !== undefined && e !== "") return { value: e, name: SETTINGS[s] };
    const f = file[s];
    if (f === undefined || f === null) return { value: undefined, name: `${s} (in ${path})` };
    return { value: String(f), name: `${s} (in ${path})` };
  };
  const fail = (name: string, expected: string, got: string): never => {
    throw new ConfigError(`${name}: expected ${expected}, got '${got}'`);
  };
  const duration = (s: Setting, dflt: number, zeroAllowed = false): number => {
    const { value, name } = get(s);
    if (value === undefined) return dflt;
    const ms = parseDuration(value);
    if (ms === undefined || ms < 0 || (ms === 0 && !zeroAllowed)) {
      fail(name, `a ${zeroAllowed ? "" : "positive "}duration like 500ms, 10s, 10m, 24h`, value);
    }
    return ms!;
  };
  const int = (s: Setting, dflt: number, min: number): number => {
    const { value, name } = get(s);
    if (value === undefined) return dflt;
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || !Number.isSafeInteger(n)) fail(name, `an integer ≥ ${min}`, value);
    return n;
  };

  const optInt = (s: Setting, min: number): number | undefined => (get(s).value === undefined ? undefined : int(s, 0, min));

  const listenRaw = get("listen");
  const listen = parseListen(listenRaw.value ?? "127.0.0.1:8080");
  if (!listen) fail(listenRaw.name, "host:port", listenRaw.value!);

  const adminRaw = get("adminListen");
  const admin = adminRaw.value === "off" ? undefined : parseListen(adminRaw.value ?? "127.0.0.1:9090");
  if (adminRaw.value !== "off" && !admin) fail(adminRaw.name, "host:port or 'off'", adminRaw.value!);

  const prov = get("provider");
  const provider = prov.value ?? "local";
  if (!PROVIDERS.includes(provider)) fail(prov.name, "'local' or 'proxmox'", provider);
  let proxmox: ProxmoxConfig | undefined;
  if (provider === "proxmox") {
    const getP = (s: keyof typeof PROXMOX_SETTINGS): { value: string | undefined; name: string } => {
      for (const v of PROXMOX_SETTINGS[s]) if (env[v] !== undefined && env[v] !== "") return { value: env[v], name: v };
      const f = file[s];
      const name = path ? `${PROXMOX_SETTINGS[s][0]} (${s} in ${path})` : PROXMOX_SETTINGS[s][0];
      return { value: f === undefined || f === null ? undefined : String(f), name };
    };
    try {
      proxmox = parseProxmoxConfig(getP, parseDuration, readFile);
    } catch (e) {
      if (e instanceof ProxmoxConfigError) throw new ConfigError(e.message);
      throw e;
    }
  }

  const cert = get("tlsCert");
  const key = get("tlsKey");
  if ((cert.value === undefined) !== (key.value === undefined)) {
    throw new ConfigError(`${SETTINGS.tlsCert} and ${SETTINGS.tlsKey}: set both or neither`);
  }

  let auth: AuthConfig;
  try {
    auth = parseAuthConfig(get, listen!.host, cert.value !== undefined, exists);
  } catch (e) {
    if (e instanceof AuthConfigError) throw new ConfigError(e.message);
    throw e;
  }

  let quotas: QuotaConfig;
  try {
    // The file may hold the object itself (get() would stringify it); the environment holds JSON text.
    const fromEnv = env[SETTINGS.tenantQuotas];
    quotas = parseTenantQuotas(fromEnv !== undefined && fromEnv !== "" ? fromEnv : file.tenantQuotas, get("tenantQuotas").name, parseDuration);
  } catch (e) {
    if (e instanceof QuotaConfigError) throw new ConfigError(e.message);
    throw e;
  }

  const poolSetting = get("warmPool");
  let shapes: PoolShape[] = [];
  try {
    shapes = parseWarmPool(poolSetting.value ?? "", poolSetting.name);
  } catch (e) {
    if (e instanceof PoolConfigError) throw new ConfigError(e.message);
    throw e;
  }

  const level = get("logLevel");
  const logLevel = level.value ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) fail(level.name, `one of ${LOG_LEVELS.join(", ")}`, logLevel);

  const defaultTtlMs = duration("leaseDefaultTtl", 10 * 60_000);
  const maxTtlMs = duration("leaseMaxTtl", 24 * 3600_000);
  if (defaultTtlMs > maxTtlMs) {
    throw new ConfigError(`${SETTINGS.leaseDefaultTtl}: the default lease (${defaultTtlMs} ms) exceeds the maximum ${SETTINGS.leaseMaxTtl} (${maxTtlMs} ms)`);
  }

  const subnet = get("localSubnet");
  if (subnet.value !== undefined && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(subnet.value)) fail(subnet.name, "a CIDR like 198.18.0.0/16", subnet.value);
  const instance = get("localInstance");
  if (instance.value !== undefined && !/^[a-z][a-z0-9-]{0,31}$/.test(instance.value)) fail(instance.name, "1-32 characters of a-z 0-9 -, starting with a letter", instance.value);

  const egressSetting = <T>(s: Setting, parse: (v: string) => T, dflt: T, expected: string): T => {
    const { value, name } = get(s);
    if (value === undefined) return dflt;
    try {
      return parse(value);
    } catch (e) {
      if (e instanceof EgressSyntaxError) throw new ConfigError(`${name}: expected ${expected}: ${e.message}`);
      throw e;
    }
  };
  const egress: EgressPolicy = {
    deny: egressSetting("egressDeny", parseCidrList, [], "comma-separated IPv4 CIDRs like 10.0.0.0/8,192.0.2.7"),
    allow: egressSetting("egressAllow", parseCidrList, [], "comma-separated IPv4 CIDRs like 10.20.0.0/16"),
    ports: egressSetting("egressPorts", parsePorts, DEFAULT_EGRESS_POLICY.ports, "'any' or comma-separated ports and ranges like 80,443,8000-8100"),
    newConnRate: int("egressNewConnRate", DEFAULT_EGRESS_POLICY.newConnRate, 0),
  };

  return {
    listen: listen!,
    provider: provider as Config["provider"],
    proxmox,
    tls: cert.value !== undefined ? { certFile: cert.value, keyFile: key.value! } : undefined,
    auth,
    quotas,
    logLevel,
    lease: { defaultTtlMs, maxTtlMs, reapIntervalMs: duration("leaseReapInterval", 250), syncIntervalMs: duration("syncInterval", 10_000) },
    defaults: { cores: int("defaultCores", 1, 1), memoryMiB: int("defaultMemoryMiB", 512, 64), diskGiB: int("defaultDiskGiB", 2, 1) },
    egress,
    local: {
      instance: instance.value ?? "sandboxd", subnet: subnet.value ?? "198.18.0.0/16", stateDir: get("localStateDir").value,
      limits: {
        maxSandboxes: optInt("localMaxSandboxes", 1), maxCores: optInt("localMaxCores", 1), maxMemoryMiB: optInt("localMaxMemoryMiB", 64),
        maxDiskGiB: optInt("localMaxDiskGiB", 1), pidsMax: optInt("localPidsMax", 16),
      },
      totals: {
        totalCores: optInt("localTotalCores", 1), totalMemoryMiB: optInt("localTotalMemoryMiB", 64), totalPids: optInt("localTotalPids", 64),
        diskReserveGiB: optInt("localDiskReserveGiB", 0),
      },
      isolationCheckIntervalMs: duration("localIsolationCheckInterval", 2_000),
    },
    drainDelayMs: duration("drainDelay", 5_000, true),
    shutdownGraceMs: duration("shutdownGrace", 10_000),
    admin,
    connections: {
      keepaliveIntervalMs: duration("keepaliveInterval", 30_000, true),
      keepaliveTimeoutMs: duration("keepaliveTimeout", 20_000),
      maxConnectionAgeMs: duration("maxConnectionAge", 0, true),
      maxConnectionAgeGraceMs: duration("maxConnectionAgeGrace", 30_000, true),
    },
    warmPool: { shapes, refillConcurrency: int("warmPoolRefillConcurrency", 3, 1) },
  };
}

/** "host:port", "[v6]:port"; port 0 lets the OS choose (tests). */
export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/** "1500", "1500ms", "10s", "10m", "24h" → milliseconds (a bare number is ms). */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[m[2] ?? "ms"]!;
  return Math.round(Number(m[1]) * unit);
}
