/** ResizePty: a PTY command's new window size. */
import type { HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ResizePtyRequest, ResizePtyResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { resizeKept } from "../../ssh/commands/kept.js";
import type { ApiDeps } from "../deps.js";
import { resolveCommand } from "./command-ref.js";
import { ptySize } from "./pty.js";

export async function resizePty(deps: ApiDeps, req: ResizePtyRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof ResizePtyResponseSchema>> {
  const size = ptySize(req.size, "size");
  const c = await resolveCommand(deps, ctx, req.command);
  try {
    await resizeKept(deps.registry, c.sandboxId, c.execId, size.rows, size.cols);
    return {};
  } finally {
    c.release();
  }
}
