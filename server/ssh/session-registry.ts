/**
 * Per-sandbox SSH connection pools, opened on first use. The rest of the data
 * plane asks for channels by sandbox id and never handles connections.
 */
import type { ClientChannel, SFTPWrapper } from "ssh2";
import { cancelled, isSandboxError, notFound, unavailable, type SandboxError } from "../errors.js";
import type { SshTarget } from "../providers/provider.js";
import type { ChannelOutput } from "./channel-output.js";
import { ssh as metrics } from "../telemetry/metrics.js";
import { inSpan } from "../telemetry/tracing.js";
import { ChannelRefusedError, defaultConnectionOptions, type ConnectionOptions } from "./connection.js";
import { SandboxPool, type ChannelLease, type PoolOptions } from "./sandbox-pool.js";
import { sleep } from "../sleep.js";

export type TargetResolver = (sandboxId: string) => Promise<SshTarget | undefined>;

export interface SessionRegistryOptions {
  /** Looks up sandboxes that were not register()ed (e.g. from the provider). */
  resolve?: TargetResolver;
  /** sshd's MaxSessions. Default 10. */
  channelsPerConnection?: number;
  /** Slots per connection kept for control commands (kills). Default 1. */
  reservedChannels?: number;
  /** Default 16 (144 concurrent channels with the defaults); beyond that requests queue. */
  maxConnectionsPerSandbox?: number;
  /** Default 4, well under sshd's MaxStartups 10. */
  maxConcurrentHandshakes?: number;
  idleConnectionMs?: number;
  connection?: Partial<ConnectionOptions>;
}

export interface ChannelOptions {
  signal?: AbortSignal;
  /** May use the reserved slot and jumps the queue: for short commands that free others. */
  control?: boolean;
}

export interface Opened<T> {
  value: T;
  /** Frees the slot; also called automatically when the channel closes. */
  release(): void;
}

/** How often a refused channel open is retried (elsewhere or after a pause). */
const OPEN_ATTEMPTS = 40;

export class SessionRegistry {
  private readonly targets = new Map<string, SshTarget>();
  private readonly pools = new Map<string, SandboxPool>();
  private readonly poolOptions: PoolOptions;
  private closedAll = false;
  private unreachable?: (sandboxId: string) => Promise<SandboxError | undefined>;

  constructor(private readonly options: SessionRegistryOptions = {}) {
    this.poolOptions = {
      channelsPerConnection: options.channelsPerConnection ?? 10,
      reservedChannels: options.reservedChannels ?? 1,
      maxConnections: options.maxConnectionsPerSandbox ?? 16,
      maxConcurrentHandshakes: options.maxConcurrentHandshakes ?? 4,
      idleConnectionMs: options.idleConnectionMs ?? 30_000,
      limitRestoreMs: 5_000,
      connection: { ...defaultConnectionOptions, ...options.connection },
    };
  }

  /** Makes a sandbox reachable. Re-registering with another target drops old connections. */
  register(sandboxId: string, target: SshTarget): void {
    const old = this.targets.get(sandboxId);
    this.targets.set(sandboxId, target);
    if (old && !sameTarget(old, target)) void this.closePool(sandboxId);
  }

  /** Closes the sandbox's connections and forgets its target (call on destroy). */
  async close(sandboxId: string): Promise<void> {
    this.targets.delete(sandboxId);
    await this.closePool(sandboxId);
  }

  unregister(sandboxId: string): Promise<void> {
    return this.close(sandboxId);
  }

  /** Shutdown: closes every connection; later requests fail with unavailable. */
  async closeAll(): Promise<void> {
    this.closedAll = true;
    const ids = [...this.pools.keys()];
    this.targets.clear();
    await Promise.all(ids.map((id) => this.closePool(id)));
  }

  stats(sandboxId: string) {
    return this.pools.get(sandboxId)?.stats ?? { connections: 0, connecting: 0, activeChannels: 0, waiting: 0 };
  }

  /**
   * Asked when a sandbox cannot be reached (connect failed): may give a truer
   * error, such as "the sandbox is stopped", than the network's.
   */
  onUnreachable(explain: (sandboxId: string) => Promise<SandboxError | undefined>): void {
    this.unreachable = explain;
  }

