/**
 * The templates sandboxes are cloned from, read at start: which node each
 * lives on, whether its volumes are on shared storage, its root disk size,
 * and whether it is safe to hand to untrusted code (clones inherit all of it).
 *
 * Proxmox clones a container to another node (`target`) only when every
 * volume is on shared storage ("can't clone CT to node '…' (CT uses local
 * storage)"). With local storage each node needs its own template, named in
 * SANDBOXD_PROXMOX_TEMPLATE_ID as node=vmid pairs: configured, not guessed
 * from names or tags, because the template decides what every sandbox runs and
 * anyone who can add a CT to the pool could otherwise plant a look-alike.
 */
import { failedPrecondition } from "../../errors.js";
import type { Logger } from "../local/options.js";
import type { PveClient } from "./client.js";
import type { ProxmoxConfig, UnsafeTemplateSetting } from "./config.js";
import { ctPath } from "./lifecycle.js";
import { classify } from "./retry.js";
import { toSandboxError } from "./errors.js";
import { egressGroupProblem, type ContainerRule } from "./firewall.js";

export interface Template {
  vmid: number;
  node: string;
  /** Every volume on shared storage: clones may go to any node with `target`. */
  shared: boolean;
  /** Root disk size; a clone cannot be smaller. */
  diskGiB: number;
}

/** Where a create on `node` clones from. */
export interface CloneSource {
  templateNode: string;
  templateId: number;
  /** Set when the clone goes to another node (shared storage only). */
  target?: string;
}

const SETTING = "SANDBOXD_PROXMOX_TEMPLATE_ID";

/** "local-lvm:vm-9000-disk-0,size=8G" → 8 (M and T units converted, rounded up); undefined when absent. */
export function sizeGiB(volume: unknown): number | undefined {
  const m = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)/.exec(String(volume ?? ""));
  if (!m) return undefined;
  const scale = { K: 1 / 2 ** 20, M: 1 / 1024, G: 1, T: 1024, "": 1 / 2 ** 30 }[m[2] as "K" | "M" | "G" | "T" | ""];
  return Math.ceil(Number(m[1]) * scale);
}

/** Storage ids of the volumes (rootfs, mpN) a clone copies; bind mounts (a host path) have none. */
export function volumeStorages(conf: Record<string, unknown>): string[] {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(conf)) {
    if (k !== "rootfs" && !/^mp\d+$/.test(k)) continue;
    const volume = String(v).split(",")[0]!;
    const m = /^([a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]):/.exec(volume);
    if (m && !volume.startsWith("/")) out.add(m[1]!);
  }
  return [...out];
}

/** What makes a template unsafe to clone for untrusted code (seed §7), by the setting that waives it. */
export function hardeningProblems(conf: Record<string, unknown>): { setting: UnsafeTemplateSetting; problem: string }[] {
  const out: { setting: UnsafeTemplateSetting; problem: string }[] = [];
  if (String(conf.unprivileged ?? "0") !== "1") out.push({ setting: "privileged", problem: "it is privileged (unprivileged is not 1)" });
  const on = String(conf.features ?? "").split(",").map((f) => f.trim()).filter((f) => f && !/=(0|)$/.test(f));
  if (on.length) out.push({ setting: "features", problem: `features are on (${on.join(",")})` });
  if (Number(conf.swap ?? 0) > 0) out.push({ setting: "swap", problem: `it has ${Number(conf.swap)} MiB of swap` });
  return out;
}

/** A template whose firewall lets anything in: clones would accept connections from every other sandbox. */
export function inboundProblem(fw: Record<string, unknown> | undefined): { setting: UnsafeTemplateSetting; problem: string } | undefined {
  const policy = String(fw?.policy_in ?? "ACCEPT");
  if (Number(fw?.enable ?? 0) === 1 && policy !== "ACCEPT") return undefined;
  return { setting: "inbound", problem: "its firewall lets anything in (set enable 1, policy_in DROP and a rule accepting tcp/22 from sandboxd's hosts only)" };
}

/**
 * A template whose firewall does not start with the enabled egress group:
 * clones with internet on would reach private ranges, the node's networks
 * and cloud metadata (docs/proxmox.md §4). Unreadable rules count as missing.
 */
export function egressProblem(rules: readonly ContainerRule[] | undefined): { setting: UnsafeTemplateSetting; problem: string } | undefined {
  const problem = rules ? egressGroupProblem(rules) : "its firewall rules cannot be read (VM.Audit), so whether it keeps sandboxes to the public internet is unknown";
  return problem === undefined ? undefined : { setting: "egress", problem };
}

