/**
 * Validation of a requested SandboxSpec against the runtime's limits. Errors
 * name the proto field at fault (cores, memory_mib, disk_gib, internet, labels).
 */
import { invalidArgument } from "../../errors.js";
import type { SandboxSpec } from "../provider.js";

export interface Limits {
  maxCores: number;
  maxMemoryMiB: number;
  maxDiskGiB: number;
  maxSandboxes: number;
}

export const MIN_MEMORY_MIB = 64;
const MAX_LABELS = 32;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9_.\/-]{0,61}[A-Za-z0-9])?$/;
const MAX_LABEL_VALUE = 256;

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
  const labels = spec.labels ?? {};
  if (typeof labels !== "object" || Array.isArray(labels)) throw invalidArgument("labels", "must be a map");
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw invalidArgument("labels", `at most ${MAX_LABELS} labels`);
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k)) {
      throw invalidArgument("labels", `key ${JSON.stringify(k.slice(0, 80))}: 1-63 characters of A-Z a-z 0-9 _ . / -, alphanumeric at both ends`);
    }
    if (typeof v !== "string" || v.length > MAX_LABEL_VALUE || /[\u0000-\u001f\u007f]/.test(v)) {
      throw invalidArgument("labels", `value of ${k}: a string of at most ${MAX_LABEL_VALUE} characters without control characters`);
    }
  }
  return { cores, memoryMiB, diskGiB, internet: spec.internet, labels: Object.fromEntries(entries) };
}
