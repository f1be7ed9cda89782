/**
 * Label rules shared by every provider, so a label accepted on one backend is
 * accepted on all of them (errors name the proto field `labels`).
 */
import { invalidArgument } from "../errors.js";

const MAX_LABELS = 32;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9_.\/-]{0,61}[A-Za-z0-9])?$/;
const MAX_LABEL_VALUE = 256;

/** Returns a plain copy of the labels or throws invalid_argument. */
export function validateLabels(labels: unknown): Record<string, string> {
  const map = labels ?? {};
  if (typeof map !== "object" || Array.isArray(map)) throw invalidArgument("labels", "must be a map");
  const entries = Object.entries(map as Record<string, unknown>);
  if (entries.length > MAX_LABELS) throw invalidArgument("labels", `at most ${MAX_LABELS} labels`);
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k)) {
      throw invalidArgument("labels", `key ${JSON.stringify(k.slice(0, 80))}: 1-63 characters of A-Z a-z 0-9 _ . / -, alphanumeric at both ends`);
    }
    if (typeof v !== "string" || v.length > MAX_LABEL_VALUE || /[\u0000-\u001f\u007f]/.test(v)) {
      throw invalidArgument("labels", `value of ${k}: a string of at most ${MAX_LABEL_VALUE} characters without control characters`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}
