/** SignalCommand: a named signal to a kept command's process group. */
import type { HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SignalCommandRequest, SignalCommandResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../../errors.js";
import { signalKept } from "../../ssh/commands/kept.js";
import type { ApiDeps } from "../deps.js";
import { resolveCommand } from "./command-ref.js";

/** The names sbx-run knows (with or without SIG, any case). */
export const SIGNALS = ["HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "CONT", "STOP", "TSTP", "WINCH", "ALRM", "PIPE"];

export function signalName(s: string): string {
  const name = s.trim().toUpperCase().replace(/^SIG/, "");
  if (!SIGNALS.includes(name)) throw invalidArgument("signal", `unknown signal ${JSON.stringify(s.slice(0, 40))} (one of ${SIGNALS.map((n) => `SIG${n}`).join(", ")})`);
  return `SIG${name}`;
}

export async function signalCommand(deps: ApiDeps, req: SignalCommandRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof SignalCommandResponseSchema>> {
  const name = signalName(req.signal);
  const c = await resolveCommand(deps, ctx, req.command);
  try {
    await signalKept(deps.registry, c.sandboxId, c.execId, name);
    return {};
  } finally {
    c.release();
  }
}
