/**
 * What every kept-command RPC does first: the sandbox must be the caller's
 * (access.ts) and live (its lease pinned for the call), and the CommandRef is
 * resolved to an exec id (a tag through the sandbox's list).
 */
import type { HandlerContext } from "@connectrpc/connect";
import type { CommandRef } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import { invalidArgument } from "../../errors.js";
import { checkTag, resolveTag } from "../../ssh/commands/kept.js";
import { useSandbox } from "../access.js";
import { requireSandboxId } from "../convert.js";
import type { ApiDeps } from "../deps.js";
import { noteSandbox } from "../rpc-log.js";

const EXEC_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface ResolvedCommand {
  sandboxId: string;
  execId: string;
  /** Unpins the sandbox's lease (idempotent). */
  release(): void;
}

export async function resolveCommand(deps: ApiDeps, ctx: HandlerContext, ref: CommandRef | undefined): Promise<ResolvedCommand> {
  if (!ref) throw invalidArgument("command", "required");
  const sandboxId = requireSandboxId(ref.sandboxId);
  noteSandbox(ctx, sandboxId);
  if (ref.command.case === "execId" && !EXEC_ID.test(ref.command.value)) throw invalidArgument("command.exec_id", "not an exec id");
  if (ref.command.case === "tag") checkTag(ref.command.value);
  if (ref.command.case === undefined || ref.command.value === "") throw invalidArgument("command", "set exec_id or tag");
  const release = await useSandbox(deps, ctx, sandboxId);
  try {
    const execId = ref.command.case === "execId" ? ref.command.value : await resolveTag(deps.registry, sandboxId, ref.command.value);
    return { sandboxId, execId, release };
  } catch (err) {
    release();
    throw err;
  }
}
