/**
 * What the server does to each HTTP/2 connection on its own initiative:
 * - keepalive: a PING every intervalMs. Proxies, NATs and load balancers drop
 *   connections they see no bytes on; a silent Exec stream must outlive them.
 *   A PING not acknowledged within timeoutMs means the peer is gone: the
 *   connection is closed, so its streams end instead of hanging.
 * - maximum age: after maxAgeMs (±10 % jitter, so replicas' clients do not all
 *   reconnect at once) a GOAWAY asks the client to open a new connection,
 *   which a load balancer may send elsewhere; running streams get graceMs,
 *   then the connection is closed.
 */
import type http2 from "node:http2";

export interface SessionPolicy {
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
}

export interface SessionEvents {
  /** A keepalive PING went unanswered and the connection was closed. */
  onKeepaliveTimeout?(): void;
  /** The connection reached its maximum age and was sent a GOAWAY. */
  onMaxAge?(): void;
}

/** Largest stream id: a first GOAWAY with it still accepts streams already on the wire. */
const MAX_STREAM_ID = 2 ** 31 - 1;
/** Between that GOAWAY and the final one: time for streams the client sent before it saw the first. */
const GOAWAY_SETTLE_MS = 1000;

export function applySessionPolicy(session: http2.ServerHttp2Session, policy: SessionPolicy, events: SessionEvents = {}): void {
  const timers: NodeJS.Timeout[] = [];
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(fn, ms);
    t.unref();
    timers.push(t);
    return t;
  };
  let pinger: NodeJS.Timeout | undefined;
  let unanswered: NodeJS.Timeout | undefined;
  session.once("close", () => {
    for (const t of timers) clearTimeout(t);
    clearInterval(pinger);
    clearTimeout(unanswered);
  });

  if (policy.keepaliveIntervalMs > 0) {
    pinger = setInterval(() => {
      if (session.destroyed || session.closed || unanswered) return;
      unanswered = setTimeout(() => {
        events.onKeepaliveTimeout?.();
        session.destroy();
      }, policy.keepaliveTimeoutMs);
      unanswered.unref();
      try {
        session.ping(() => {
          clearTimeout(unanswered);
          unanswered = undefined;
        });
      } catch {
        // The session is closing: nothing left to keep alive.
        clearTimeout(unanswered);
        unanswered = undefined;
      }
    }, policy.keepaliveIntervalMs);
    pinger.unref();
  }

  if (policy.maxConnectionAgeMs > 0) {
    const age = policy.maxConnectionAgeMs * (0.9 + Math.random() * 0.2);
    later(age, () => {
      if (session.destroyed || session.closed) return;
      events.onMaxAge?.();
      session.goaway(0, MAX_STREAM_ID);
      later(GOAWAY_SETTLE_MS, () => {
        if (session.destroyed) return;
        session.close(); // the final GOAWAY (last stream processed); closes once streams are done
        later(policy.maxConnectionAgeGraceMs, () => session.destroy());
      });
    });
  }
}
