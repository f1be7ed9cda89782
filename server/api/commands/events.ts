/** A kept command's events as the proto's ExecResponse / AttachResponse (the same shape). */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ExecExited_Reason, type ExecExitedSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { KeptExit } from "../../ssh/commands/frames.js";
import type { KeptEvent } from "../../ssh/commands/kept.js";
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

/** An output or exit event, as both ExecResponse and AttachResponse take it. */
export type KeptResponse =
  | { offset: bigint; event: { case: "stdout" | "stderr"; value: Uint8Array } }
  | { event: { case: "exited"; value: MessageInitShape<typeof ExecExitedSchema> } };

/**
 * The output and exit events of an attach, each chunk with its offset. Ends
 * with the RPC's own status when the RPC was aborted (a detach, a deadline).
 */
export async function* keptResponses(events: AsyncIterable<KeptEvent>, ctx: HandlerContext): AsyncGenerator<KeptResponse> {
  try {
    for await (const ev of events) {
      if (ev.type === "exited") yield { event: { case: "exited", value: keptExited(ev.exit) } };
      else yield { offset: BigInt(ev.offset), event: { case: ev.type, value: ev.data } };
    }
  } catch (err) {
    if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
    throw err;
  }
  if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
}
