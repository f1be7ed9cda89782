/**
 * Helpers to stop waiting on a source the moment an AbortSignal fires.
 *
 * Not Promise.race against one long-lived "aborted" promise: every race adds
 * a reaction to it that keeps the raced value alive, so a 1 GiB upload kept
 * every chunk in memory. Each wait here registers and removes its own listener.
 */
import { cancelled } from "../errors.js";

/** Resolves like `p`, or rejects with `abortError()` as soon as `signal` aborts. */
export function unlessAborted<T>(p: Promise<T>, signal: AbortSignal | undefined, abortError: () => unknown): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      p.catch(() => {});
      return reject(abortError());
    }
    const onAbort = () => reject(abortError());
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Iterates `source`, throwing cancelled as soon as `signal` aborts (even mid-wait). */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined, what: string): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const r = await unlessAborted(it.next(), signal, () => cancelled(`${what}: cancelled`));
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    // Tell the source we stopped early (a gRPC stream, a file reader...); don't wait on it.
    if (!finished) void Promise.resolve(it.return?.()).catch(() => {});
  }
}
