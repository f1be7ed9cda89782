/**
 * Who is calling: the principal an authenticated request carries through the
 * handlers (connect context value), and what each role may do.
 *
 * Roles: `admin` sees and manages every tenant's sandboxes; `user` manages
 * its own tenant's; `viewer` only reads its own tenant's (Get, List,
 * Download): anything else is PERMISSION_DENIED.
 */
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { permissionDenied } from "../errors.js";

export const ROLES = ["admin", "user", "viewer"] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  /** The tenant whose sandboxes it works with. */
  tenant: string;
  role: Role;
  /** Who it is, for the audit log: a token's name, a certificate's identity. Never a secret. */
  name: string;
  /** How it was established. */
  via: "token" | "mtls" | "mesh" | "none";
}

/** A tenant name: what a token file or identity map may give (also stored with each sandbox). */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** The tenant of sandboxes made without authentication (and of those made before tenants existed). */
export const DEFAULT_TENANT = "default";

/** With no authentication configured (loopback only): one caller that may do everything. */
export const ANONYMOUS: Principal = { tenant: DEFAULT_TENANT, role: "admin", name: "anonymous", via: "none" };

export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "sandboxd principal" });

/** The caller of an RPC; ANONYMOUS when the server runs without authentication. */
export function callerOf(ctx: HandlerContext): Principal {
  return ctx.values.get(principalKey) ?? ANONYMOUS;
}

/** SandboxService RPCs that change nothing: a viewer may call them, and they are not audited. */
export const READ_ONLY_RPCS: ReadonlySet<string> = new Set([
  "GetSandbox", "ListSandboxes", "Download", "Attach", "ListCommands", "Stat", "ListDir", "Watch", "DownloadArchive",
]);

/** Throws permission_denied when the role may not call `method` at all. */
export function checkMethod(p: Principal, method: string): void {
  if (p.role === "viewer" && !READ_ONLY_RPCS.has(method)) {
    throw permissionDenied(`${p.name} (role viewer) may not call ${method}: it only reads`);
  }
}

/** Whether the caller may see a sandbox of `tenant` (others' sandboxes are NOT_FOUND, so their existence does not leak). */
export function canSee(p: Principal, tenant: string | undefined): boolean {
  return p.role === "admin" || (tenant ?? DEFAULT_TENANT) === p.tenant;
}
