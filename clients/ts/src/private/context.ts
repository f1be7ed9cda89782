/** What every part of the library shares: the connect client, call options, the retry policy. */
import type { CallOptions as ConnectCallOptions, Client } from "@connectrpc/connect";
import type { SandboxService } from "../gen/sandbox/v1/sandbox_pb.js";
import { toSandboxdError } from "../errors.js";
import type { RetryPolicy } from "./retry.js";

export type Rpc = Client<typeof SandboxService>;

/** Options every call takes. */
export interface CallOptions {
  /** Cancels the call (it rejects with CanceledError). */
  signal?: AbortSignal;
  /**
   * The RPC's deadline in ms (DeadlineExceededError when it passes). Unary
   * calls default to the client's `timeoutMs`; streaming calls (exec,
   * upload, download, watch) have none unless given.
   */
  deadlineMs?: number;
}

export interface Context {
  rpc(): Promise<Rpc>;
  /** Default deadline of unary calls. */
  timeoutMs: number;
  retry: RetryPolicy | false;
  headers: Record<string, string>;
}

export function callOptions(ctx: Context, o: CallOptions | undefined, unary: boolean, signal?: AbortSignal): ConnectCallOptions {
  const timeoutMs = o?.deadlineMs ?? (unary ? ctx.timeoutMs : undefined);
  return {
    headers: ctx.headers,
    ...(timeoutMs !== undefined && timeoutMs > 0 && { timeoutMs }),
    ...((signal ?? o?.signal) !== undefined && { signal: signal ?? o?.signal }),
  };
}

/**
 * An AbortController that follows `parent`: for streams, which the library
 * aborts itself when the caller stops reading. `dispose` unlinks it.
 */
export function linkedController(parent: AbortSignal | undefined): { controller: AbortController; dispose(): void } {
  const controller = new AbortController();
  if (!parent) return { controller, dispose: () => {} };
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, dispose: () => {} };
  }
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener("abort", onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener("abort", onAbort) };
}

/**
 * Iterates a server stream, mapping its errors to SandboxdError. When the
 * consumer stops early (break, throw), the call is aborted and drained, so
 * that connect clears its deadline timer and the stream's resources at once.
 */
export async function* consume<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  parent: AbortSignal | undefined,
): AsyncGenerator<T> {
  const { controller, dispose } = linkedController(parent);
  let it: AsyncIterator<T> | undefined;
  let finished = false;
  try {
    it = open(controller.signal)[Symbol.asyncIterator]();
    for (;;) {
      let r: IteratorResult<T>;
      try {
        r = await it.next();
      } catch (e) {
        finished = true;
        throw toSandboxdError(e);
      }
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    dispose();
    if (it && !finished) {
      controller.abort();
      try {
        while (!(await it.next()).done);
      } catch {
        // the cancellation we caused
      }
    }
  }
}
