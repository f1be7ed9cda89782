/**
 * ProxmoxProvider: sandboxes are LXC containers cloned from a template into a
 * pool on a Proxmox VE cluster. Only containers in the pool carrying sandboxd's
 * tag and description are ever listed, changed or destroyed.
 */
import { readFileSync } from "node:fs";
import { failedPrecondition, invalidArgument, notFound, unavailable } from "../../errors.js";
import { POOL_LABEL, type ClaimOptions, type CreateOptions, type SandboxHandle, type SandboxProvider, type SandboxSpec, type StoredLease } from "../provider.js";
import type { Logger } from "../local/options.js";
import { silentLogger } from "../local/options.js";
import { PveClient } from "./client.js";
import type { ProxmoxConfig } from "./config.js";
import { createSandbox, vmidOf, type CreateContext } from "./create.js";
import { MAX_DESCRIPTION, formatDescription, hasTag, parseDescription } from "./description.js";
import { configDigest } from "./config-digest.js";
import { toSandboxError } from "./errors.js";
import { egressPolicy } from "./firewall.js";
import { ctPath, destroyVm } from "./lifecycle.js";
import { Placement, freeMemory, type NodeFigures } from "./placement.js";
import { checkDatacenterFirewall, checkVersion } from "./preflight.js";
import { cloneSources, loadTemplates, type CloneSource } from "./templates.js";
import { PoolSweep, kindOf, type Member } from "./pool-sweep.js";
import { classify, pollMs, sleep } from "./retry.js";
import { validateLabels } from "../labels.js";
import { Allowlists } from "./allowlist.js";
import { readHandle } from "./handle.js";

export class ProxmoxProvider implements SandboxProvider {
  readonly name = "proxmox";
  private readonly client: PveClient;
  private readonly log: Logger;
  private placement: Placement;
  private privateKey = Buffer.alloc(0);
  /** node → where a create there clones from (set by start). */
  private sources = new Map<string, CloneSource>();
  private templateIds: Set<number>;
  /** The largest template root disk: no sandbox can have less (set by start). */
  minDiskGiB = 1;
  /** id → node, learnt from creates and listings (a cache; the pool is the truth). */
  private readonly nodes = new Map<string, string>();
  private readonly creating = new Set<string>();
  private readonly sweep: PoolSweep;
  private readonly allowlists: Allowlists;

  constructor(private readonly cfg: ProxmoxConfig, options: { logger?: Logger; client?: PveClient; egressDeny?: readonly string[] } = {}) {
    this.log = options.logger ?? silentLogger;
    this.client = options.client ?? new PveClient({ ...cfg, logger: this.log });
    this.allowlists = new Allowlists(this.client, this.log, options.egressDeny ?? []);
    this.placement = new Placement(cfg.nodes);
    this.templateIds = new Set([cfg.templateId, ...Object.values(cfg.templates)]);
    this.sweep = new PoolSweep({
      members: () => this.members(),
      config: (node, vmid) => this.config(node, vmid),
      destroy: (node, vmid) => destroyVm(this.client, node, vmid, Date.now() + 180_000),
      creating: this.creating, isTemplate: (vmid) => this.templateIds.has(vmid), tag: cfg.tag, createTimeoutMs: cfg.createTimeoutMs, log: this.log,
      located: (id, node) => this.nodes.set(id, node),
    });
  }

