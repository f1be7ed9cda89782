/** Cluster state: nodes, containers (config + firewall options + power state), the pool. */
import { createHash, randomBytes } from "node:crypto";
import { die, paramError } from "./http.js";
import type { FwRule } from "./fw-rules.js";

export type Conf = Record<string, string | number>;

export interface Ct {
  vmid: number;
  node: string;
  conf: Conf;
  firewall: Conf;
  /** Firewall rules (…/firewall/rules), in order; clones copy them. */
  rules: FwRule[];
  status: "running" | "stopped";
  startedAt?: number;
  /** The LocalRuntime sandbox backing a running CT. */
  sandboxId?: string;
  address?: string;
  /** When eth0's IPv4 address becomes visible. */
  ipAt?: number;
  /** A start/stop in flight (guards double power operations). */
  busy?: boolean;
}

export interface Node {
  name: string;
  maxmem: number;
  maxcpu: number;
}

export const CONF_ORDER = ["arch", "cores", "description", "features", "hostname", "lock", "memory", "net0", "ostype", "rootfs", "swap", "tags", "template", "unprivileged"];

export interface Storage {
  id: string;
  type: string;
  shared: boolean;
}

export class Cluster {
  readonly cts = new Map<number, Ct>();
  readonly poolMembers = new Set<number>();
  readonly nodes: Node[];
  /** Every storage exists on every node; shared ones hold the same volumes everywhere. */
  readonly storages = new Map<string, Storage>([["local-lvm", { id: "local-lvm", type: "lvmthin", shared: false }]]);
  /** Datacenter firewall options (cluster.fw). */
  readonly firewall: Conf = { enable: 1 };
  constructor(nodes: string[], memMiB: number, cores: number, readonly pool: string) {
    this.nodes = nodes.map((name) => ({ name, maxmem: memMiB * 2 ** 20, maxcpu: cores }));
  }

  node(name: string): Node {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw die(`hostname lookup '${name}' failed - failed to get address info for: ${name}: Name or service not known`);
    return n;
  }

  /** The CT on that node, or the PVE not-found 500. */
  ct(node: string, vmid: number): Ct {
    const ct = this.cts.get(vmid);
    if (!ct || ct.node !== node) throw die(`Configuration file 'nodes/${node}/lxc/${vmid}.conf' does not exist`);
    return ct;
  }

  nextId(): number {
    let id = 100;
    while (this.cts.has(id)) id++;
    return id;
  }

  /** Fails while the CT holds any lock. */
  checkLock(ct: Ct): void {
    if (ct.conf.lock !== undefined) throw die(`CT is locked (${ct.conf.lock})`);
  }

  usedMem(node: string): number {
    let mem = 0;
    for (const ct of this.cts.values()) if (ct.node === node && ct.status === "running") mem += Number(ct.conf.memory) * 2 ** 20;
    return mem;
  }
}

/** The config file text PVE would write (description as comment lines), for the digest. */
export function confText(conf: Conf): string {
  const desc = conf.description !== undefined ? String(conf.description).split("\n").map((l) => `#${l}\n`).join("") : "";
  const keys = Object.keys(conf).filter((k) => k !== "description").sort();
  return desc + keys.map((k) => `${k}: ${conf[k]}\n`).join("");
}

export const digest = (conf: Conf) => createHash("sha1").update(confText(conf)).digest("hex");

const TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

/** Lowercased, sorted, deduplicated, joined by ";" — or 400 errors.tags. */
export function normaliseTags(tags: string): string {
  const list = tags.split(/[,;\s]+/).filter(Boolean).map((t) => t.toLowerCase());
  for (const t of list) if (!TAG.test(t)) throw paramError({ tags: "invalid format - invalid characters in tag" });
  return [...new Set(list)].sort().join(";");
}

export function randomMac(): string {
  return ["BC", "24", "11", ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, "0").toUpperCase())].join(":");
}

/** Parses "name=eth0,bridge=vmbr1,..." and writes it back normalised (name first, then alphabetical, hwaddr and type added). */
export function normaliseNet(value: string, hwaddr?: string): string {
  const kv = new Map<string, string>();
  for (const part of value.split(",")) {
    const i = part.indexOf("=");
    if (i <= 0) throw paramError({ net0: `invalid format - missing key in comma-separated list property` });
    kv.set(part.slice(0, i), part.slice(i + 1));
  }
  if (!kv.has("name")) throw paramError({ net0: "invalid format - missing property 'name'" });
  if (!kv.has("hwaddr")) kv.set("hwaddr", hwaddr ?? randomMac());
  kv.set("type", "veth");
  const name = kv.get("name")!;
  kv.delete("name");
  return [`name=${name}`, ...[...kv.keys()].sort().map((k) => `${k}=${kv.get(k)}`)].join(",");
}

export function netValue(net: string, key: string): string | undefined {
  for (const part of net.split(",")) if (part.startsWith(`${key}=`)) return part.slice(key.length + 1);
  return undefined;
}

/** Storage ids of a config's volumes (rootfs, mpN; bind mounts have none). */
export function volumeStorages(conf: Conf): string[] {
  return Object.entries(conf).filter(([k]) => k === "rootfs" || /^mp\d+$/.test(k))
    .map(([, v]) => /^([a-zA-Z][\w.-]*):/.exec(String(v))?.[1]).filter((s): s is string => s !== undefined);
}

export function diskGiB(rootfs: string): number {
  const m = /size=(\d+)([GMT]?)/.exec(rootfs);
  if (!m) return 8;
  const n = Number(m[1]);
  return m[2] === "M" ? Math.max(1, Math.ceil(n / 1024)) : m[2] === "T" ? n * 1024 : n;
}

/** The description PVE returns: its comment lines joined, with a trailing newline. */
export const descriptionOut = (d: string) => `${d.replace(/\n+$/, "")}\n`;
