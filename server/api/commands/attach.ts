/** Attach: a kept command's output from given offsets (stored, then live), then its exit. Cancelling detaches. */
import type { HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AttachRequest, AttachResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { notFound } from "../../errors.js";
import { attachKept, listKept } from "../../ssh/commands/kept.js";
import { u64 } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { resolveCommand } from "./command-ref.js";
import { keptResponses } from "./events.js";

export async function* attachCommand(deps: ApiDeps, req: AttachRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof AttachResponseSchema>> {
  const c = await resolveCommand(deps, ctx, req.command);
  ctx.signal.addEventListener("abort", c.release, { once: true });
  try {
    const info = (await listKept(deps.registry, c.sandboxId)).find((k) => k.execId === c.execId);
    if (!info) throw notFound(`no command ${c.execId} in sandbox ${c.sandboxId}`);
    yield { event: { case: "started", value: { execId: c.execId, pid: info.pid } } };
    const events = attachKept(deps.registry, c.sandboxId, c.execId, {
      stdoutOffset: u64(req.stdoutOffset, "stdout_offset"), stderrOffset: u64(req.stderrOffset, "stderr_offset"),
      fromEarliest: req.fromEarliest, signal: ctx.signal,
    });
    yield* keptResponses(events, ctx);
  } finally {
    c.release();
  }
}