export interface LoadDeps {
  client: PveClient;
  cfg: ProxmoxConfig;
  log: Logger;
  /** vmid → node from the pool listing (pool members promise vmid and node). */
  locate(vmid: number): Promise<string | undefined>;
}

/** Reads and checks every configured template; throws FAILED_PRECONDITION naming the setting at fault. */
export async function loadTemplates(d: LoadDeps): Promise<Template[]> {
  const wanted = Object.keys(d.cfg.templates).length
    ? Object.entries(d.cfg.templates).map(([node, vmid]) => ({ vmid, node }))
    : [{ vmid: d.cfg.templateId, node: undefined as string | undefined }];
  return Promise.all(wanted.map(async (w) => {
    const found = await d.locate(w.vmid);
    if (w.node && found && found !== w.node) throw failedPrecondition(`${SETTING}: template CT ${w.vmid} lives on node ${found}, not ${w.node}`);
    let node = w.node ?? found;
    if (!node) {
      node = d.cfg.nodes[0]!;
      d.log.warn({ templateId: w.vmid }, "proxmox template not visible in the pool; assuming it lives on the first node");
    }
    return loadOne(d, w.vmid, node);
  }));
}

async function loadOne(d: LoadDeps, vmid: number, node: string): Promise<Template> {
  let conf: Record<string, unknown>;
  try {
    conf = await d.client.get<Record<string, unknown>>(`${ctPath(node, vmid)}/config`);
  } catch (e) {
    if (["permission", "not_found"].includes(classify(e))) throw failedPrecondition(`${SETTING}: template CT ${vmid} not found or not readable on node ${node}`);
    throw toSandboxError(e, "checking the template");
  }
  if (!conf.template) throw failedPrecondition(`${SETTING}: CT ${vmid} is not a template`);
  const [fw, rules] = await Promise.all([
    d.client.get<Record<string, unknown>>(`${ctPath(node, vmid)}/firewall/options`).catch(() => undefined),
    d.client.get<ContainerRule[]>(`${ctPath(node, vmid)}/firewall/rules`).catch(() => undefined),
  ]);
  const found = [...hardeningProblems(conf), inboundProblem(fw), egressProblem(rules)].filter((p): p is NonNullable<typeof p> => p !== undefined);
  const waived = (p: { setting: UnsafeTemplateSetting }) => d.cfg.allowUnsafeTemplate.includes(p.setting);
  for (const p of found.filter((x) => waived(x) && x.setting === "egress")) {
    d.log.warn({ setting: "SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE", templateId: vmid, node },
      `UNSAFE: template CT ${vmid} on ${node}: ${p.problem}; serving anyway because SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE includes egress`);
  }
  const problems = found.filter((p) => !waived(p));
  if (problems.length) {
    throw failedPrecondition(
      `${SETTING}: template CT ${vmid} on ${node} is unsafe for untrusted code, and every clone inherits it: ${problems.map((p) => p.problem).join("; ")}. ` +
        `Fix the template (docs/proxmox.md §3, §4), or for a lab set SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE=${problems.map((p) => p.setting).join(",")}`,
    );
  }
  const shared = (await Promise.all(volumeStorages(conf).map((s) => storageShared(d, node, s)))).every(Boolean);
  return { vmid, node, shared, diskGiB: sizeGiB(conf.rootfs) ?? 0 };
}

/** Whether a storage is shared; one the token cannot see counts as local (never send `target` on a guess). */
async function storageShared(d: LoadDeps, node: string, storage: string): Promise<boolean> {
  const list = await d.client.get<{ storage: string; shared?: number | boolean }[]>(`/nodes/${node}/storage`, { storage }).catch((e) => {
    if (classify(e) !== "permission") throw toSandboxError(e, `reading storage ${storage}`);
    return [];
  });
  const entry = list.find((s) => s.storage === storage);
  if (!entry) d.log.warn({ storage, node }, "storage not visible to the token (Datastore.Audit on /storage/<id>); treated as local");
  return Boolean(Number(entry?.shared ?? 0));
}

/**
 * Each node's clone source: its own template; else a shared-storage template
 * elsewhere, with `target`. Nodes with neither are left out of placement.
 */
export function cloneSources(nodes: string[], templates: Template[]): Map<string, CloneSource> {
  const out = new Map<string, CloneSource>();
  const shared = templates.find((t) => t.shared);
  for (const node of nodes) {
    const own = templates.find((t) => t.node === node);
    if (own) out.set(node, { templateNode: node, templateId: own.vmid });
    else if (shared) out.set(node, { templateNode: shared.node, templateId: shared.vmid, target: node });
  }
  return out;
}
