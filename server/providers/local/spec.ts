/**
 * Validation of a requested SandboxSpec against the runtime's limits. Errors
 * name the proto field at fault (cores, memory_mib, disk_gib, internet, labels).
 */
import { invalidArgument } from "../../errors.js";
import type { SandboxSpec } from "../provider.js";
import { validateLabels } from "../labels.js";

export interface Limits {
  maxCores: number;
  maxMemoryMiB: number;
  maxDiskGiB: number;
  maxSandboxes: number;
}

export const MIN_MEMORY_MIB = 64;

function intInRange(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) throw invalidArgument(field, "must be an integer");
  if (value < min || value > max) throw invalidArgument(field, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** Returns a normalised copy of the spec or throws invalid_argument. */
export function validateSpec(spec: SandboxSpec, limits: Limits): SandboxSpec {
  const cores = intInRange("cores", spec.cores, 1, limits.maxCores);
  const memoryMiB = intInRange("memory_mib", spec.memoryMiB, MIN_MEMORY_MIB, limits.maxMemoryMiB);
  const diskGiB = intInRange("disk_gib", spec.diskGiB, 1, limits.maxDiskGiB);
  if (typeof spec.internet !== "boolean") throw invalidArgument("internet", "must be a boolean");
  const labels = validateLabels(spec.labels);
  return { cores, memoryMiB, diskGiB, internet: spec.internet, labels, ...(spec.tenant ? { tenant: spec.tenant } : {}) };
}
