import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { SetEgressAllowlistRequest, SetEgressAllowlistResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { requireSandboxId, sandboxToProto } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { visibleSandbox } from "./access.js";

export async function setEgressAllowlist(deps: ApiDeps, req: SetEgressAllowlistRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof SetEgressAllowlistResponseSchema>> {
  noteSandbox(ctx, req.sandboxId);
  const id = requireSandboxId(req.sandboxId);
  await visibleSandbox(deps, ctx, id);
  return { sandbox: sandboxToProto(await deps.manager.setEgressAllowlist(id, [...req.entries])) };
}
