/** Which Proxmox failures are worth retrying, and how long to wait between attempts. */

/** An API or transport failure. Never carries request headers (the token). */
export class PveError extends Error {
  override readonly name = "PveError";
  constructor(
    message: string,
    /** HTTP status; 0 for a transport failure (no answer). */
    readonly status: number,
    /** The server's message: reason phrase or body "message". */
    readonly detail: string,
    readonly errors?: Record<string, string>,
    /** Transport error code (ECONNRESET, UND_ERR_HEADERS_TIMEOUT, …). */
    readonly code?: string,
  ) {
    super(message);
  }
}

export type Failure =
  /** Lock contention: the request was refused before doing anything; safe to retry. */
  | "locked"
  /** 5xx/596 or a dropped connection: the outcome of a non-idempotent call is unknown. */
  | "transient"
  /** A PUT with a `digest` lost to a concurrent change (another replica): re-read, then decide again. */
  | "conflict"
  /** nextid race: the id was taken between nextid and clone. */
  | "exists"
  | "not_found"
  | "auth"
  | "permission"
  | "invalid"
  | "fatal";

const CONFLICT = /detected modified configuration|file changed by other user/i;
const LOCKED = /CT is locked|VM is locked|got timeout|got lock request timeout|Try again/i;
const NOT_FOUND = /does not exist|no such (task|vm|ct)/i;

export function classify(e: unknown): Failure {
  if (!(e instanceof PveError)) return "fatal";
  const { status, detail } = e;
  const text = `${detail} ${Object.values(e.errors ?? {}).join(" ")}`;
  if (status === 0) return "transient";
  if (status === 401) return "auth";
  if (status === 403) return "permission";
  if (/already exists/i.test(text)) return "exists";
  if (status === 400) return "invalid";
  if (CONFLICT.test(text)) return "conflict";
  if (LOCKED.test(text)) return "locked";
  if (NOT_FOUND.test(text)) return "not_found";
  if (status >= 502 || (status === 500 && /^(Internal Server Error)?$/i.test(detail.trim()))) return "transient";
  return "fatal";
}

/** Exponential backoff with full jitter over [base/2, base]: 100 ms doubling, capped. */
export function backoffMs(attempt: number, baseMs = 100, capMs = 2000, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Task-status polling interval: 100 ms doubling to 1 s, no jitter needed. */
export function pollMs(attempt: number): number {
  return Math.min(1000, 100 * 2 ** attempt);
}

export { sleep } from "../../sleep.js";
