/** A requested PTY size, checked. */
import type { PtySize } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../../errors.js";
import type { PtySpec } from "../../ssh/commands/kept.js";

export function ptySize(p: PtySize | undefined, field: string): PtySpec {
  if (!p) throw invalidArgument(field, "required");
  for (const k of ["rows", "cols"] as const) {
    if (p[k] < 1 || p[k] > 1000) throw invalidArgument(`${field}.${k}`, `must be 1-1000, got ${p[k]}`);
  }
  const term = p.term || "xterm-256color";
  if (!/^[A-Za-z0-9._+-]{1,64}$/.test(term)) throw invalidArgument(`${field}.term`, "not a terminal name");
  return { rows: p.rows, cols: p.cols, term };
}
