/** Options of the Proxmox VE emulator and their defaults. */
import type { Logger } from "../../server/providers/local/options.js";

export interface Timing {
  /** Duration of a full clone's worker. Default 5000. */
  cloneMs: number;
  /** Minimum duration of a start task (the sandbox build counts towards it). Default 1000. */
  startMs: number;
  /** Delay after a start until eth0 has its IPv4 address. Default 1500. */
  ipDelayMs: number;
  /** Duration of stop/shutdown tasks (plus the sandbox teardown). Default 300. */
  stopMs: number;
  /** Duration of a destroy task. Default 300. */
  destroyMs: number;
  /** Delay before a bad-token 401. Default 3000 (as pveproxy). */
  authFailDelayMs: number;
}

export interface FaultOptions {
  /** Added to every request, in ms. */
  latencyMs: number;
  /** Share of requests (0..1) answered with `errorStatus` before anything else. */
  errorRate: number;
  /** 596 ("Connection timed out", default) or any ≥500 status. */
  errorStatus: number;
  /** Share of requests whose socket is destroyed without an answer. */
  dropRate: number;
  /** Share of tasks (clone, start, stop, shutdown, destroy) that end in an error exitstatus. */
  taskFailRate: number;
  /** Share of config-locking calls that fail with "can't lock file ... got timeout". */
  lockTimeoutRate: number;
}

export interface TemplateOptions {
  vmid: number;
  hostname: string;
  cores: number;
  memory: number;
  swap: number;
  diskGiB: number;
  tags: string;
  description: string;
  /** Whether the template is a member of the pool (the seed's `pct create --pool`). Default true. */
  inPool: boolean;
  /**
   * The template's firewall policy_out (enable=1); clones copy it. Default "REJECT": no internet.
   * Not faithful: DROP and REJECT both cut egress the local runtime's way, which refuses (a reset) and never drops.
   */
  policyOut: "ACCEPT" | "DROP" | "REJECT";
  /** The template's firewall policy_in; clones copy it. Default "DROP" (only the rules let in; the runtime lets the host reach sshd). */
  policyIn: "ACCEPT" | "DROP" | "REJECT";
  /**
   * Whether the template's firewall rules start with `GROUP sandboxd-egress`
   * (enabled), followed by `IN ACCEPT -p tcp -dport 22`; clones copy them.
   * Default true; false leaves the group out (sandboxd refuses such a template).
   */
  egressGroup: boolean;
  /** Default true; false makes a privileged template (sandboxd refuses it). */
  unprivileged: boolean;
  /** The `features` config value ("" for none, e.g. "nesting=1"). */
  features: string;
  /** The storage of its root disk. Default { id: "local-lvm", shared: false }. */
  storage: StorageOptions;
  /** A copy of the template on every node (vmid + node index), as on a cluster with local storage. Default false. */
  perNode: boolean;
}

export interface StorageOptions {
  id: string;
  /** Shared storage (Ceph, NFS): containers on it may be cloned to another node with `target`. */
  shared: boolean;
}

export interface EmulatorOptions {
  host?: string;
  /** 0 picks a free port. Default 8006. */
  port?: number;
  /** Where connection.json, the TLS files, the SSH key and the runtime state go. Default a temp dir. */
  stateDir?: string;
  /** Number of nodes ("pve" for one, "pve1".."pveN" for more) or their names. Default 1. */
  nodes?: number | string[];
  /** Memory of each node in MiB (for /cluster/resources). Default 65536. */
  nodeMemoryMiB?: number;
  nodeCores?: number;
  pool?: string;
  bridge?: string;
  /** user@realm!tokenid. Default "sandbox@pve!sandboxd". */
  tokenId?: string;
  /** Default a random UUID. */
  secret?: string;
  /** Privileges the token holds on /pool/<pool> (hence on its members). */
  privileges?: string[];
  template?: Partial<TemplateOptions>;
  timing?: Partial<Timing>;
  faults?: Partial<FaultOptions>;
  /** LocalRuntime instance name. Default "pve-emu". */
  instance?: string;
  /** LocalRuntime subnet. Default "198.18.180.0/24". */
  subnet?: string;
  /** One SSH host key for every CT (a template that kept its host keys). Default false: a key per CT, as sshd makes at first boot. */
  sharedHostKey?: boolean;
  /** Largest sandbox disk in GiB. Default 16. */
  maxDiskGiB?: number;
  /** Processes each CT's sandbox may run (its pids cap). Default: the local runtime's. */
  pidsMax?: number;
  /** What GET /version reports. Default "9.1.3" (the version of the schema extract in test/pve-schema). */
  version?: string;
  /** Whether the datacenter firewall is on (GET /cluster/firewall/options enable). Default true. */
  datacenterFirewall?: boolean;
  /**
   * Pool member fields: "all" (what PVE 8/9 send: the resource's status, name,
   * template...) or "declared" (only what the schema promises: id, node, type, vmid). Default "all".
   */
  poolMemberFields?: "all" | "declared";
  /** Privileges on / (Sys.Audit reads the datacenter firewall options). Default ["Sys.Audit"]. */
  rootPrivileges?: string[];
  logger?: Logger;
}

export const DEFAULT_PRIVILEGES = [
  "VM.Allocate", "VM.Clone", "VM.Audit", "VM.PowerMgmt", "VM.Console", "VM.Config.CPU", "VM.Config.Memory",
  "VM.Config.Network", "VM.Config.Options", "VM.Config.Disk", "VM.Snapshot", "Datastore.AllocateSpace",
  "Datastore.Audit", "Pool.Audit", "SDN.Use",
];

export const DEFAULT_TIMING: Timing = {
  cloneMs: 5000, startMs: 1000, ipDelayMs: 1500, stopMs: 300, destroyMs: 300, authFailDelayMs: 3000,
};

export const NO_FAULTS: FaultOptions = {
  latencyMs: 0, errorRate: 0, errorStatus: 596, dropRate: 0, taskFailRate: 0, lockTimeoutRate: 0,
};

export const DEFAULT_TEMPLATE: TemplateOptions = {
  vmid: 9000, hostname: "sandbox-template", cores: 1, memory: 1024, swap: 0, diskGiB: 1, tags: "",
  description: "sandbox template", inPool: true, policyOut: "REJECT", policyIn: "DROP", egressGroup: true, unprivileged: true, features: "",
  storage: { id: "local-lvm", shared: false }, perNode: false,
};

export function nodeNames(nodes: number | string[] | undefined): string[] {
  if (Array.isArray(nodes)) return nodes;
  const n = nodes ?? 1;
  return n === 1 ? ["pve"] : Array.from({ length: n }, (_, i) => `pve${i + 1}`);
}
