/**
 * Checks at start that the cluster can serve sandboxes safely: a PVE version
 * with every call sandboxd makes, and a datacenter firewall that is on (the
 * per-container egress policy is ignored while it is off).
 */
import { failedPrecondition } from "../../errors.js";
import type { Logger } from "../local/options.js";
import type { PveClient } from "./client.js";
import { classify } from "./retry.js";

/** GET /nodes/{node}/lxc/{vmid}/interfaces and GET /pools with poolid/type are new in 8.1. */
export const MIN_PVE: readonly [number, number] = [8, 1];

/** "8.4.1", "9.1.3", "8.1" → [major, minor], or undefined when unreadable. */
export function parseVersion(v: unknown): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(String(v ?? ""));
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export async function checkVersion(client: PveClient, deadline: number): Promise<string> {
  const answer = await client.get<{ version?: string; release?: string }>("/version", {}, { deadline });
  const version = answer?.version ?? answer?.release ?? "";
  const v = parseVersion(version);
  if (!v) throw failedPrecondition(`Proxmox answered GET /version with '${version}', not a version sandboxd can read`);
  if (v[0] < MIN_PVE[0] || (v[0] === MIN_PVE[0] && v[1] < MIN_PVE[1])) {
    throw failedPrecondition(
      `Proxmox VE ${version} is too old: sandboxd needs PVE ${MIN_PVE.join(".")} or later ` +
        "(it reads container addresses with GET /nodes/{node}/lxc/{vmid}/interfaces and lists its pool with GET /pools?poolid=…&type=lxc, both new in 8.1); upgrade the cluster (apt full-upgrade)",
    );
  }
  return version;
}

/**
 * The datacenter firewall: with `require` an off (or unreadable) firewall
 * stops the start; with `warn` it is logged loudly and sandboxd serves
 * sandboxes whose internet cannot be cut.
 */
export async function checkDatacenterFirewall(client: PveClient, mode: "require" | "warn", log: Logger, deadline: number): Promise<void> {
  const setting = "SANDBOXD_PROXMOX_DATACENTER_FIREWALL";
  let problem: string;
  try {
    const o = await client.get<{ enable?: number | string }>("/cluster/firewall/options", {}, { deadline });
    if (Number(o?.enable ?? 0) === 1) return;
    problem = "the datacenter firewall is off (Datacenter → Firewall → Options → Firewall), so no sandbox's internet access can be cut";
  } catch (e) {
    if (classify(e) !== "permission") throw e;
    problem = "cannot read the datacenter firewall options (the token needs Sys.Audit on /, see docs/proxmox.md §1), so whether sandboxes' internet can be cut is unknown";
  }
  if (mode === "require") throw failedPrecondition(`${problem}; enable it, or set ${setting}=warn to serve anyway`);
  log.warn({ setting }, `${problem}; serving anyway because ${setting}=warn`);
}
