/**
 * CreateSandbox idempotency: the first call with a request id makes the
 * sandbox, retries (even concurrent ones) get the same sandbox for as long as
 * it exists. A retry with other parameters is a client bug: INVALID_ARGUMENT.
 */
import { cancelled, invalidArgument } from "../errors.js";

interface Entry {
  fingerprint: string;
  sandboxId: Promise<string>;
  /** Set once the create succeeded, so destroy can forget the id. */
  resolvedId?: string;
}

export class RequestIds {
  private readonly byRequest = new Map<string, Entry>();

  /**
   * Returns the id of the sandbox made for `requestId`, making it with `make`
   * the first time. `signal` only stops this caller's wait: the create goes on
   * so that a retry finds it (its lease reaps it if nobody comes back).
   */
  async run(requestId: string, fingerprint: string, make: () => Promise<string>, signal?: AbortSignal): Promise<string> {
    if (requestId.length > 128) throw invalidArgument("request_id", "at most 128 characters");
    let entry = this.byRequest.get(requestId);
    if (entry && entry.fingerprint !== fingerprint) {
      throw invalidArgument("request_id", "was used before with different parameters");
    }
    if (!entry) {
      const e: Entry = { fingerprint, sandboxId: Promise.resolve("") };
      // Settle the bookkeeping before any waiter sees the outcome, so an immediate retry after a failure makes a new one.
      e.sandboxId = make().then(
        (id) => ((e.resolvedId = id), id),
        (err: unknown) => {
          if (this.byRequest.get(requestId) === e) this.byRequest.delete(requestId);
          throw err;
        },
      );
      entry = e;
      this.byRequest.set(requestId, e);
    }
    return waitFor(entry.sandboxId, signal);
  }

  /** A sandbox made for `requestId` by an earlier process or another replica (its stored request key). */
  remember(requestId: string, fingerprint: string, sandboxId: string): void {
    if (this.byRequest.has(requestId)) return;
    this.byRequest.set(requestId, { fingerprint, sandboxId: Promise.resolve(sandboxId), resolvedId: sandboxId });
  }

  /** The sandbox is gone: its request id may make a new one. */
  forgetSandbox(sandboxId: string): void {
    for (const [rid, e] of this.byRequest) if (e.resolvedId === sandboxId) this.byRequest.delete(rid);
  }
}

function waitFor<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(cancelled("create: cancelled"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled("create: cancelled"));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
