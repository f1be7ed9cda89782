/** Proto ↔ domain conversions shared by the handlers. */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Duration } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../errors.js";
import type { SandboxView } from "../sandboxes/types.js";
import { ResourcesSchema, Sandbox_State, SandboxSchema, type Sandbox } from "../../gen/ts/sandbox/v1/sandbox_pb.js";

const STATES = { creating: Sandbox_State.CREATING, running: Sandbox_State.RUNNING, stopped: Sandbox_State.STOPPED, destroying: Sandbox_State.DESTROYING } as const;

export function sandboxToProto(s: SandboxView): Sandbox {
  return create(SandboxSchema, {
    id: s.id,
    state: STATES[s.state],
    labels: s.labels,
    resources: create(ResourcesSchema, { cores: s.resources.cores, memoryMib: s.resources.memoryMiB, diskGib: s.resources.diskGiB }),
    internetAccess: s.internet,
    egressAllowlist: s.egressAllowlist,
    tenant: s.tenant,
    leaseExpiresAt: timestampFromDate(s.leaseExpiresAt),
    createdAt: timestampFromDate(s.createdAt),
    provider: s.provider,
  });
}

/** An optional Duration → ms (undefined when unset); negative is INVALID_ARGUMENT naming `field`. */
export function durationToMs(d: Duration | undefined, field: string): number | undefined {
  if (!d) return undefined;
  const ms = Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
  if (d.seconds < 0n || d.nanos < 0 || !Number.isSafeInteger(ms)) throw invalidArgument(field, "must be a non-negative duration");
  return ms;
}

export function msToDuration(ms: number): { seconds: bigint; nanos: number } {
  const whole = Math.floor(ms);
  return { seconds: BigInt(Math.floor(whole / 1000)), nanos: (whole % 1000) * 1e6 + Math.round((ms - whole) * 1e6) };
}

/** uint64 → number; beyond 2^53 is INVALID_ARGUMENT (no file or output is that large). */
export function u64(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(field, "too large");
  return Number(v);
}

export function requireSandboxId(id: string): string {
  if (!id) throw invalidArgument("sandbox_id", "required");
  return id;
}
