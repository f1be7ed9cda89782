/** A kept command's exit record as the proto's ExecExited. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ExecExited_Reason, type ExecExitedSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import type { KeptExit } from "../../ssh/commands/frames.js";
import { msToDuration } from "../convert.js";

export function keptExited(e: KeptExit): MessageInitShape<typeof ExecExitedSchema> {
  return {
    reason: ExecExited_Reason.EXITED,
    exitCode: e.exitCode ?? undefined,
    // A supervisor that died without recording the end: the command is gone, how is unknown.
    signal: e.signal ?? (e.lost ? "LOST" : ""),
    duration: msToDuration(e.durationMs),
  };
}
