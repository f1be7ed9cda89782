/**
 * LocalRuntime: sandboxes on this host made of a network namespace, a
 * bubblewrap jail with sshd inside, cgroups, an ext4 disk image and one
 * nftables table. See names.ts for what every host object is called.
 */
import type { ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import { cancelled, failedPrecondition, internal, invalidArgument, isSandboxError, notFound, resourceExhausted, unavailable } from "../../errors.js";
import { DEFAULT_EGRESS_POLICY, EgressSyntaxError, checkEgressAllow, formatEgressEntry, parseEgressEntry, type EgressEntry } from "../egress.js";
import { POOL_LABEL, type ClaimOptions, type CreateOptions, type SandboxHandle, type SandboxProvider, type SandboxSpec, type SandboxState, type StoredLease } from "../provider.js";
import { AddressPool, parseSubnet, type Subnet } from "./addresses.js";
import { Cgroups, detectCgroups } from "./cgroups.js";
import { Firewall, readHostFacts } from "./firewall.js";
import { keepUidRange, releaseUidRangesOf } from "./uids.js";
import { prepareJailRoot, systemDirArgs, type JailRoot } from "./jail-root.js";
import { IsolationMonitor } from "./isolation.js";
import { jailCaps } from "./jail.js";
import { loadOrCreateClientKey, type KeyPair } from "./keys.js";
import { buildSandbox, teardownSandbox, type Build, type Parts } from "./lifecycle.js";
import { Names, newSandboxId } from "./names.js";
import { Network } from "./network.js";
import { resolveLimits, silentLogger, type LocalRuntimeOptions, type Logger } from "./options.js";
import { reconcile } from "./recovery.js";
import { admit, allocatedBytes, defaultTotals, freeBytes, type Totals } from "./admission.js";
import { validateSpec, type Limits } from "./spec.js";
import { StateStore, lockInstance, unlockInstance, type SandboxRecord } from "./state.js";

interface Entry {
  id: string;
  state: SandboxState;
  spec: SandboxSpec;
  address: string;
  createdAt: Date;
  record: SandboxRecord;
  abort: AbortController;
  child?: ChildProcess;
  creating?: Promise<void>;
  destroying?: Promise<void>;
  /** Serialises firewall updates (internet, allowlist); each applies the entry's current settings. */
  internet: Promise<void>;
  /** Serialises state file writes (they share one temp file). */
  writing?: Promise<void>;
}

export class LocalRuntime implements SandboxProvider {
  readonly name = "local";
  readonly instance: string;
  readonly stateDir: string;
  readonly names: Names;
  readonly subnet: Subnet;
  readonly limits: Limits;
  readonly firewall: Firewall;
  private readonly network: Network;
  private readonly store: StateStore;
  private readonly pool: AddressPool;
  private readonly pidsMax: number;
  private readonly totalsOption?: Partial<Totals>;
  /** All sandboxes together (set by start). */
  totals?: Totals;
  private readonly log: Logger;
  private readonly fixedClientKey?: KeyPair;
  private readonly fixedHostKey?: KeyPair;
  private readonly entries = new Map<string, Entry>();
  private readonly isolation: IsolationMonitor;
  private readonly egressDeny: string[];
  private cgroupsOrUndefined?: Cgroups;
  private jailRoot?: JailRoot & { systemDirs: string[]; caps: string[] };
  private clientKey?: KeyPair;
  private starting?: Promise<void>;
  private closed = false;
  /** Set once start-up reconciliation is over: creating earlier could hand out an address an adoptee still holds. */
  private ready = false;

  constructor(options: LocalRuntimeOptions = {}) {
    this.instance = options.instance ?? "sandboxd";
    this.names = new Names(this.instance, options.bridge);
    this.subnet = parseSubnet(options.subnet ?? "198.18.0.0/16");
    this.stateDir = options.stateDir ?? `/var/lib/sandboxd/${this.instance}`;
    this.pidsMax = options.pidsMax ?? 1024;
    this.totalsOption = options.totals;
    this.log = options.logger ?? silentLogger;
    this.pool = new AddressPool(this.subnet);
    this.limits = resolveLimits(options.limits, this.pool.capacity);
    this.network = new Network(this.names, this.subnet);
    const resolvConf = options.resolvConf;
    const policy = { ...DEFAULT_EGRESS_POLICY, ...options.egress };
    this.egressDeny = [...policy.deny];
    this.firewall = new Firewall({
      table: this.names.table, bridge: this.names.bridge, subnet: this.subnet.cidr, gateway: this.subnet.gateway,
      policy, readFacts: () => readHostFacts(resolvConf), log: this.log,
    });
    this.isolation = new IsolationMonitor({
      firewall: this.firewall, network: this.network, sandboxIds: () => [...this.entries.keys()], log: this.log,
      intervalMs: options.isolationCheckIntervalMs ?? 2000,
    });
    this.store = new StateStore(this.stateDir);
    const pair = (k?: { privateKey: Buffer | string; publicKey: string }): KeyPair | undefined =>
      k && { privateKey: k.privateKey.toString(), publicKey: k.publicKey.trim() };
    this.fixedClientKey = pair(options.clientKey);
    this.fixedHostKey = pair(options.hostKey);
  }

  /** The cgroup layout in use (after start). */
  get cgroups(): Cgroups {
    if (!this.cgroupsOrUndefined) throw failedPrecondition("local runtime not started");
    return this.cgroupsOrUndefined;
  }

  start(): Promise<void> {
    this.starting ??= this.doStart().catch(async (e) => {
      this.starting = undefined;
      await unlockInstance(this.stateDir).catch(() => {});
      throw isSandboxError(e) ? e : unavailable(`local runtime cannot start: ${(e as Error).message}`, e);
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (process.getuid?.() !== 0) throw failedPrecondition("the local runtime needs root");
    this.cgroupsOrUndefined = new Cgroups(await detectCgroups(), this.instance, this.pidsMax);
    await fs.mkdir(this.store.root, { recursive: true, mode: 0o711 });
    // Nothing here is readable but by root (images, keys, records); directories are searchable
    // only so that bwrap, run as a sandbox's own root uid, reaches that sandbox's ssh dir and disk.
    await fs.chmod(this.stateDir, 0o711);
    await fs.chmod(this.store.root, 0o711);
    await lockInstance(this.stateDir);
    this.clientKey = this.fixedClientKey ?? (await loadOrCreateClientKey(this.stateDir));
    this.jailRoot = { ...(await prepareJailRoot(this.stateDir)), systemDirs: await systemDirArgs(), caps: await jailCaps() };
    await this.cgroups.prepareInstance();
    this.totals = await defaultTotals(this.stateDir, this.totalsOption);
    await this.cgroups.limitInstance(this.totals.totalMemoryMiB, this.totals.totalPids);
    await this.network.ensureBridge();
    // The table first, keeping the egress of sandboxes that may be adopted; teardown of the others removes their elements.
    const records = await Promise.all((await this.store.listIds()).map((id) => this.store.read(id)));
    for (const r of records) if (r?.complete) this.firewall.register(r.address, { internet: r.spec.internet, allow: storedAllow(r.egressAllow) });
    await this.firewall.install();
    const { adopted, removed } = await reconcile({
      store: this.store,
      cgroups: this.cgroups,
      network: this.network,
      claimAddress: (a) => this.pool.take(a),
      teardown: (id, rec) => this.teardown(id, rec?.address),
      adopt: true,
    });
    for (const rec of adopted) {
      if (rec.uidBase !== undefined) await keepUidRange(rec.uidBase, { stateDir: this.stateDir, id: rec.id });
      this.entries.set(rec.id, {
        id: rec.id, state: "running", spec: rec.spec, address: rec.address, createdAt: new Date(rec.createdAt),
        record: rec, abort: new AbortController(), internet: Promise.resolve(),
      });
    }
    // Guards as this configuration wants them (sandboxes of an older sandboxd get theirs now).
    await Promise.all(adopted.map((rec) => this.firewall.attach(rec.address, this.network.netnsPath(rec.id))));
    this.isolation.start();
    this.ready = true;
    this.log.info({ instance: this.instance, adopted: adopted.map((r) => r.id), removed, cgroup: this.cgroups.layout.version }, "local runtime started");
  }

  private assertReady(): void {
    if (this.closed) throw unavailable("local runtime is closed");
    if (!this.ready) throw failedPrecondition("local runtime not started");
  }

  async create(spec: SandboxSpec, options: CreateOptions = {}): Promise<SandboxHandle> {
    this.assertReady();
    if (options.signal?.aborted) throw cancelled("create cancelled before it started");
    const valid = validateSpec(spec, this.limits);
    const allocated = new Map(await Promise.all([...this.entries.keys()].map(async (id) => [id, await allocatedBytes(`${this.store.dir(id)}/disk.img`)] as const)));
    const free = await freeBytes(this.stateDir);
    // From here to entries.set nothing awaits: concurrent creates see each other.
    if (options.signal?.aborted) throw cancelled("create cancelled before it started");
    if (this.entries.size >= this.limits.maxSandboxes) throw resourceExhausted(`at most ${this.limits.maxSandboxes} sandboxes (SANDBOXD_LOCAL_MAX_SANDBOXES)`);
    admit(valid, [...this.entries.values()].map((e) => ({ spec: e.spec, allocatedBytes: allocated.get(e.id) })), this.totals!, free, this.cgroups.pidsPerSandbox);
    const address = this.pool.allocate();
    if (!address) throw resourceExhausted(`no free address in ${this.subnet.cidr}`);
    let id = newSandboxId();
    while (this.entries.has(id)) id = newSandboxId();
    const createdAt = new Date();
    const entry: Entry = {
      id, state: "creating", spec: valid, address, createdAt, abort: new AbortController(), internet: Promise.resolve(),
      record: {
        version: 1, id, spec: valid, address, netns: this.names.netns(id), veth: this.names.veth(id),
        hostKey: "", createdAt: createdAt.toISOString(), complete: false,
        ...(options.lease ? { lease: { ...options.lease } } : {}),
        ...(options.request ? { request: { ...options.request } } : {}),
      },
    };
    this.entries.set(id, entry);
    this.firewall.register(address, { internet: valid.internet, allow: [] });
    const onAbort = () => entry.abort.abort(cancelled(`create of ${id} cancelled`));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const t0 = performance.now();
    entry.creating = this.build(entry);
    entry.creating.catch(() => {}); // awaited below, after the isolation check
    // Alongside the build (its namespace gets its own guard first): no create succeeds while the host
    // firewall is found incomplete (by a look at most a second old); the check restores it and the create is undone.
    const isolation = this.isolation.checkHost();
    try {
      const iso = await isolation;
      if (iso.problem || !iso.healthy) {
        throw unavailable(`sandbox isolation was incomplete (${iso.problem ?? "restoring"}); ${iso.healthy ? "it has been restored: retry" : "it is being restored: retry later"}`);
      }
      await entry.creating;
      if (entry.state === "destroying") throw cancelled(`sandbox ${id} was destroyed while being created`);
      entry.state = "running";
      this.log.info({ id, address, ms: Math.round(performance.now() - t0) }, "sandbox created");
      return this.handle(entry);
    } catch (e) {
      // Read before cleaning up: destroy() aborts the entry too.
      const aborted = entry.abort.signal.aborted;
      if (!entry.destroying) await this.destroy(id).catch((err) => this.log.error({ id, err }, "cleanup of failed create"));
      else await entry.destroying.catch(() => {});
      if (aborted) throw cancelled(`create of ${id} cancelled`);
      this.log.error({ id, err: e }, "create failed");
      throw isSandboxError(e) ? e : internal(`create ${id}: ${(e as Error).message}`, e);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  private async build(entry: Entry): Promise<void> {
    const build: Build = {
      id: entry.id, address: entry.address, spec: entry.spec, record: entry.record, signal: entry.abort.signal,
      attachFirewall: () => this.firewall.attach(entry.address, this.network.netnsPath(entry.id), true),
    };
    try {
      await buildSandbox(this.parts, build);
    } finally {
      entry.child = build.child;
    }
    entry.record.complete = true;
    // The TTL counts from when the sandbox is ready: restarted by the write that completes it.
    const lease = entry.record.lease;
    if (lease) entry.record.lease = { expiresAt: Date.now() + lease.ttlMs, ttlMs: lease.ttlMs };
    await this.persist(entry);
  }

  private persist(entry: Entry): Promise<void> {
    const write = async () => {
      entry.record.spec = { ...entry.spec, labels: { ...entry.spec.labels } };
      await this.store.write(entry.record);
    };
    const p = (entry.writing ?? Promise.resolve()).catch(() => {}).then(write);
    entry.writing = p;
    return p;
  }

  private syncInternet(entry: Entry): Promise<void> {
    entry.internet = entry.internet.catch(() => {}).then(() => this.firewall.setInternet(entry.address, entry.spec.internet));
    return entry.internet;
  }

  private get parts(): Parts {
    return {
      stateDir: this.stateDir, store: this.store, network: this.network,
      cgroups: this.cgroups, firewall: this.firewall, jail: this.jailRoot!, clientPublicKey: this.clientKey!.publicKey,
      hostKey: this.fixedHostKey,
    };
  }

  private teardown(id: string, address: string | undefined): Promise<void> {
    return teardownSandbox(this.parts, id, address);
  }

  async destroy(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    if (!entry.destroying) {
      entry.state = "destroying";
      entry.abort.abort(cancelled(`sandbox ${id} is being destroyed`));
      entry.destroying = (async () => {
        await entry.creating?.catch(() => {});
        await entry.internet.catch(() => {});
        entry.child?.kill("SIGKILL");
        await this.teardown(id, entry.address);
        this.entries.delete(id);
        this.pool.release(entry.address);
        this.log.info({ id }, "sandbox destroyed");
      })().catch((e) => {
        entry.destroying = undefined;
        throw internal(`destroy ${id}: ${(e as Error).message}`, e);
      });
    }
    return entry.destroying;
  }

  async get(id: string): Promise<SandboxHandle | undefined> {
    const entry = this.entries.get(id);
    return entry && this.handle(entry);
  }

  async list(): Promise<SandboxHandle[]> {
    return [...this.entries.values()].map((e) => this.handle(e));
  }

  async listIds(): Promise<string[]> {
    return [...this.entries.values()].filter((e) => e.state === "running").map((e) => e.id);
  }

  async extendLease(id: string, lease: StoredLease): Promise<StoredLease> {
    const entry = this.entries.get(id);
    if (!entry || entry.state === "destroying") throw notFound(`sandbox ${id} not found`);
    const stored = entry.record.lease;
    if (stored && stored.expiresAt >= lease.expiresAt) return { ...stored };
    entry.record.lease = { ...lease };
    // A sandbox still being built gets its lease with the build's last write.
    if (entry.state === "running") await this.persist(entry);
    return { ...lease };
  }

  async claim(id: string, o: ClaimOptions): Promise<SandboxHandle | undefined> {
    const entry = this.entries.get(id);
    // One process owns a local runtime: checking and rewriting in one synchronous step is the compare-and-swap.
    if (!entry || entry.state !== "running" || entry.spec.labels[POOL_LABEL] === undefined) return undefined;
    entry.spec = { ...entry.spec, labels: { ...o.labels }, internet: o.internet, ...(o.tenant ? { tenant: o.tenant } : {}) };
    if (!o.tenant) delete entry.spec.tenant;
    entry.createdAt = o.createdAt;
    entry.record.createdAt = o.createdAt.toISOString();
    entry.record.lease = { ...o.lease };
    if (o.request) entry.record.request = { ...o.request };
    else delete entry.record.request;
    await this.persist(entry);
    if (o.internet) await this.syncInternet(entry);
    return this.handle(entry);
  }

  async readLease(id: string): Promise<StoredLease | null | undefined> {
    const entry = this.entries.get(id);
    if (!entry || entry.state === "destroying") return undefined;
    return entry.record.lease ? { ...entry.record.lease } : null;
  }

  async setInternet(id: string, enabled: boolean): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry || entry.state === "destroying") throw notFound(`sandbox ${id} not found`);
    entry.spec = { ...entry.spec, internet: enabled };
    await this.syncInternet(entry);
    if (entry.state === "running") await this.persist(entry);
    this.log.info({ id, internet: enabled }, "internet access changed");
  }

  async setEgressAllow(id: string, entries: readonly string[]): Promise<string[]> {
    const entry = this.entries.get(id);
    if (!entry || entry.state === "destroying") throw notFound(`sandbox ${id} not found`);
    const parsed = this.validateAllow(entries);
    entry.record.egressAllow = parsed.map(formatEgressEntry);
    entry.internet = entry.internet.catch(() => {}).then(() => this.firewall.setAllow(entry.address, parsed));
    await entry.internet;
    if (entry.state === "running") await this.persist(entry);
    this.log.info({ id, egressAllow: entry.record.egressAllow }, "egress allowlist changed");
    return [...entry.record.egressAllow];
  }

  /** At most 64 entries; never a sandbox network or loopback, nor what SANDBOXD_EGRESS_DENY forbids (checkEgressAllow). */
  private validateAllow(entries: readonly string[]): EgressEntry[] {
    try {
      return checkEgressAllow(entries, this.egressDeny);
    } catch (err) {
      if (err instanceof EgressSyntaxError) throw invalidArgument("egress_allow", err.message);
      throw err;
    }
  }

  /** Whether sandbox isolation is complete (false while the host firewall is being restored). */
  get healthy(): boolean {
    return this.isolation.healthy;
  }

  watchHealth(listener: (healthy: boolean) => void): () => void {
    return this.isolation.subscribe(listener);
  }

  /** Runs the isolation check now (it also runs every few seconds, and on the host table before each create). */
  checkIsolation() {
    return this.isolation.check("all");
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.isolation.stop();
    await unlockInstance(this.stateDir);
  }

  /**
   * Destroys every sandbox and removes the instance itself (bridge, nftables
   * table, cgroup parents, state dir). For tests and uninstalling; the
   * runtime is closed afterwards.
   */
  async purge(): Promise<void> {
    await this.start();
    this.closed = true;
    await this.isolation.stop();
    await Promise.all([...this.entries.keys()].map((id) => this.destroy(id)));
    await reconcile({
      store: this.store, cgroups: this.cgroups, network: this.network,
      claimAddress: () => false, teardown: (id, rec) => this.teardown(id, rec?.address), adopt: false,
    });
    await this.firewall.remove();
    await this.network.removeBridge();
    await this.cgroups.removeInstance();
    await releaseUidRangesOf(this.stateDir);
    await fs.rm(this.stateDir, { recursive: true, force: true });
  }

  private handle(e: Entry): SandboxHandle {
    return {
      id: e.id,
      state: e.state,
      spec: { ...e.spec, labels: { ...e.spec.labels } },
      address: e.address,
      ssh: { host: e.address, port: 22, username: "sandbox", privateKey: Buffer.from(this.clientKey!.privateKey), hostKey: e.record.hostKey },
      createdAt: e.createdAt,
      ...(e.record.lease ? { lease: { ...e.record.lease } } : {}),
      ...(e.record.request ? { request: { ...e.record.request } } : {}),
      ...(e.record.egressAllow?.length ? { egressAllow: [...e.record.egressAllow] } : {}),
    };
  }
}

/** A stored allowlist back as entries (validated when stored; an unreadable one is skipped). */
function storedAllow(list: string[] | undefined): EgressEntry[] {
  const out: EgressEntry[] = [];
  for (const s of list ?? []) {
    try {
      out.push(parseEgressEntry(s));
    } catch {
      // skipped
    }
  }
  return out;
}
