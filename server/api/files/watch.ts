/** Watch (server streaming): a ready message, then batches of changes until the client cancels. */
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { WatchEventType, type WatchRequest, type WatchResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { watchDir, type WatchChangeEvent } from "../../ssh/files/index.js";
import { useSandbox } from "../access.js";
import { requireSandboxId } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";

const TYPES: Record<WatchChangeEvent["type"], WatchEventType> = {
  created: WatchEventType.CREATED,
  modified: WatchEventType.MODIFIED,
  removed: WatchEventType.REMOVED,
  renamed: WatchEventType.RENAMED,
  overflow: WatchEventType.OVERFLOW,
};

function timestamp(ms: number) {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

export async function* watch(deps: ApiDeps, req: WatchRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof WatchResponseSchema>> {
  const id = requireSandboxId(req.sandboxId);
  noteSandbox(ctx, id);
  // The lease is pinned for the whole stream: a watched sandbox is in use.
  const release = await useSandbox(deps, ctx, id);
  ctx.signal.addEventListener("abort", release, { once: true });
  try {
    for await (const item of watchDir(deps.registry, id, { path: req.path, recursive: req.recursive, signal: ctx.signal })) {
      if ("ready" in item) yield { ready: true };
      else {
        yield {
          events: item.events.map((e) => ({ path: e.path, type: TYPES[e.type], oldPath: e.oldPath, time: timestamp(e.timeMs), isDir: e.isDir })),
        };
      }
    }
  } catch (err) {
    if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
    throw err;
  } finally {
    release();
  }
}
