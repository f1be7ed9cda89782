/** ListCommands: a sandbox's kept commands, running and recently finished. */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListCommandsRequest, ListCommandsResponseSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { listKept } from "../../ssh/commands/kept.js";
import { useSandbox } from "../access.js";
import { requireSandboxId } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";
import { keptExited } from "./events.js";

export async function listCommands(deps: ApiDeps, req: ListCommandsRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof ListCommandsResponseSchema>> {
  const id = requireSandboxId(req.sandboxId);
  noteSandbox(ctx, id);
  const release = await useSandbox(deps, ctx, id);
  try {
    const all = await listKept(deps.registry, id);
    return {
      commands: all.map((c) => ({
        execId: c.execId, tag: c.tag, args: c.args, startedAt: timestampFromDate(c.startedAt), running: c.running,
        ...(c.exit ? { exited: keptExited(c.exit) } : {}),
        stdoutEarliest: BigInt(c.stdout.earliest), stdoutEnd: BigInt(c.stdout.end),
        stderrEarliest: BigInt(c.stderr.earliest), stderrEnd: BigInt(c.stderr.end), pty: c.pty, pid: c.pid,
      })),
    };
  } finally {
    release();
  }
}
