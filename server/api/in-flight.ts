/**
 * The RPCs running right now, so that shutdown can cancel those still running
 * when the grace period ends.
 *
 * Why not connect-node's `shutdownSignal`: it links every call's signal to
 * that one server-wide AbortSignal, which adds one abort listener per RPC in
 * flight to it (Node warns past 10: MaxListenersExceededWarning, and each
 * removal walks the list). Here each RPC gets its own controller, kept in a
 * Set until the call ends, and the handler sees its own signal merged with
 * that controller's: no shared EventTarget gains a listener per call.
 */
import type { Interceptor } from "@connectrpc/connect";

export class InFlightRpcs {
  private readonly running = new Set<AbortController>();

  /** Innermost interceptor: the handler's `ctx.signal` also aborts when cancelAll() runs. */
  interceptor(): Interceptor {
    return (next) => (req) => {
      const own = new AbortController();
      this.running.add(own);
      // connect aborts req.signal when the call completes (also after a client reset on a
      // stalled stream, where the handler's finally may never run), so this always cleans up.
      const forget = () => this.running.delete(own);
      if (req.signal.aborted) forget();
      else req.signal.addEventListener("abort", forget, { once: true });
      return next({ ...req, signal: AbortSignal.any([req.signal, own.signal]) });
    };
  }

  /** Aborts every running RPC's signal with `reason` (a ConnectError: the status the client gets). */
  cancelAll(reason: unknown): void {
    for (const own of this.running) own.abort(reason);
    this.running.clear();
  }
}
