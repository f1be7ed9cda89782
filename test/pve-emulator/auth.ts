/** API-token authentication and pool-scoped permissions, as pve-access-control. */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { ApiError } from "./http.js";

export interface Token {
  /** user@realm!tokenid */
  id: string;
  secret: string;
}

/** The token id of a request, or 401 ("No ticket" without the header; "Authentication failed!" otherwise). */
export function authenticate(req: IncomingMessage, token: Token): string {
  const header = req.headers.authorization;
  if (!header) throw new ApiError(401, "No ticket");
  const m = /^PVEAPIToken=(.+)$/.exec(header.trim());
  if (!m) throw new ApiError(401, "No ticket");
  let value: string;
  try {
    value = decodeURIComponent(m[1]!);
  } catch {
    throw new ApiError(401, "Authentication failed!");
  }
  const eq = value.lastIndexOf("=");
  const id = value.slice(0, Math.max(0, eq));
  const secret = value.slice(eq + 1);
  const a = Buffer.from(`${id}=${secret}`);
  const b = Buffer.from(`${token.id}=${token.secret}`);
  if (eq < 0 || a.length !== b.length || !timingSafeEqual(a, b)) throw new ApiError(401, "Authentication failed!");
  return id;
}

/**
 * The token's ACL: `privileges` on /pool/<pool>, propagating to the pool's
 * members (and, as the seed's PVEDatastoreUser grant, the storages' Datastore
 * privileges), and `root` on / without propagation.
 */
export class Acl {
  constructor(
    private readonly pool: string,
    private readonly privileges: Set<string>,
    private readonly members: Set<number>,
    private readonly root: Set<string> = new Set(),
  ) {}

  canRoot(priv: string): boolean {
    return this.root.has(priv);
  }

  canStorage(priv: string): boolean {
    return this.privileges.has(priv);
  }

  canVm(vmid: number, priv: string): boolean {
    return this.members.has(vmid) && this.privileges.has(priv);
  }

  /** 403 "Permission check failed (/vms/N, PRIV)" — checked before the CT's existence. */
  requireVm(vmid: number, priv: string): void {
    if (!this.canVm(vmid, priv)) throw new ApiError(403, `Permission check failed (/vms/${vmid}, ${priv})`);
  }

  canPool(pool: string, priv: string): boolean {
    return pool === this.pool && this.privileges.has(priv);
  }
}
