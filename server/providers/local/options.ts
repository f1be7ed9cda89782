/** Options of the local runtime and their defaults. */
import os from "node:os";
import type { EgressPolicy } from "../egress.js";
import type { Limits } from "./spec.js";
import type { Totals } from "./admission.js";

type LogFn = (obj: object, msg?: string) => void;
/** The subset of a pino logger the runtime uses. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface LocalRuntimeOptions {
  /** Prefix of everything this runtime makes; separate instances never touch each other. Default "sandboxd". */
  instance?: string;
  /** Inside 198.18.0.0/15; the first host address is the bridge. Default "198.18.0.0/16". */
  subnet?: string;
  /** Host bridge name (≤ 15 chars). Default derived from the instance, see names.ts. */
  bridge?: string;
  /** Default /var/lib/sandboxd/<instance>. */
  stateDir?: string;
  /** pids.max of a sandbox's user processes (sshd gets a reserve on top). Default 1024. */
  pidsMax?: number;
  limits?: Partial<Limits>;
  /** All sandboxes together; unset parts are derived from the host (see admission.ts). */
  totals?: Partial<Totals>;
  logger?: Logger;
  /** The key every sandbox authorises, instead of the per-instance one generated in the state dir. */
  clientKey?: { privateKey: Buffer | string; publicKey: string };
  /** One host key for every sandbox (as clones of one template share theirs), instead of a fresh one each. */
  hostKey?: { privateKey: Buffer | string; publicKey: string };
  /** The server-wide egress policy (SANDBOXD_EGRESS_*); defaults: DEFAULT_EGRESS_POLICY in ../egress.ts. */
  egress?: Partial<EgressPolicy>;
  /** How often the host firewall and port isolation are re-checked (and restored). Default 2000 ms. */
  isolationCheckIntervalMs?: number;
  /** The resolv.conf whose nameservers sandboxes may reach on port 53 with internet on. Default /etc/resolv.conf (the one they see). */
  resolvConf?: string;
}

/** Limits with defaults: the host's cores and memory, 64 GiB disk, 256 sandboxes (at most the pool's size). */
export function resolveLimits(limits: Partial<Limits> | undefined, poolCapacity: number): Limits {
  return {
    maxCores: limits?.maxCores ?? os.availableParallelism(),
    maxMemoryMiB: limits?.maxMemoryMiB ?? Math.floor(os.totalmem() / 2 ** 20),
    maxDiskGiB: limits?.maxDiskGiB ?? 64,
    maxSandboxes: Math.min(limits?.maxSandboxes ?? 256, poolCapacity),
  };
}
