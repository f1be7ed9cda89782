/**
 * A sandbox's handle as Proxmox holds it: the description sandboxd wrote
 * (spec, lease, request, pinned address and host key) and what the container
 * really has now (power state, disk size, firewall policy, allowlist rules).
 */
import type { SandboxHandle, SandboxSpec, SandboxState, SshTarget } from "../provider.js";
import type { Logger } from "../local/options.js";
import { allowFromRules } from "./allowlist.js";
import type { PveClient } from "./client.js";
import { parseDescription } from "./description.js";
import type { ContainerRule } from "./firewall.js";
import { ctPath, ipv4Of } from "./lifecycle.js";
import { sizeGiB } from "./templates.js";

export interface HandleDeps {
  client: PveClient;
  log: Logger;
  /** Ids whose create this process is working on. */
  creating: ReadonlySet<string>;
  ssh(address: string, hostKey: string | undefined): SshTarget;
}

/**
 * Four reads at once: interfaces (only for a sandbox made before addresses
 * were pinned), firewall options (the internet toggle), firewall rules (the
 * allowlist, allowlist.ts) and the power state. Used by get() and by the
 * list() a start makes.
 */
export async function readHandle(d: HandleDeps, id: string, node: string, vmid: number, conf: Record<string, unknown>): Promise<SandboxHandle> {
  const meta = parseDescription(conf.description as string);
  const path = ctPath(node, vmid);
  const [ifaces, fw, rules, status] = await Promise.all([
    meta?.address ? null : d.client.get(`${path}/interfaces`).catch(() => null),
    d.client.get<Record<string, unknown>>(`${path}/firewall/options`).catch(() => undefined),
    d.client.get<ContainerRule[]>(`${path}/firewall/rules`).catch(() => undefined),
    d.client.get<{ status?: string }>(`${path}/status/current`).catch(() => undefined),
  ]);
  const stopped = status?.status === "stopped";
  // The pinned address; only sandboxes made before pinning existed fall back to what the container reports.
  const address = stopped ? "" : meta?.address ?? ipv4Of(ifaces) ?? "";
  const state: SandboxState = d.creating.has(id) ? "creating" : conf.lock === "destroyed" ? "destroying" : stopped ? "stopped" : "running";
  const spec: SandboxSpec = meta?.spec ?? { cores: Number(conf.cores ?? 1), memoryMiB: Number(conf.memory ?? 512), diskGiB: 0, internet: false, labels: {} };
  // What the container really has, not what was asked for.
  spec.diskGiB = sizeGiB(conf.rootfs) ?? spec.diskGiB;
  if (fw) spec.internet = !(Number(fw.enable ?? 0) === 1 && String(fw.policy_out ?? "ACCEPT") !== "ACCEPT");
  if (!address && state === "running") d.log.warn({ id, vmid }, "proxmox sandbox has no IPv4 address yet");
  const lease = meta?.lease;
  const request = meta?.request;
  const egressAllow = rules ? allowFromRules(rules) : [];
  return {
    id, state, spec, address, ssh: d.ssh(address, meta?.hostKey), createdAt: meta?.createdAt ?? new Date(0),
    ...(lease ? { lease } : {}), ...(request ? { request } : {}), ...(egressAllow.length ? { egressAllow } : {}),
  };
}
