/** MakeDir: one directory, or mkdir -p with `parents`. */
import { posix } from "node:path";
import { alreadyExists, invalidArgument, notFound } from "../../errors.js";
import type { SessionRegistry } from "../session-registry.js";
import { notADirectory } from "../sftp-session.js";
import { refineFailure, validatePath, withSession } from "./common.js";

export async function makeDir(registry: SessionRegistry, sandboxId: string, o: { path: string; parents?: boolean; mode?: number; signal?: AbortSignal }): Promise<void> {
  const path = validatePath(o.path);
  const mode = o.mode ?? 0o755;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw invalidArgument("mode", "must be permission bits (0 to 0o7777)");
  await withSession(registry, sandboxId, o.signal, async (s) => {
    try {
      const existing = await s.stat(path);
      if (existing) {
        if (o.parents && existing.isDirectory()) return;
        throw alreadyExists(`${JSON.stringify(path)} already exists`);
      }
      const parent = posix.dirname(path);
      if (o.parents) {
        if (parent !== path) await s.mkdirs(parent);
      } else {
        const p = await s.stat(parent);
        if (!p) throw notFound(`parent directory ${JSON.stringify(parent)} does not exist`);
        if (!p.isDirectory()) throw notADirectory(parent);
      }
      try {
        await s.call<void>("mkdir", path, (cb) => s.sftp.mkdir(path, { mode }, cb));
      } catch (err) {
        // Lost a race: someone made it meanwhile.
        const again = await s.stat(path);
        if (again) {
          if (o.parents && again.isDirectory()) return;
          throw alreadyExists(`${JSON.stringify(path)} already exists`);
        }
        throw err;
      }
      // mkdir(2) applies the sftp-server's umask: the asked mode is set explicitly.
      await s.call<void>("chmod", path, (cb) => s.sftp.chmod(path, mode, cb));
    } catch (err) {
      throw await refineFailure(s, err, "mkdir", path);
    }
  });
}
