/** What every route handler sees. */
import type { Acl } from "./auth.js";
import type { Cluster } from "./cluster.js";
import type { Faults } from "./faults.js";
import type { Values } from "./schema.js";
import type { Sandboxes } from "./sandboxes.js";
import type { Tasks } from "./tasks.js";
import type { Timing } from "./options.js";

export interface Emu {
  cluster: Cluster;
  tasks: Tasks;
  faults: Faults;
  timing: Timing;
  sandboxes: Sandboxes;
  acl: Acl;
  pool: string;
  /** GET /version's version ("9.1.3"). */
  version: string;
  poolMemberFields: "all" | "declared";
}

export interface Call {
  emu: Emu;
  /** Path captures (node, vmid, upid, ...), validated with the query/body. */
  p: Values;
  /** The authenticated token, "user@realm!tokenid". */
  user: string;
}

export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path under /api2/json with {name} captures. */
  path: string;
  /** Permission check, run before schema validation (path captures raw). */
  check?: (emu: Emu, path: Record<string, string>) => void;
  handler: (call: Call) => unknown | Promise<unknown>;
}

/** A handler's answer with top-level keys next to data (the task log's total). */
export class WithExtra {
  constructor(readonly data: unknown, readonly extra: Record<string, unknown>) {}
}

/** The vmid of a path for permission checks (PVE checks /vms/<as written>). */
export const pathVmid = (path: Record<string, string>) => Number(path.vmid);
