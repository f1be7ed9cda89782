import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { DestroySandboxRequest, DestroySandboxResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { requireSandboxId } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { visibleSandbox } from "./access.js";
import { callerOf } from "../auth/index.js";
import { isSandboxError } from "../errors.js";

/** Idempotent; the manager also closes the sandbox's SSH connections. */
export async function destroySandbox(deps: ApiDeps, req: DestroySandboxRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof DestroySandboxResponseSchema>> {
  noteSandbox(ctx, req.sandboxId);
  const id = requireSandboxId(req.sandboxId);
  try {
    await visibleSandbox(deps, ctx, id);
  } catch (err) {
    // Destroy is idempotent: a gone sandbox is fine. An admin's call still reaches the provider (a leftover it may hold).
    if (!isSandboxError(err, "not_found")) throw err;
    if (callerOf(ctx).role !== "admin") return {};
  }
  await deps.manager.destroy(id);
  return {};
}
