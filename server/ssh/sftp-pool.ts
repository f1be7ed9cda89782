/**
 * One shared SFTP session per sandbox for the small file calls (Stat,
 * ListDir, MakeDir, Remove, Move, and the archive calls' checks). Opening a
 * session costs ~7 ms (a channel and an sftp-server process); a stat on an
 * open one costs ~0.2 ms, and SFTP carries many requests at once on one
 * session. Transfers (Upload, Download) keep their own sessions, so a
 * cancelled transfer can end its session without touching others.
 *
 * A session closes after IDLE_MS without calls, when its channel or
 * connection closes (destroy), or on a protocol error; the next call opens a
 * new one.
 */
import { cancelled } from "../errors.js";
import type { SessionRegistry } from "./session-registry.js";
import { SftpSession } from "./sftp-session.js";

const IDLE_MS = 30_000;

interface Entry {
  session: Promise<SftpSession>;
  users: number;
  idle?: NodeJS.Timeout;
}

export class SftpPool {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly registry: SessionRegistry, private readonly idleMs = IDLE_MS) {}

  /** Runs `fn` on the sandbox's shared session. `signal` only bounds the wait for the session. */
  async use<T>(sandboxId: string, signal: AbortSignal | undefined, fn: (s: SftpSession) => Promise<T>): Promise<T> {
    const { session, release } = await this.acquire(sandboxId, signal);
    try {
      return await fn(session);
    } finally {
      release();
    }
  }

  /** The shared session, held until `release` (for streaming callers such as ListDir). */
  async acquire(sandboxId: string, signal: AbortSignal | undefined): Promise<{ session: SftpSession; release: () => void }> {
    const entry = this.entryFor(sandboxId);
    entry.users++;
    if (entry.idle) clearTimeout(entry.idle);
    entry.idle = undefined;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.users--;
      if (entry.users === 0 && this.entries.get(sandboxId) === entry) {
        entry.idle = setTimeout(() => this.drop(sandboxId, entry), this.idleMs);
        entry.idle.unref();
      }
    };
    try {
      return { session: await untilAborted(entry.session, signal), release };
    } catch (err) {
      release();
      throw err;
    }
  }

  private entryFor(sandboxId: string): Entry {
    const known = this.entries.get(sandboxId);
    if (known) return known;
    const entry: Entry = { users: 0, session: SftpSession.open(this.registry, sandboxId) };
    this.entries.set(sandboxId, entry);
    entry.session.then(
      (s) => {
        // Closed by the far end, the connection's end or a protocol error: the next call opens anew.
        s.sftp.once("close", () => this.drop(sandboxId, entry));
        if (this.entries.get(sandboxId) !== entry) s.end();
      },
      () => this.drop(sandboxId, entry),
    );
    return entry;
  }

  private drop(sandboxId: string, entry: Entry): void {
    if (entry.idle) clearTimeout(entry.idle);
    if (this.entries.get(sandboxId) === entry) this.entries.delete(sandboxId);
    entry.session.then((s) => s.end(), () => {});
  }
}

/** The session, or cancelled when this caller gives up first (the session stays for the others). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(cancelled("cancelled while waiting for an SFTP session"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled("cancelled while waiting for an SFTP session"));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

const pools = new WeakMap<SessionRegistry, SftpPool>();

/** The pool of a registry (one per registry, made on first use). */
export function sftpPool(registry: SessionRegistry): SftpPool {
  let pool = pools.get(registry);
  if (!pool) pools.set(registry, (pool = new SftpPool(registry)));
  return pool;
}
