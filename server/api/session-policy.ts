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
      // One GOAWAY naming the last stream processed; the connection closes once its streams are done.
      // (A first GOAWAY with the largest id would not help: nghttp2 refuses new streams after any GOAWAY
      // it sent.) A stream that crossed it is refused (REFUSED_STREAM): it never ran, clients retry it.
      session.close();
      later(policy.maxConnectionAgeGraceMs, () => session.destroy());
    });
  }
}
