/** WriteInput (unary, every protocol) and StreamInput (client streaming): bytes to a kept command's stdin. */
import type { HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StreamInputRequest, StreamInputResponseSchema, WriteInputRequest, WriteInputResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument, isSandboxError } from "../../errors.js";
import { writeKeptInput } from "../../ssh/commands/kept.js";
import type { ApiDeps } from "../deps.js";
import { resolveCommand } from "./command-ref.js";

/** One message's bytes, like an Upload chunk. */
const MAX_INPUT_MESSAGE = 4 * 2 ** 20;

export async function writeInput(deps: ApiDeps, req: WriteInputRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof WriteInputResponseSchema>> {
  if (req.data.length > MAX_INPUT_MESSAGE) throw invalidArgument("data", `at most ${MAX_INPUT_MESSAGE} bytes a call (use StreamInput for more)`);
  const c = await resolveCommand(deps, ctx, req.command);
  try {
    await writeKeptInput(deps.registry, c.sandboxId, c.execId, req.data, req.close, ctx.signal);
    return {};
  } finally {
    c.release();
  }
}

export async function streamInput(deps: ApiDeps, requests: AsyncIterable<StreamInputRequest>, ctx: HandlerContext): Promise<MessageInitShape<typeof StreamInputResponseSchema>> {
  const it = requests[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw invalidArgument("command", "the first message must name the command");
  const c = await resolveCommand(deps, ctx, first.value.command);
  let close = false;
  async function* data(): AsyncGenerator<Uint8Array> {
    for (let m = first.value!; ; ) {
      if (m.data.length > MAX_INPUT_MESSAGE) throw invalidArgument("data", `at most ${MAX_INPUT_MESSAGE} bytes a message`);
      if (m.data.length) yield m.data;
      if (m.close) {
        close = true;
        return;
      }
      const r = await it.next();
      if (r.done) return;
      m = r.value;
    }
  }
  try {
    // The close flag is only known at the end: the helper closes stdin after the stream when asked (--close).
    const stream = data();
    await writeKeptInput(deps.registry, c.sandboxId, c.execId, stream, false, ctx.signal);
    if (close) {
      // Everything was delivered; a command that has ended meanwhile (an `exit` just sent) has no stdin left to close.
      await writeKeptInput(deps.registry, c.sandboxId, c.execId, new Uint8Array(0), true, ctx.signal).catch((err: unknown) => {
        if (!isSandboxError(err, "failed_precondition") || !/finished/.test((err as Error).message)) throw err;
      });
    }
    return {};
  } finally {
    c.release();
  }
}
