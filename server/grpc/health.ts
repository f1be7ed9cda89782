// grpc.health.v1.Health for connect-node: grpc-health-check needs a grpc-js
// Server, so Check/Watch/List are served here from an in-process status map.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthListResponseSchema,
} from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";
import type { HealthCheckResponse } from "../../gen/ts/vendor/grpc/health/v1/health_pb.js";

export { ServingStatus };

type Listener = (status: ServingStatus) => void;

/** Per-service serving status; "" is the server as a whole. */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly closers = new Set<() => void>();
  private closed = false;

  /**
   * Starts every service (and "") at `initial`. SERVING by default, like
   * grpc-go's health server: a process that answers at all is up unless
   * told otherwise via setServing(false).
   */
  constructor(
    services: readonly string[] = ["sandbox.v1.SandboxService"],
    initial: ServingStatus = ServingStatus.SERVING,
  ) {
    for (const s of ["", ...services]) this.statuses.set(s, initial);
  }

  /** Flip every known service, e.g. NOT_SERVING while draining on shutdown. */
  setServing(serving: boolean): void {
    const status = serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    for (const service of [...this.statuses.keys()]) this.set(service, status);
  }

  /** Set one service's status (adding it if new); watchers hear only changes. */
  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const l of this.listeners.get(service) ?? []) l(status);
  }

  /**
   * The server is going away: every Watch stream ends with UNAVAILABLE (not OK,
   * which a client could take for "the server ended the watch normally") and
   * new ones are refused the same way. Check keeps answering.
   */
  close(): void {
    this.closed = true;
    for (const close of [...this.closers]) close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Calls `fn` once when close() runs (at once if it already did); returns the unsubscribe function. */
  onClose(fn: () => void): () => void {
    if (this.closed) {
      fn();
      return () => {};
    }
    this.closers.add(fn);
    return () => this.closers.delete(fn);
  }

  /** undefined for a service that was never registered. */
  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  all(): ReadonlyMap<string, ServingStatus> {
    return this.statuses;
  }

  /** Returns the unsubscribe function; safe to call more than once. */
  subscribe(service: string, listener: Listener): () => void {
    let set = this.listeners.get(service);
    if (!set) this.listeners.set(service, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.listeners.get(service);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.listeners.delete(service);
    };
  }

  /** Number of live Watch subscriptions (lets tests check for leaks). */
  watcherCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}

const response = (status: ServingStatus): HealthCheckResponse => create(HealthCheckResponseSchema, { status });

/** Serve grpc.health.v1.Health (Check, Watch, List) backed by `health`. */
export function registerHealth(router: ConnectRouter, health: HealthService): void {
  router.service(Health, {
    check(req) {
      const status = health.get(req.service);
      // The health-checking spec requires NOT_FOUND for unknown services.
      if (status === undefined) throw new ConnectError(`unknown service ${JSON.stringify(req.service)}`, Code.NotFound);
      return response(status);
    },

    list() {
      const statuses: Record<string, HealthCheckResponse> = {};
      for (const [name, status] of health.all()) statuses[name] = response(status);
      return create(HealthListResponseSchema, { statuses });
    },

    async *watch(req, ctx) {
      // Unknown services are not an error for Watch: the spec says to answer
      // SERVICE_UNKNOWN and keep watching, as the service may appear later.
      let pending: ServingStatus | undefined = health.get(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
      let last: ServingStatus | undefined;
      let wake: (() => void) | undefined;
      // Only the newest status matters to a watcher (grpc-go drops stale ones
      // too), so a slow client cannot make the queue grow.
      const unsubscribe = health.subscribe(req.service, (status) => {
        pending = status;
        wake?.();
      });
      // connect-node 2.1 may never run this generator's finally after a
      // client reset on a stalled stream, so the subscription is released
      // from the abort listener too, and the pending wait is woken up.
      const stopWatching = health.onClose(() => wake?.());
      const onAbort = (): void => {
        unsubscribe();
        stopWatching();
        wake?.();
      };
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      if (ctx.signal.aborted) onAbort();
      try {
        while (!ctx.signal.aborted) {
          // A status not yet sent (NOT_SERVING, just set) goes out before the end.
          if (health.isClosed && pending === undefined) throw new ConnectError("the server is shutting down", Code.Unavailable);
          if (pending === undefined) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          const status: ServingStatus = pending;
          pending = undefined;
          if (status === last) continue;
          last = status;
          yield response(status);
        }
        // Aborted: by the client (nobody listens any more) or by the server's shutdown
        // cancelling what is left, whose reason (UNAVAILABLE) is the status to end with.
        throw ConnectError.from(ctx.signal.reason);
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
        stopWatching();
        unsubscribe();
      }
    },
  });
}
