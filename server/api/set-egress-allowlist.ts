import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { SetEgressAllowlistRequest, SetEgressAllowlistResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { requireSandboxId, sandboxToProto } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";

export async function setEgressAllowlist(deps: ApiDeps, req: SetEgressAllowlistRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof SetEgressAllowlistResponseSchema>> {
  noteSandbox(ctx, req.sandboxId);
  return { sandbox: sandboxToProto(await deps.manager.setEgressAllowlist(requireSandboxId(req.sandboxId), [...req.entries])) };
}
