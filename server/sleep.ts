import { setTimeout as delay } from "node:timers/promises";

/**
 * Waits `ms`; aborting `signal` ends the wait at once and rejects with
 * `onAbort(signal)` (by default the signal's reason).
 */
export async function sleep(ms: number, signal?: AbortSignal, onAbort: (signal: AbortSignal) => unknown = (s) => s.reason): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if (signal?.aborted) throw onAbort(signal);
    throw err;
  }
}
