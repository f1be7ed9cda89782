/**
 * A Proxmox VE 8 API emulator backed by real local sandboxes: startEmulator()
 * serves /api2/json over HTTPS and writes connection.json for sandboxd.
 */
import { randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import type { AddressInfo } from "node:net";
import { generateEd25519 } from "../../server/providers/local/keys.js";
import { silentLogger } from "../../server/providers/local/options.js";
import { Acl } from "./auth.js";
import { Cluster, normaliseNet, normaliseTags, type Ct } from "./cluster.js";
import type { Emu } from "./context.js";
import { Faults } from "./faults.js";
import { templateRules } from "./fw-rules.js";
import { addPaperContainers, type PaperConf } from "./paper.js";
import { RequestCounter, type RequestCounts } from "./request-counter.js";
import { DEFAULT_PRIVILEGES, DEFAULT_TEMPLATE, DEFAULT_TIMING, nodeNames, type EmulatorOptions, type FaultOptions, type Timing } from "./options.js";
import { Sandboxes } from "./sandboxes.js";
import { createServer, type Rejected } from "./server.js";
import { Tasks } from "./tasks.js";
import { ensureCertificate } from "./tls.js";

export type { EmulatorOptions, FaultOptions, Timing } from "./options.js";
export type { PaperConf } from "./paper.js";
export type { Rejected } from "./server.js";
export { countsBetween, type RequestCounts } from "./request-counter.js";
export { proxmoxConfigOf, proxmoxEnvOf } from "./sandboxd-settings.js";

/** Everything sandboxd needs to connect (connection.json). */
export interface Connection {
  /** https://host:port — the API is under /api2/json. */
  url: string;
  /** PEM of the self-signed certificate (its own CA). */
  caFile: string;
  /** SHA-256 fingerprint of that certificate. */
  fingerprint: string;
  tokenId: string;
  secret: string;
  nodes: string[];
  templateId: number;
  /** node → template vmid when the template is copied to every node (local storage); else empty. */
  templates: Record<string, number>;
  pool: string;
  bridge: string;
  /** Private key the template's sandbox user authorises. */
  sshKeyPath: string;
  sshUser: string;
  /**
   * With `sharedHostKey`, the template's SSH host public key line that every
   * clone shares. Else undefined: like a template without host keys, each
   * clone's sshd has its own (sandboxd learns it at create).
   */
  hostKey?: string;
}

export interface Emulator {
  url: string;
  connection: Connection;
  /** The connection.json path. */
  connectionFile: string;
  /** Merges into the current faults (`reset` starts from none). */
  setFaults(faults: Partial<FaultOptions>, reset?: boolean): void;
  setTiming(timing: Partial<Timing>): void;
  /** Every CT by vmid (live objects). */
  containers(): Ct[];
  /**
   * Test-only: adds `n` running CTs to the pool with no sandbox behind them
   * (see paper.ts), `make(vmid)` giving each one's hostname, description,
   * tags. Their made-up address must never be connected to. Returns the vmids.
   */
  addPaperContainers(n: number, make: (vmid: number) => PaperConf): number[];
  /** API requests received so far, in total and per route (see request-counter.ts). */
  requestCount(): RequestCounts;
  /**
   * Requests Proxmox would refuse: parameters failing PVE's published schema
   * (400) or a route PVE does not have (501). A client test asserts this stays
   * empty, since a client may swallow the error.
   */
  rejectedRequests(): Rejected[];
  emu: Emu;
  sandboxes: Sandboxes;
  /** Stops serving, waits for running tasks, destroys every sandbox and purges the runtime. */
  close(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? "127.0.0.1";
  const tempDir = options.stateDir ? undefined : await fs.mkdtemp(`${os.tmpdir()}/pve-emu-`);
  const stateDir = options.stateDir ?? tempDir!;
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const tls = await ensureCertificate(stateDir, host);
  const clientKey = generateEd25519();
  const hostKey = options.sharedHostKey ? generateEd25519() : undefined;
  const sshKeyPath = `${stateDir}/id_ed25519`;
  await fs.writeFile(sshKeyPath, clientKey.privateKey, { mode: 0o600 });
  await fs.writeFile(`${sshKeyPath}.pub`, `${clientKey.publicKey}\n`);
  const pool = options.pool ?? "sandbox-pool";
  const bridge = options.bridge ?? "vmbr1";
  const tokenId = options.tokenId ?? "sandbox@pve!sandboxd";
  const secret = options.secret ?? randomUUID();
  const nodes = nodeNames(options.nodes);
  const log = options.logger ?? silentLogger;
  const sandboxes = new Sandboxes({
    instance: options.instance ?? "pve-emu", subnet: options.subnet ?? "198.18.180.0/24", stateDir: `${stateDir}/runtime`,
    clientKey, hostKey, limits: { maxDiskGiB: options.maxDiskGiB ?? 16 }, logger: log, ...(options.pidsMax ? { pidsMax: options.pidsMax } : {}),
  });
  const cluster = new Cluster(nodes, options.nodeMemoryMiB ?? 65536, options.nodeCores ?? 16, pool);
  const t = { ...DEFAULT_TEMPLATE, ...options.template };
  if (!cluster.storages.has(t.storage.id)) cluster.storages.set(t.storage.id, { id: t.storage.id, type: t.storage.shared ? "rbd" : "dir", shared: t.storage.shared });
  if (!(options.datacenterFirewall ?? true)) cluster.firewall.enable = 0;
  const templates: Record<string, number> = {};
  for (const [i, node] of (t.perNode ? nodes : [nodes[0]!]).entries()) {
    const vmid = t.vmid + i;
    if (t.perNode) templates[node] = vmid;
    cluster.cts.set(vmid, {
      vmid, node, status: "stopped",
      conf: {
        arch: "amd64", cores: t.cores, description: t.description, hostname: t.hostname, memory: t.memory,
        net0: normaliseNet(`name=eth0,bridge=${bridge},firewall=1,ip=dhcp`), ostype: "ubuntu",
        rootfs: `${t.storage.id}:base-${vmid}-disk-0,size=${t.diskGiB}G`, swap: t.swap, template: 1, unprivileged: t.unprivileged ? 1 : 0,
        ...(t.features ? { features: t.features } : {}), ...(t.tags ? { tags: normaliseTags(t.tags) } : {}),
      },
      firewall: { enable: 1, policy_in: t.policyIn, policy_out: t.policyOut }, rules: templateRules(t.egressGroup),
    });
    if (t.inPool) cluster.poolMembers.add(vmid);
  }
  const timing: Timing = { ...DEFAULT_TIMING, ...options.timing };
  const emu: Emu = {
    cluster, tasks: new Tasks(), faults: new Faults(options.faults), timing, sandboxes, pool,
    acl: new Acl(pool, new Set(options.privileges ?? DEFAULT_PRIVILEGES), cluster.poolMembers, new Set(options.rootPrivileges ?? ["Sys.Audit"])),
    version: options.version ?? "9.1.3", poolMemberFields: options.poolMemberFields ?? "all",
  };
  const counter = new RequestCounter();
  const rejected: Rejected[] = [];
  const server = createServer({ emu, token: { id: tokenId, secret }, authFailDelayMs: () => timing.authFailDelayMs, log: (o, m) => log.debug(o, m), counter, rejected }, tls);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8006, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const connection: Connection = {
    url, caFile: tls.certFile, fingerprint: tls.fingerprint, tokenId, secret, nodes, templateId: t.vmid, templates, pool, bridge,
    sshKeyPath, sshUser: "sandbox", hostKey: hostKey?.publicKey,
  };
  const connectionFile = `${stateDir}/connection.json`;
  await fs.writeFile(connectionFile, `${JSON.stringify(connection, null, 2)}\n`, { mode: 0o600 });
  log.info({ url, nodes, pool, templateId: t.vmid }, "pve emulator listening");
  let closing: Promise<void> | undefined;
  return {
    url, connection, connectionFile, emu, sandboxes,
    setFaults: (f, reset) => emu.faults.set(f, reset),
    setTiming: (x) => Object.assign(timing, x),
    containers: () => [...cluster.cts.values()],
    addPaperContainers: (n, make) => addPaperContainers({ cluster, templateId: t.vmid }, n, make),
    requestCount: () => counter.snapshot(),
    rejectedRequests: () => [...rejected],
    close: () => (closing ??= (async () => {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await Promise.allSettled(emu.tasks.all().map((task) => task.done));
      await sandboxes.purge();
      if (tempDir) await fs.rm(tempDir, { recursive: true, force: true });
    })()),
  };
}
