/**
 * Where an Exec's time goes, logged at debug level as one "exec phases" line
 * per Exec (SANDBOXD_LOG_LEVEL=debug), beside its "rpc" line. Each phase is
 * the time since the previous step, in ms:
 * - decode: the request's arrival at connect-node to the handler (routing,
 *   interceptors, auth, reading and decoding the request message);
 * - pin: sandbox lookup and lease pin;
 * - channel: SSH channel acquired and opened (slot, CHANNEL_OPEN, exec request);
 * - header: the command wrapper's header (sh started, cgroups joined, exec);
 * - first_output: to the command's first output byte (absent when it printed nothing);
 * - exit: to exit-status;
 * - close: exit-status to the channel's close;
 * - trailers: the channel's close to the end of the RPC's stream (exited event, trailers).
 */
import type { ExecPhases } from "../ssh/exec-types.js";

export interface ExecPhaseStamps extends ExecPhases {
  arrived?: number;
  handler: number;
  pinned?: number;
  exitedSent?: number;
}

type Step = keyof ExecPhaseStamps | "end";

const ORDER: Array<[string, Step]> = [
  ["decode", "handler"],
  ["pin", "pinned"],
  ["channel", "channelOpen"],
  ["header", "header"],
  ["first_output", "firstOutput"],
  ["exit", "exitStatus"],
  ["close", "closed"],
  ["trailers", "end"],
];

/** Phase durations in ms (3 decimals) from the stamps, each since the last step that happened; `total` from arrival to `end`. */
export function phaseDurations(s: ExecPhaseStamps, end: number): Record<string, number> {
  const out: Record<string, number> = {};
  const r = (ms: number) => Math.round(ms * 1000) / 1000;
  // The trailers phase ends at `end`, and only for an Exec that sent its exited event.
  const steps: Partial<Record<Step, number>> = { ...s, end: s.exitedSent === undefined ? undefined : end };
  let last = s.arrived ?? s.handler;
  for (const [name, step] of ORDER) {
    const at = steps[step];
    if (at === undefined) continue;
    out[name] = r(at - last);
    last = at;
  }
  out.total = r(end - (s.arrived ?? s.handler));
  return out;
}
