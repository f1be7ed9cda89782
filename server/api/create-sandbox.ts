import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { CreateSandboxRequest, CreateSandboxResponseSchema } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { durationToMs, sandboxToProto } from "./convert.js";
import type { ApiDeps } from "./deps.js";
import { noteSandbox } from "./rpc-log.js";
import { callerOf } from "../auth/index.js";
import { invalidArgument } from "../errors.js";

export async function createSandbox(deps: ApiDeps, req: CreateSandboxRequest, ctx: HandlerContext): Promise<MessageInitShape<typeof CreateSandboxResponseSchema>> {
  const r = req.resources;
  // sandboxd's own labels (a warm pool member's mark) cannot be forged by a caller.
  const reserved = Object.keys(req.labels).find((k) => k.startsWith("sandboxd."));
  if (reserved) throw invalidArgument("labels", `the prefix 'sandboxd.' is reserved (got '${reserved}')`);
  const sandbox = await deps.manager.create(
    {
      resources: { cores: r?.cores ?? 0, memoryMiB: r?.memoryMib ?? 0, diskGiB: r?.diskGib ?? 0 },
      internet: req.internetAccess,
      labels: { ...req.labels },
      leaseTtlMs: durationToMs(req.leaseTtl, "lease_ttl"),
      requestId: req.requestId,
      tenant: callerOf(ctx).tenant,
    },
    ctx.signal,
  );
  noteSandbox(ctx, sandbox.id);
  return { sandbox: sandboxToProto(sandbox) };
}
