/** Helpers to stop waiting on a source the moment an AbortSignal fires. */
import { cancelled } from "../errors.js";

/** Rejects with cancelled when `signal` aborts; never settles otherwise. */
export function whenAborted(signal: AbortSignal | undefined, what: string): { promise: Promise<never>; dispose(): void } {
  if (!signal) return { promise: new Promise<never>(() => {}), dispose: () => {} };
  let onAbort!: () => void;
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(cancelled(`${what}: cancelled`));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  promise.catch(() => {}); // observed by whoever races it
  return { promise, dispose: () => signal.removeEventListener("abort", onAbort) };
}

/** Iterates `source`, throwing cancelled as soon as `signal` aborts (even mid-wait). */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined, what: string): AsyncGenerator<T> {
  const aborted = whenAborted(signal, what);
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const r = await Promise.race([it.next(), aborted.promise]);
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    aborted.dispose();
    // Tell the source we stopped early (a gRPC stream, a file reader...); don't wait on it.
    if (!finished) void Promise.resolve(it.return?.()).catch(() => {});
  }
}
