import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { KeepAliveRequest, KeepAliveResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { durationToMs, requireSandboxId } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { visibleSandbox } from "./access.js";

export async function keepAlive(deps: ApiDeps, req: KeepAliveRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof KeepAliveResponseSchema>> {
  noteSandbox(ctx, req.sandboxId);
  const id = requireSandboxId(req.sandboxId);
  await visibleSandbox(deps, ctx, id);
  const expires = await deps.manager.keepAlive(id, durationToMs(req.leaseTtl, "lease_ttl"));
  return { leaseExpiresAt: timestampFromDate(expires) };
}
