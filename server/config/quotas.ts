/**
 * Quotas per tenant (SANDBOXD_TENANT_QUOTAS, or `tenantQuotas` in the config
 * file): a JSON object from tenant name to its limits, "*" being the limits
 * of every tenant not listed (each such tenant gets its own budget of them):
 *
 *   {"*": {"sandboxes": 20, "cores": 40, "memoryMiB": 65536, "diskGiB": 500,
 *          "maxLeaseTtl": "24h", "createsPerMinute": 60},
 *    "agents": {"sandboxes": 100}}
 *
 * Every field is optional; an absent one is unlimited (a listed tenant does
 * not inherit "*"'s fields). Enforced by server/sandboxes/quotas.ts.
 */
import { TENANT_PATTERN } from "../auth/principal.js";

export interface TenantQuota {
  /** Sandboxes the tenant may hold at once. */
  sandboxes?: number;
  /** Sums over the tenant's sandboxes. */
  cores?: number;
  memoryMiB?: number;
  diskGiB?: number;
  /** The longest lease TTL it may ask for (CreateSandbox, KeepAlive). */
  maxLeaseTtlMs?: number;
  /** CreateSandbox calls that make a sandbox, per minute (per replica: see server/sandboxes/quotas.ts). */
  createsPerMinute?: number;
}

export interface QuotaConfig {
  tenants: ReadonlyMap<string, TenantQuota>;
  /** "*": the quota of every tenant not listed; undefined: they are unlimited. */
  others?: TenantQuota;
}

export const NO_QUOTAS: QuotaConfig = { tenants: new Map() };

export class QuotaConfigError extends Error {
  override readonly name = "QuotaConfigError";
}

/** The quota of a tenant; {} (unlimited) when neither it nor "*" is listed. */
export function quotaOf(config: QuotaConfig, tenant: string): TenantQuota {
  return config.tenants.get(tenant) ?? config.others ?? {};
}

const COUNTS = ["sandboxes", "cores", "memoryMiB", "diskGiB", "createsPerMinute"] as const;
const FIELDS = [...COUNTS, "maxLeaseTtl"];

/**
 * Parses the setting: `value` is the JSON text (environment) or the object
 * (config file); `name` is what errors blame. undefined: no quotas.
 */
export function parseTenantQuotas(value: unknown, name: string, parseDuration: (s: string) => number | undefined): QuotaConfig {
  if (value === undefined || value === null || value === "") return NO_QUOTAS;
  let raw: unknown = value;
  if (typeof raw === "string") {
    try {
      raw = JSON.parse(raw) as unknown;
    } catch (e) {
      throw new QuotaConfigError(`${name}: not valid JSON: ${(e as Error).message}`);
    }
  }
  if (!isObject(raw)) throw new QuotaConfigError(`${name}: expected a JSON object from tenant (or "*") to its quota, like {"*": {"sandboxes": 20}}`);
  const tenants = new Map<string, TenantQuota>();
  let others: TenantQuota | undefined;
  for (const [tenant, q] of Object.entries(raw)) {
    const where = `${name}: tenant ${JSON.stringify(tenant)}`;
    if (tenant !== "*" && !TENANT_PATTERN.test(tenant)) throw new QuotaConfigError(`${where}: not a tenant name (${TENANT_PATTERN}) or "*"`);
    if (!isObject(q)) throw new QuotaConfigError(`${where}: expected an object of limits (${FIELDS.join(", ")})`);
    const quota: TenantQuota = {};
    for (const [field, v] of Object.entries(q)) {
      if (field === "maxLeaseTtl") {
        const ms = typeof v === "string" ? parseDuration(v) : undefined;
        if (ms === undefined || ms <= 0) throw new QuotaConfigError(`${where}: maxLeaseTtl: expected a positive duration like "30m" or "24h", got ${JSON.stringify(v)}`);
        quota.maxLeaseTtlMs = ms;
      } else if ((COUNTS as readonly string[]).includes(field)) {
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new QuotaConfigError(`${where}: ${field}: expected an integer ≥ 0, got ${JSON.stringify(v)}`);
        quota[field as (typeof COUNTS)[number]] = v;
      } else {
        throw new QuotaConfigError(`${where}: unknown field '${field}' (known: ${FIELDS.join(", ")})`);
      }
    }
    if (tenant === "*") others = quota;
    else tenants.set(tenant, quota);
  }
  return { tenants, ...(others ? { others } : {}) };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
