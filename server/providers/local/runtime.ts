/**
 * LocalRuntime: sandboxes on this host made of a network namespace, a
 * bubblewrap jail with sshd inside, cgroups, an ext4 disk image and one
 * nftables table. See names.ts for what every host object is called.
 */
import type { ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import { cancelled, failedPrecondition, internal, isSandboxError, notFound, resourceExhausted, unavailable } from "../../errors.js";
import type { CreateOptions, SandboxHandle, SandboxProvider, SandboxSpec, SandboxState } from "../provider.js";
import { AddressPool, parseSubnet, type Subnet } from "./addresses.js";
import { Cgroups, detectCgroups } from "./cgroups.js";
import { createImage, ensureTemplate, loopDevices, releaseLoops } from "./disk.js";
import { Firewall } from "./firewall.js";
import { ensureSandboxUser, type HostUser } from "./host.js";
import { findJailInit, spawnJail, waitForSshd, writeSshFiles } from "./jail.js";
import { generateEd25519, loadOrCreateClientKey, type KeyPair } from "./keys.js";
import { Names, newSandboxId } from "./names.js";
import { Network } from "./network.js";
import { reconcile } from "./recovery.js";
import { validateSpec, type Limits } from "./spec.js";
import { StateStore, type SandboxRecord } from "./state.js";

type LogFn = (obj: object, msg?: string) => void;
/** The subset of a pino logger the runtime uses. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface LocalRuntimeOptions {
  /** Prefix of everything this runtime makes; separate instances never touch each other. Default "sandboxd". */
  instance?: string;
  /** Inside 198.18.0.0/15; the first host address is the bridge. Default "198.18.0.0/16". */
  subnet?: string;
  /** Host bridge name (≤ 15 chars). Default derived from the instance, see names.ts. */
  bridge?: string;
  /** Default /var/lib/sandboxd/<instance>. */
  stateDir?: string;
  /** pids.max of a sandbox's user processes (sshd gets a reserve on top). Default 1024. */
  pidsMax?: number;
  limits?: Partial<Limits>;
  logger?: Logger;
}

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
  /** Serialises firewall updates; each applies the entry's current spec.internet. */
  internet: Promise<void>;
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
  private readonly log: Logger;
  private readonly entries = new Map<string, Entry>();
  private cgroupsOrUndefined?: Cgroups;
  private user?: HostUser;
  private clientKey?: KeyPair;
  private starting?: Promise<void>;
  private closed = false;

  constructor(options: LocalRuntimeOptions = {}) {
    this.instance = options.instance ?? "sandboxd";
    this.names = new Names(this.instance, options.bridge);
    this.subnet = parseSubnet(options.subnet ?? "198.18.0.0/16");
    this.stateDir = options.stateDir ?? `/var/lib/sandboxd/${this.instance}`;
    this.pidsMax = options.pidsMax ?? 1024;
    this.log = options.logger ?? silent;
    this.pool = new AddressPool(this.subnet);
    this.limits = {
      maxCores: options.limits?.maxCores ?? os.availableParallelism(),
      maxMemoryMiB: options.limits?.maxMemoryMiB ?? Math.floor(os.totalmem() / 2 ** 20),
      maxDiskGiB: options.limits?.maxDiskGiB ?? 64,
      maxSandboxes: Math.min(options.limits?.maxSandboxes ?? 256, this.pool.capacity),
    };
    this.network = new Network(this.names, this.subnet);
    this.firewall = new Firewall(this.names.table, this.names.bridge, this.subnet.cidr);
    this.store = new StateStore(this.stateDir);
  }

  /** The cgroup layout in use (after start). */
  get cgroups(): Cgroups {
    if (!this.cgroupsOrUndefined) throw failedPrecondition("local runtime not started");
    return this.cgroupsOrUndefined;
  }

  start(): Promise<void> {
    this.starting ??= this.doStart().catch((e) => {
      this.starting = undefined;
      throw isSandboxError(e) ? e : unavailable(`local runtime cannot start: ${(e as Error).message}`, e);
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (process.getuid?.() !== 0) throw failedPrecondition("the local runtime needs root");
    this.cgroupsOrUndefined = new Cgroups(await detectCgroups(), this.instance, this.pidsMax);
    this.user = await ensureSandboxUser();
    await fs.mkdir(this.store.root, { recursive: true, mode: 0o700 });
    // Nothing under the state dir is for the sandbox user (other sandboxes' images, the client key).
    await fs.chmod(this.stateDir, 0o700);
    this.clientKey = await loadOrCreateClientKey(this.stateDir);
    await ensureTemplate(this.templateDir, this.user.uid, this.user.gid);
    await this.cgroups.prepareInstance();
    await this.network.ensureBridge();
    // The table first, keeping internet for sandboxes that may be adopted; teardown of the others removes their elements.
    const records = await Promise.all((await this.store.listIds()).map((id) => this.store.read(id)));
    await this.firewall.install(records.filter((r) => r?.complete && r.spec.internet).map((r) => r!.address));
    const { adopted, removed } = await reconcile({
      store: this.store,
      cgroups: this.cgroups,
      network: this.network,
      claimAddress: (a) => this.pool.take(a),
      teardown: (id, rec) => this.teardown(id, rec?.address),
      adopt: true,
    });
    for (const rec of adopted) {
      this.entries.set(rec.id, {
        id: rec.id, state: "running", spec: rec.spec, address: rec.address, createdAt: new Date(rec.createdAt),
        record: rec, abort: new AbortController(), internet: Promise.resolve(),
      });
    }
    this.log.info({ instance: this.instance, adopted: adopted.map((r) => r.id), removed, cgroup: this.cgroups.layout.version }, "local runtime started");
  }

  private get templateDir(): string {
    return `${this.stateDir}/disk-template`;
  }

  private assertReady(): void {
    if (this.closed) throw unavailable("local runtime is closed");
    if (!this.clientKey) throw failedPrecondition("local runtime not started");
  }

  async create(spec: SandboxSpec, options: CreateOptions = {}): Promise<SandboxHandle> {
    this.assertReady();
    if (options.signal?.aborted) throw cancelled("create cancelled before it started");
    const valid = validateSpec(spec, this.limits);
    if (this.entries.size >= this.limits.maxSandboxes) throw resourceExhausted(`at most ${this.limits.maxSandboxes} sandboxes`);
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
      },
    };
    this.entries.set(id, entry);
    const onAbort = () => entry.abort.abort(cancelled(`create of ${id} cancelled`));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const t0 = performance.now();
    entry.creating = this.build(entry);
    try {
      await entry.creating;
      if (entry.state === "destroying") throw cancelled(`sandbox ${id} was destroyed while being created`);
      entry.state = "running";
      this.log.info({ id, address, ms: Math.round(performance.now() - t0) }, "sandbox created");
      return this.handle(entry);
    } catch (e) {
      if (!entry.destroying) await this.destroy(id).catch((err) => this.log.error({ id, err }, "cleanup of failed create"));
      else await entry.destroying.catch(() => {});
      if (entry.abort.signal.aborted) throw cancelled(`create of ${id} cancelled`);
      this.log.error({ id, err: e }, "create failed");
      throw isSandboxError(e) ? e : internal(`create ${id}: ${(e as Error).message}`, e);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  private async build(entry: Entry): Promise<void> {
    const { id, address, record } = entry;
    const signal = entry.abort.signal;
    const dir = this.store.dir(id);
    await fs.mkdir(`${dir}/mnt`, { recursive: true, mode: 0o700 });
    const hostKey = generateEd25519();
    record.hostKey = hostKey.publicKey;
    await this.store.write(record);
    signal.throwIfAborted();
    const steps = await Promise.allSettled([
      this.network.createSandbox(id, address),
      createImage(`${dir}/disk.img`, entry.spec.diskGiB, this.templateDir),
      this.cgroups.create(id, entry.spec, this.user!.uid),
      writeSshFiles(`${dir}/ssh`, { address, hostPrivateKey: hostKey.privateKey, authorizedKey: this.clientKey!.publicKey }),
      entry.spec.internet ? this.syncInternet(entry) : undefined,
    ]);
    const failed = steps.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw failed.reason;
    signal.throwIfAborted();
    entry.child = await spawnJail({
      id, netnsPath: this.network.netnsPath(id), image: `${dir}/disk.img`, mnt: `${dir}/mnt`, sshDir: `${dir}/ssh`,
      logPath: `${dir}/sshd.log`, cgroupProcs: this.cgroups.jailProcs(id), userProcs: this.cgroups.userProcs(id),
      hide: [this.stateDir],
    });
    await waitForSshd(address, entry.child, `${dir}/sshd.log`, signal);
    record.jailPid = await findJailInit(await this.cgroups.pids(id));
    if (!record.jailPid) throw new Error("sshd answers but the jail's init is not in its cgroup");
    record.loopDevice = (await loopDevices()).find((l) => l.backingFile === `${dir}/disk.img`)?.device;
    signal.throwIfAborted();
    record.complete = true;
    await this.persist(entry);
  }

  private persist(entry: Entry): Promise<void> {
    entry.record.spec = { ...entry.spec, labels: { ...entry.spec.labels } };
    return this.store.write(entry.record);
  }

  private syncInternet(entry: Entry): Promise<void> {
    entry.internet = entry.internet.catch(() => {}).then(() => this.firewall.setInternet(entry.address, entry.spec.internet));
    return entry.internet;
  }

  /** Removes every trace of a sandbox; idempotent, works from the id alone. */
  private async teardown(id: string, address: string | undefined): Promise<void> {
    await this.cgroups.kill(id);
    await this.network.deleteSandbox(id);
    if (address) await this.firewall.setInternet(address, false);
    await releaseLoops(`${this.store.dir(id)}/`);
    try {
      await this.cgroups.remove(id);
    } catch {
      await this.cgroups.kill(id);
      await this.cgroups.remove(id);
    }
    await this.store.remove(id);
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

  async setInternet(id: string, enabled: boolean): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry || entry.state === "destroying") throw notFound(`sandbox ${id} not found`);
    entry.spec = { ...entry.spec, internet: enabled };
    await this.syncInternet(entry);
    if (entry.state === "running") await this.persist(entry);
    this.log.info({ id, internet: enabled }, "internet access changed");
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /**
   * Destroys every sandbox and removes the instance itself (bridge, nftables
   * table, cgroup parents, state dir). For tests and uninstalling.
   */
  async purge(): Promise<void> {
    await this.start();
    await Promise.all([...this.entries.keys()].map((id) => this.destroy(id)));
    await reconcile({
      store: this.store, cgroups: this.cgroups, network: this.network,
      claimAddress: () => false, teardown: (id, rec) => this.teardown(id, rec?.address), adopt: false,
    });
    await this.firewall.remove();
    await this.network.removeBridge();
    await this.cgroups.removeInstance();
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
    };
  }
}
