/**
 * Test-only "paper" containers: running CTs that exist in the cluster state
 * and the pool but have no LocalRuntime sandbox behind them, so a benchmark
 * can hold a thousand sandboxes on a 2-core machine. Every read (config,
 * status, interfaces, firewall), config write, stop and destroy works on them
 * as on any CT; the power and firewall routes only touch the runtime when
 * `ct.sandboxId` is set. Their address is made up: nothing listens there, so a
 * client must never connect to it (no Exec, Upload or Download on them).
 */
import { normaliseNet, normaliseTags, randomMac, type Cluster, type Conf, type Ct } from "./cluster.js";

/** The per-CT config a caller supplies (hostname, description, tags, ...), over a clone of the template's. */
export type PaperConf = Conf;

/**
 * Made-up eth0 addresses in 198.19.0.0/16: the benchmarking block (RFC 2544),
 * but outside 198.18.0.0/16, the local runtime's default subnet, so a paper
 * address can never be a real sandbox's on the same host.
 */
export function paperAddress(vmid: number): string {
  const host = vmid % (254 * 256);
  return `198.19.${Math.floor(host / 254)}.${(host % 254) + 1}`;
}

export interface PaperOptions {
  cluster: Cluster;
  templateId: number;
  /** Node the CTs live on; default the template's. */
  node?: string;
}

/**
 * Adds `n` running paper CTs with the next free vmids; `make(vmid)` gives
 * each one's config keys (it wins over the template's). Returns the vmids.
 */
export function addPaperContainers(o: PaperOptions, n: number, make: (vmid: number) => PaperConf): number[] {
  const { cluster } = o;
  const template = cluster.cts.get(o.templateId);
  if (!template) throw new Error(`template CT ${o.templateId} not found`);
  const node = o.node ?? template.node;
  cluster.node(node);
  const vmids: number[] = [];
  for (let i = 0; i < n; i++) {
    const vmid = cluster.nextId();
    // What a finished clone + start would leave: template keys minus the template flag, own disk and MAC.
    const conf: Conf = { ...template.conf };
    delete conf.template;
    delete conf.lock;
    conf.rootfs = String(template.conf.rootfs ?? "").replace(/(base|vm)-\d+-disk-0/, `vm-${vmid}-disk-0`);
    if (conf.net0) conf.net0 = normaliseNet(String(conf.net0).replace(/hwaddr=[0-9A-Fa-f:]+/, `hwaddr=${randomMac()}`));
    for (const [k, v] of Object.entries(make(vmid))) conf[k] = v;
    if (conf.tags !== undefined) conf.tags = normaliseTags(String(conf.tags));
    if (conf.description !== undefined) conf.description = String(conf.description).replace(/\n+$/, ""); // as a PUT stores it
    const ct: Ct = {
      vmid, node, conf, firewall: { ...template.firewall }, rules: template.rules.map((r) => ({ ...r })), status: "running", startedAt: Date.now(),
      sandboxId: undefined, address: paperAddress(vmid), ipAt: 0,
    };
    cluster.cts.set(vmid, ct);
    cluster.poolMembers.add(vmid);
    vmids.push(vmid);
  }
  return vmids;
}
