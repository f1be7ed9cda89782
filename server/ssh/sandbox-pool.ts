/**
 * The connections of one sandbox and their channel slots.
 *
 * sshd allows MaxSessions (10) channels per connection, so work beyond that
 * gets more connections (up to a limit) or waits in a FIFO queue. Handshakes
 * are limited because sshd's MaxStartups (10:30:100) randomly drops
 * unauthenticated connections past 10. One slot per connection is kept for
 * control commands (killing a command), so a kill never queues behind the
 * work it is meant to stop.
 */
import { cancelled, isSandboxError, unavailable, type SandboxError } from "../errors.js";
import type { SshTarget } from "../providers/provider.js";
import { SshConnection, type ConnectionOptions } from "./connection.js";

export interface PoolOptions {
  channelsPerConnection: number;
  reservedChannels: number;
  maxConnections: number;
  maxConcurrentHandshakes: number;
  /** Connections beyond the first are closed after this long without channels. */
  idleConnectionMs: number;
  /** After a refusal, the lowered per-connection limit is restored after this long. */
  limitRestoreMs: number;
  connection: ConnectionOptions;
}

export interface ChannelLease {
  readonly connection: SshConnection;
  /** sshd refused the channel: lowers this connection's limit for a while, then releases. */
  refused(): void;
  release(): void;
}

interface Conn {
  ssh: SshConnection;
  active: number;
  limit: number;
  restoreTimer?: NodeJS.Timeout;
  idleTimer?: NodeJS.Timeout;
}

interface Waiter {
  control: boolean;
  resolve(lease: ChannelLease): void;
  reject(err: unknown): void;
  detach(): void;
}

export class SandboxPool {
  private readonly conns: Conn[] = [];
  private readonly waiters: Waiter[] = [];
  private connecting = 0;
  private retryAt = 0;
  private retryTimer?: NodeJS.Timeout;
  private closedWith?: SandboxError;

  constructor(
    private readonly id: string,
    private readonly target: () => Promise<SshTarget>,
    private readonly options: PoolOptions,
  ) {}

  get stats() {
    return {
      connections: this.conns.length,
      connecting: this.connecting,
      activeChannels: this.conns.reduce((n, c) => n + c.active, 0),
      waiting: this.waiters.length,
    };
  }

  acquire(control: boolean, signal?: AbortSignal): Promise<ChannelLease> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (signal?.aborted) return Promise.reject(cancelled(`sandbox ${this.id}: cancelled while waiting for a channel`));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(cancelled(`sandbox ${this.id}: cancelled while waiting for a channel`));
      };
      const waiter: Waiter = {
        control,
        resolve,
        reject,
        detach: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      // Control requests jump the queue: they free slots for everyone else.
      if (control) this.waiters.unshift(waiter);
      else this.waiters.push(waiter);
      this.pump();
    });
  }

  async close(reason: SandboxError): Promise<void> {
    this.closedWith ??= reason;
    clearTimeout(this.retryTimer);
    for (const w of this.waiters.splice(0)) {
      w.detach();
      w.reject(reason);
    }
    await Promise.all(this.conns.splice(0).map((c) => this.dropConn(c).ssh.end()));
  }

  private room(c: Conn, control: boolean): boolean {
    const limit = control ? c.limit : Math.max(1, c.limit - this.options.reservedChannels);
    return !c.ssh.closed && c.active < limit;
  }

  private pump(): void {
    if (this.closedWith) return;
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!;
      // Pack channels into the oldest connections so extra ones go idle and close.
      const conn = this.conns.find((c) => this.room(c, w.control));
      if (!conn) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      w.detach();
      w.resolve(this.lease(conn));
    }
    this.maybeConnect();
  }

  private maybeConnect(): void {
    const perConn = Math.max(1, this.options.channelsPerConnection - this.options.reservedChannels);
    while (
      this.waiters.length > this.connecting * perConn &&
      this.conns.length + this.connecting < this.options.maxConnections &&
      this.connecting < this.options.maxConcurrentHandshakes
    ) {
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, wait);
        return;
      }
      void this.connect();
    }
  }

  private async connect(): Promise<void> {
    this.connecting++;
    let ssh: SshConnection;
    try {
      ssh = await SshConnection.open(await this.target(), this.options.connection);
    } catch (err) {
      this.connecting--;
      this.connectFailed(err);
      return;
    }
    this.connecting--;
    if (this.closedWith) {
      void ssh.end();
      return;
    }
    const conn: Conn = { ssh, active: 0, limit: this.options.channelsPerConnection };
    ssh.onClose(() => {
      this.dropConn(conn);
      this.pump(); // waiters may need a replacement connection
    });
    this.conns.push(conn);
    this.retryAt = 0;
    this.pump();
    this.scheduleIdle(conn);
  }

  private connectFailed(err: unknown): void {
    const error = isSandboxError(err) ? err : unavailable(`sandbox ${this.id}: ${String(err)}`, err);
    // With no connection to wait for, waiters would hang: fail them. A pinned-key
    // mismatch is fatal for everyone regardless.
    if ((this.conns.length === 0 && this.connecting === 0) || error.kind === "failed_precondition") {
      for (const w of this.waiters.splice(0)) {
        w.detach();
        w.reject(error);
      }
    } else {
      this.retryAt = Date.now() + 1_000; // don't hammer a struggling sshd
      this.pump();
    }
  }

  private lease(conn: Conn): ChannelLease {
    conn.active++;
    clearTimeout(conn.idleTimer);
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      conn.active--;
      this.scheduleIdle(conn);
      this.pump();
    };
    return {
      connection: conn.ssh,
      release,
      refused: () => {
        // sshd frees a session a loop iteration after our CLOSE, and may run a
        // lower MaxSessions than we assume: lower the limit to what was open.
        if (!done) conn.limit = Math.max(1, Math.min(conn.limit, conn.active - 1));
        clearTimeout(conn.restoreTimer);
        conn.restoreTimer = setTimeout(() => {
          conn.limit = this.options.channelsPerConnection;
          this.pump();
        }, this.options.limitRestoreMs);
        conn.restoreTimer.unref();
        release();
      },
    };
  }

  private scheduleIdle(conn: Conn): void {
    clearTimeout(conn.idleTimer);
    if (conn.active > 0 || conn.ssh.closed) return;
    conn.idleTimer = setTimeout(() => {
      // Keep one connection warm; extra ones were for bursts.
      if (conn.active === 0 && this.conns.length > 1 && this.conns[0] !== conn) {
        this.dropConn(conn);
        void conn.ssh.end();
      }
    }, this.options.idleConnectionMs);
    conn.idleTimer.unref();
  }

  private dropConn(conn: Conn): Conn {
    clearTimeout(conn.idleTimer);
    clearTimeout(conn.restoreTimer);
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    return conn;
  }
}
