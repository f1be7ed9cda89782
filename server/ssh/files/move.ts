/**
 * Move: SSH_FXP_RENAME refuses an existing target (OpenSSH links, then
 * unlinks the source, for files); with `overwrite`, posix-rename@openssh.com
 * replaces the target atomically (rename(2)).
 */
import { alreadyExists, failedPrecondition, invalidArgument } from "../../errors.js";
import type { SessionRegistry } from "../session-registry.js";
import { isGenericFailure, kindOf, lstat, lstatOrUndefined, refineFailure, validatePath, withSession } from "./common.js";

export async function movePath(registry: SessionRegistry, sandboxId: string, o: { from: string; to: string; overwrite?: boolean; signal?: AbortSignal }): Promise<void> {
  const from = validatePath(o.from, "from");
  const to = validatePath(o.to, "to");
  await withSession(registry, sandboxId, o.signal, async (s) => {
    try {
      const src = await lstat(s, from);
      const dst = await lstatOrUndefined(s, to);
      if (dst && !o.overwrite) throw alreadyExists(`${JSON.stringify(to)} already exists (overwrite not set)`);
      try {
        if (o.overwrite) await s.rename(from, to);
        else await s.call<void>("rename", to, (cb) => s.sftp.rename(from, to, cb));
      } catch (err) {
        if (!isGenericFailure(err)) throw err;
        const now = await lstatOrUndefined(s, to);
        if (now && !o.overwrite) throw alreadyExists(`${JSON.stringify(to)} already exists (overwrite not set)`);
        const srcDir = kindOf(src.mode) === "directory";
        if (now && kindOf(now.mode) === "directory" && !srcDir) throw failedPrecondition(`${JSON.stringify(to)} is a directory`);
        if (now && kindOf(now.mode) !== "directory" && srcDir) throw failedPrecondition(`${JSON.stringify(to)} is not a directory`);
        if (now && srcDir) throw failedPrecondition(`${JSON.stringify(to)} is a directory that is not empty`);
        if (srcDir && (to === from || to.startsWith(from.endsWith("/") ? from : `${from}/`))) {
          throw invalidArgument("to", `cannot move ${JSON.stringify(from)} into itself`);
        }
        throw err;
      }
    } catch (err) {
      const refined = await refineFailure(s, err, "move", to);
      throw refined === err ? await refineFailure(s, err, "move", from) : refined;
    }
  });
}