  async start(): Promise<void> {
    try {
      this.privateKey = readFileSync(this.cfg.sshKeyPath);
    } catch (e) {
      throw failedPrecondition(`SANDBOXD_SSH_KEY_PATH: cannot read ${this.cfg.sshKeyPath}: ${(e as Error).message}`);
    }
    if (this.cfg.hostKey) {
      this.log.warn({ setting: "SANDBOXD_PROXMOX_HOST_KEY" }, "every sandbox shares the template's SSH host key, so pinning cannot tell one sandbox from another: remove the template's host keys and unset SANDBOXD_PROXMOX_HOST_KEY to pin a key per sandbox (docs/proxmox.md §3)");
    }
    if (this.cfg.insecure) {
      this.log.warn({ setting: "SANDBOXD_PROXMOX_INSECURE" }, "TLS certificate verification of the Proxmox API is OFF: anyone on the path can read the API token; set SANDBOXD_PROXMOX_CA_FILE or SANDBOXD_PROXMOX_FINGERPRINT instead");
    }
    const deadline = Date.now() + 30_000;
    // An authenticated call first: a wrong token fails here, naming the settings.
    const version = await checkVersion(this.client, deadline).catch((e) => Promise.reject(toSandboxError(e, `connecting to Proxmox at ${this.cfg.url}`)));
    let members: Member[];
    try {
      members = await this.members(deadline);
    } catch (e) {
      if (classify(e) === "not_found") throw failedPrecondition(`SANDBOXD_PROXMOX_POOL: pool '${this.cfg.pool}' does not exist on Proxmox`);
      throw toSandboxError(e, `connecting to Proxmox at ${this.cfg.url}`);
    }
    const resources = await this.client.get<(NodeFigures & { type: string })[]>("/cluster/resources", { type: "node" }).catch(() => []);
    const known = resources.filter((r) => r.type === "node").map((r) => r.node);
    const missing = known.length ? this.cfg.nodes.filter((n) => !known.includes(n)) : [];
    if (missing.length) throw failedPrecondition(`SANDBOXD_PROXMOX_NODES: node(s) ${missing.join(", ")} not in the cluster (known: ${known.join(", ")})`);
    const templates = await loadTemplates({
      client: this.client, cfg: this.cfg, log: this.log,
      locate: async (vmid) => members.find((m) => m.vmid === vmid)?.node
        ?? (await this.client.get<{ vmid: number; node: string }[]>("/cluster/resources", { type: "vm" }).catch(() => [])).find((v) => Number(v.vmid) === vmid)?.node,
    });
    await checkDatacenterFirewall(this.client, this.cfg.datacenterFirewall, this.log, deadline).catch((e) => Promise.reject(toSandboxError(e, "checking the datacenter firewall")));
    this.sources = cloneSources(this.cfg.nodes, templates);
    const unplaced = this.cfg.nodes.filter((n) => !this.sources.has(n));
    if (this.sources.size === 0) {
      throw failedPrecondition(`SANDBOXD_PROXMOX_TEMPLATE_ID: no node of ${this.cfg.nodes.join(", ")} can clone the template (it is on local storage on another node): name a template per node as node=vmid pairs`);
    }
    if (unplaced.length) {
      this.log.warn({ nodes: unplaced }, "no template on these nodes and the template is on local storage, which Proxmox cannot clone across nodes: sandboxes are placed on the other nodes only (name a template per node as node=vmid in SANDBOXD_PROXMOX_TEMPLATE_ID)");
    }
    this.placement = new Placement([...this.sources.keys()]);
    this.templateIds = new Set(templates.map((t) => t.vmid));
    this.minDiskGiB = Math.max(...templates.map((t) => t.diskGiB));
    this.log.info({ url: this.cfg.url, version, pool: this.cfg.pool, nodes: [...this.sources.keys()], templates }, "proxmox provider ready");
  }

  async create(spec: SandboxSpec, options: CreateOptions = {}): Promise<SandboxHandle> {
    this.validate(spec);
    const signal = options.signal;
    if (signal?.aborted) throw toSandboxError(signal.reason, "create", signal);
    const figures = await this.client.get<NodeFigures[]>("/cluster/resources", { type: "node" }, { signal }).catch(() => [] as NodeFigures[]);
    const slot = this.placement.pick(freeMemory(figures, this.cfg.nodes), spec.memoryMiB * 2 ** 20);
    const source = this.sources.get(slot.node);
    if (!source) {
      slot.release();
      throw failedPrecondition("the proxmox provider is not started");
    }
    const ctx: CreateContext = { client: this.client, cfg: this.cfg, source, templateDiskGiB: this.minDiskGiB, log: this.log };
    let id: string | undefined;
    try {
      const stored = { lease: options.lease, request: options.request };
      const c = await createSandbox(ctx, slot.node, spec, stored, signal, (m) => {
        id = m.id;
        this.creating.add(m.id);
        this.nodes.set(m.id, m.node);
      });
      this.log.info({ id: c.id, node: c.node, vmid: c.vmid, address: c.address }, "proxmox sandbox created");
      const lease = c.lease;
      const request = options.request && { ...options.request };
      return { id: c.id, state: "running", spec, address: c.address, ssh: this.ssh(c.address, c.hostKey), createdAt: c.createdAt, ...(lease ? { lease } : {}), ...(request ? { request } : {}) };
    } catch (e) {
      if (id) this.nodes.delete(id);
      throw toSandboxError(e, `create on node ${slot.node}`, signal);
    } finally {
      slot.release();
      if (id) this.creating.delete(id);
    }
  }

  async destroy(id: string): Promise<void> {
    try {
      const found = await this.lookup(id);
      if (!found) return;
      await destroyVm(this.client, found.node, found.vmid, Date.now() + 180_000);
      this.nodes.delete(id);
      this.sweep.forget(found.vmid);
    } catch (e) {
      throw toSandboxError(e, `destroy ${id}`);
    }
  }