  /** A channel slot; the caller opens the channel on lease.connection. */
  async acquire(sandboxId: string, options: ChannelOptions = {}): Promise<ChannelLease> {
    if (this.closedAll) throw unavailable("the SSH data plane is shutting down");
    // Unknown ids fail here, so no pool is kept for them.
    if (!this.pools.has(sandboxId)) await this.target(sandboxId);
    try {
      return await this.pool(sandboxId).acquire(options.control ?? false, options.signal);
    } catch (err) {
      if (!this.unreachable || this.closedAll || !isSandboxError(err, "unavailable") || options.signal?.aborted) throw err;
      throw (await this.unreachable(sandboxId).catch(() => undefined)) ?? err;
    }
  }

  /** Runs `command` on a new exec channel; the slot is freed when the channel closes. */
  openExec(sandboxId: string, command: string, options: ChannelOptions = {}): Promise<Opened<ChannelOutput>> {
    return this.open(sandboxId, options, "exec", (lease) => lease.connection.exec(command), (o) => o.channel);
  }

  /** Opens an SFTP session; the slot is freed when it ends. */
  openSftp(sandboxId: string, options: ChannelOptions = {}): Promise<Opened<SFTPWrapper>> {
    return this.open(sandboxId, options, "sftp", (lease) => lease.connection.sftp(), (s) => s);
  }

  private open<T>(
    sandboxId: string,
    options: ChannelOptions,
    kind: "exec" | "sftp",
    start: (lease: ChannelLease) => Promise<T>,
    channelOf: (value: T) => ClientChannel | SFTPWrapper,
  ): Promise<Opened<T>> {
    return inSpan(`ssh.channel ${kind}`, {}, () => this.openChannel(sandboxId, options, start, channelOf));
  }

  private async openChannel<T>(
    sandboxId: string,
    options: ChannelOptions,
    start: (lease: ChannelLease) => Promise<T>,
    channelOf: (value: T) => ClientChannel | SFTPWrapper,
  ): Promise<Opened<T>> {
    for (let attempt = 1; ; attempt++) {
      const waitStarted = performance.now();
      const lease = await this.acquire(sandboxId, options);
      metrics.queueWaitSeconds.observe((performance.now() - waitStarted) / 1000);
      let value: T;
      try {
        value = await start(lease);
      } catch (err) {
        if (!(err instanceof ChannelRefusedError) || attempt >= OPEN_ATTEMPTS) {
          lease.release();
          throw unavailable(`sandbox ${sandboxId}: could not open an SSH channel: ${String(err)}`, err);
        }
        lease.refused();
        metrics.channelOpenRetries.inc();
        await pause(Math.min(50, attempt * 2), options.signal);
        continue;
      }
      if (options.signal?.aborted) {
        // The caller gave up while the channel was opening.
        channelOf(value).end();
        lease.release();
        throw cancelled(`sandbox ${sandboxId}: cancelled`);
      }
      metrics.channels.inc();
      let released = false;
      const free = () => {
        if (released) return;
        released = true;
        metrics.channels.dec();
        lease.release();
      };
      const off = lease.connection.onClose(free);
      const release = () => {
        off();
        free();
      };
      channelOf(value).once("close", release);
      return { value, release };
    }
  }

  private pool(sandboxId: string): SandboxPool {
    let pool = this.pools.get(sandboxId);
    if (!pool) {
      pool = new SandboxPool(sandboxId, () => this.target(sandboxId), this.poolOptions);
      this.pools.set(sandboxId, pool);
    }
    return pool;
  }

  private async target(sandboxId: string): Promise<SshTarget> {
    const target = this.targets.get(sandboxId) ?? (await this.options.resolve?.(sandboxId));
    if (!target) throw notFound(`sandbox ${sandboxId} not found`);
    return target;
  }

  private async closePool(sandboxId: string): Promise<void> {
    const pool = this.pools.get(sandboxId);
    if (!pool) return;
    this.pools.delete(sandboxId);
    await pool.close(unavailable(`sandbox ${sandboxId}: connections closed`));
  }
}

function sameTarget(a: SshTarget, b: SshTarget): boolean {
  return (
    a.host === b.host &&
    a.port === b.port &&
    a.username === b.username &&
    a.hostKey === b.hostKey &&
    a.privateKey.equals(b.privateKey)
  );
}

const pause = (ms: number, signal?: AbortSignal) => sleep(ms, signal, () => cancelled("cancelled"));
