/** Exponential backoff with full jitter for calls that are safe to repeat. */
import { Code } from "@connectrpc/connect";
import { SandboxdError, toSandboxdError } from "../errors.js";

/** How idempotent calls are retried. */
export interface RetryOptions {
  /** Give up once this long has passed since the first attempt (default 60 000 ms). */
  maxElapsedMs?: number;
  /** First delay before jitter (default 100 ms); it doubles after each attempt. */
  initialDelayMs?: number;
  /** Largest delay (default 2 000 ms). */
  maxDelayMs?: number;
}

export type RetryPolicy = Required<RetryOptions> & {
  /**
   * Asked after each backoff delay, before the next attempt: false means the
   * server is not ready yet (health NOT_SERVING, or down), so wait again.
   */
  ready?: (signal?: AbortSignal) => Promise<boolean>;
};

export const defaultRetry: RetryPolicy = { maxElapsedMs: 60_000, initialDelayMs: 100, maxDelayMs: 2_000 };

export function retryPolicy(opts: RetryOptions | false | undefined): RetryPolicy | false {
  if (opts === false) return false;
  return { ...defaultRetry, ...opts };
}

/**
 * Codes after which a call that is safe to repeat is retried: UNAVAILABLE
 * (server down or restarting, connection refused), ABORTED (connect-node's
 * code for a connection reset mid-call) and CANCELED when the caller did not
 * cancel (node's code for a stream on an HTTP/2 session that died; the
 * caller's own cancellation is never retried: callers check their signal).
 */
export function isTransient(err: unknown): boolean {
  return (
    err instanceof SandboxdError && (err.code === Code.Unavailable || err.code === Code.Aborted || err.code === Code.Canceled)
  );
}

/** Resolves after `ms`, or rejects when `signal` aborts. The timer holds the process: someone awaits the retry. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(toSandboxdError(signal.reason));
    const onAbort = () => {
      clearTimeout(t);
      reject(toSandboxdError(signal?.reason));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Backoff state for one operation: `next()` waits before the next attempt, or returns false when the time is up. */
export class Backoff {
  #attempt = 0;
  #start = Date.now();
  constructor(
    private readonly policy: RetryPolicy,
    private readonly signal?: AbortSignal,
  ) {}

  /** Starts the clock over (after progress was made). */
  reset(): void {
    this.#attempt = 0;
    this.#start = Date.now();
  }

  async next(): Promise<boolean> {
    for (;;) {
      const cap = Math.min(this.policy.maxDelayMs, this.policy.initialDelayMs * 2 ** this.#attempt);
      const delay = Math.random() * cap;
      if (Date.now() + delay - this.#start > this.policy.maxElapsedMs) return false;
      this.#attempt++;
      await sleep(delay, this.signal);
      if (!this.policy.ready || (await this.policy.ready(this.signal))) return true;
    }
  }
}

/**
 * Runs `fn` (whose errors are mapped to SandboxdError) and repeats it after a
 * transient error, with backoff, until it succeeds, fails otherwise, or the
 * policy's time is up (then the last error is thrown).
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy | false,
  signal?: AbortSignal,
  retryable: (err: unknown) => boolean = isTransient,
): Promise<T> {
  const backoff = policy ? new Backoff(policy, signal) : undefined;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      const err = toSandboxdError(e);
      if (!backoff || signal?.aborted || !retryable(err) || !(await backoff.next())) throw err;
    }
  }
}