  async get(id: string): Promise<SandboxHandle | undefined> {
    try {
      const found = await this.lookup(id);
      return found && (await this.handle(id, found.node, found.vmid, found.conf));
    } catch (e) {
      throw toSandboxError(e, `get ${id}`);
    }
  }

  async list(): Promise<SandboxHandle[]> {
    try {
      const members = await this.members();
      const out = await Promise.all(members.filter((m) => !m.template && !this.templateIds.has(m.vmid)).map(async (m) => {
        const conf = await this.config(m.node, m.vmid);
        const found = conf && kindOf(m.vmid, conf, this.cfg.tag);
        if (!found || found.kind !== "ours") return undefined;
        this.nodes.set(found.id!, m.node);
        this.sweep.learn(m, found.id!, found.requestId);
        return this.handle(found.id!, m.node, m.vmid, conf).catch(() => undefined);
      }));
      return out.filter((h): h is SandboxHandle => h !== undefined);
    } catch (e) {
      throw toSandboxError(e, "list");
    }
  }

  async listIds(): Promise<string[]> {
    try {
      return await this.sweep.ids();
    } catch (e) {
      throw toSandboxError(e, "list ids");
    }
  }

  /**
   * Read, compare, write with the config digest: of two replicas writing at
   * once one gets "modified configuration" and reads again, so a later expiry
   * is never overwritten by an earlier one. Two calls per write.
   */
  async extendLease(id: string, lease: StoredLease): Promise<StoredLease> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.lookup(id).catch((e) => Promise.reject(toSandboxError(e, `lease of ${id}`)));
      const meta = found && parseDescription(found.conf.description as string);
      if (!found || !meta) throw notFound(`sandbox ${id} not found`);
      if (meta.lease && meta.lease.expiresAt >= lease.expiresAt) return meta.lease;
      try {
        await this.client.put(`${ctPath(found.node, found.vmid)}/config`, {
          description: formatDescription({ ...meta, lease }), digest: configDigest(found.conf, `lease of ${id}`),
        }, { deadline: Date.now() + 30_000 });
        return { ...lease };
      } catch (e) {
        if (classify(e) !== "conflict" || attempt >= 5) throw toSandboxError(e, `lease of ${id}`);
      }
    }
  }

  /**
   * A compare-and-swap on the config digest, as lease writes do: of two
   * replicas claiming one member, one write lands; the other gets "modified
   * configuration", reads again, finds no pool label and gets undefined.
   */
  async claim(id: string, o: ClaimOptions): Promise<SandboxHandle | undefined> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.lookup(id).catch((e) => Promise.reject(toSandboxError(e, `claim of ${id}`)));
      const meta = found && parseDescription(found.conf.description as string);
      if (!found || !meta || meta.spec.labels[POOL_LABEL] === undefined) return undefined;
      const { tenant: _member, ...rest } = meta.spec;
      const spec = { ...rest, labels: { ...o.labels }, internet: o.internet, ...(o.tenant ? { tenant: o.tenant } : {}) };
      const { request: _none, ...base } = meta;
      const claimed = { ...base, spec, lease: o.lease, createdAt: o.createdAt, ...(o.request ? { request: o.request } : {}) };
      try {
        await this.client.put(`${ctPath(found.node, found.vmid)}/config`, {
          description: formatDescription(claimed), digest: configDigest(found.conf, `claim of ${id}`),
        }, { deadline: Date.now() + 30_000 });
      } catch (e) {
        if (classify(e) !== "conflict" || attempt >= 5) throw toSandboxError(e, `claim of ${id}`);
        continue;
      }
      // Members are made with the egress policy of "no internet"; the claim's setting follows its write.
      if (o.internet) await this.setInternet(id, true);
      return this.get(id);
    }
  }

  /**
   * Before a create with a request id: one pool listing plus config reads of
   * containers the sweep has not seen (the sweep's cache is the index). A
   * create under way on another replica is waited for. Not covered: a create
   * still in its clone step, which Proxmox keeps out of the pool (invisible)
   * until the clone ends.
   */
  async findByRequest(requestId: string, signal?: AbortSignal): Promise<SandboxHandle | undefined> {
    const deadline = Date.now() + this.cfg.createTimeoutMs;
    for (let i = 0; ; i++) {
      const found = await this.sweep.byRequest(requestId).catch((e) => Promise.reject(toSandboxError(e, "looking up the request id", signal)));
      if (!found || this.creating.has(found.id)) return undefined;
      if (found.kind === "ours") {
        this.nodes.set(found.id, found.node);
        return this.get(found.id);
      }
      if (Date.now() > deadline) throw unavailable(`the create of sandbox ${found.id} for this request id (on another replica) did not finish in time`);
      await sleep(Math.min(1000, pollMs(i)), signal).catch(() => Promise.reject(toSandboxError(signal?.reason, "create", signal)));
    }
  }

  async readLease(id: string): Promise<StoredLease | null | undefined> {
    try {
      const found = await this.lookup(id);
      if (!found) return undefined;
      return parseDescription(found.conf.description as string)?.lease ?? null;
    } catch (e) {
      throw toSandboxError(e, `lease of ${id}`);
    }
  }

  async setInternet(id: string, enabled: boolean): Promise<void> {
    const found = await this.lookup(id).catch((e) => Promise.reject(toSandboxError(e, `set internet ${id}`)));
    if (!found) throw notFound(`sandbox ${id} not found`);
    try {
      await this.client.put(`${ctPath(found.node, found.vmid)}/firewall/options`, { enable: 1, policy_out: egressPolicy(enabled) }, { deadline: Date.now() + 60_000 });
    } catch (e) {
      throw toSandboxError(e, `set internet ${id}`);
    }
  }

  /** The allowlist as `OUT ACCEPT` rules above the egress group (allowlist.ts). */
  setEgressAllow(id: string, entries: readonly string[]): Promise<string[]> {
    return this.allowlists.set(id, entries, () => this.lookup(id));
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private validate(spec: SandboxSpec): void {
    if (!Number.isInteger(spec.cores) || spec.cores < 1 || spec.cores > 8192) throw invalidArgument("cores", "must be an integer from 1 to 8192");
    if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 16) throw invalidArgument("memory_mib", "must be an integer ≥ 16");
    if (!Number.isInteger(spec.diskGiB) || spec.diskGiB < 1) throw invalidArgument("disk_gib", "must be an integer ≥ 1");
    if (spec.diskGiB < this.minDiskGiB) throw invalidArgument("disk_gib", `must be at least ${this.minDiskGiB}: the template's root disk is ${this.minDiskGiB} GiB and a clone cannot shrink it`);
    validateLabels(spec.labels);
    // The largest description this spec can get: with a lease and a 128-character request id.
    const probe = formatDescription({
      id: "sbx-999999999-ffffffff", spec, createdAt: new Date(), lease: { expiresAt: Date.now(), ttlMs: 2 ** 40 },
      request: { id: "\u0001".repeat(128), fingerprint: "f".repeat(43) }, address: "255.255.255.255", hostKey: `ssh-ed25519 ${"A".repeat(68)}`,
    });
    if (probe.length > MAX_DESCRIPTION) throw invalidArgument("labels", `too large: Proxmox descriptions hold at most ${MAX_DESCRIPTION} characters`);
  }

  private ssh(address: string, hostKey: string | undefined) {
    return { host: address, port: 22, username: this.cfg.sshUser, privateKey: this.privateKey, hostKey: hostKey ?? this.cfg.hostKey ?? "" };
  }

  private async members(deadline?: number): Promise<Member[]> {
    const pools = await this.client.get<{ members?: Member[] }[]>("/pools", { poolid: this.cfg.pool, type: "lxc" }, { deadline });
    return (pools[0]?.members ?? []).filter((m) => m.type === undefined || m.type === "lxc");
  }

  /** A CT's config, or undefined when it is gone or outside our reach. */
  private async config(node: string, vmid: number): Promise<Record<string, unknown> | undefined> {
    try {
      return await this.client.get<Record<string, unknown>>(`${ctPath(node, vmid)}/config`);
    } catch (e) {
      if (["not_found", "permission"].includes(classify(e))) return undefined;
      throw e;
    }
  }

  /** Finds the CT behind an id and checks it is ours: pool member, our tag, our description with this id. */
  private async lookup(id: string): Promise<{ node: string; vmid: number; conf: Record<string, unknown> } | undefined> {
    const vmid = vmidOf(id);
    if (vmid === undefined) return undefined;
    let node = this.nodes.get(id);
    if (!node) {
      node = (await this.members()).find((m) => m.vmid === vmid)?.node;
      if (!node) return undefined;
    }
    const conf = await this.config(node, vmid);
    if (!conf) return undefined;
    const ours = !conf.template && hasTag(conf.tags as string, this.cfg.tag) && parseDescription(conf.description as string)?.id === id;
    const mid = this.creating.has(id) && conf.hostname === id;
    return ours || mid ? { node, vmid, conf } : undefined;
  }

  private handle(id: string, node: string, vmid: number, conf: Record<string, unknown>): Promise<SandboxHandle> {
    return readHandle({ client: this.client, log: this.log, creating: this.creating, ssh: (a, k) => this.ssh(a, k) }, id, node, vmid, conf);
  }
}
