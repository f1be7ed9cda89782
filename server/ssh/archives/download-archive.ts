/**
 * DownloadArchive: `tar -c` of a directory in the sandbox, as the sandbox
 * user, streamed with backpressure (the SSH window closes while the client is
 * slow), optionally gzipped here. tar's output comes from the sandbox: every
 * header is checked as it passes (tar-check.ts), so no entry the client
 * unpacks lands outside its directory, and an invalid stream ends the call
 * with an error instead of a `done`.
 */
import { createHash } from "node:crypto";
import { cancelled, internal, isSandboxError, notFound } from "../../errors.js";
import { exec } from "../exec.js";
import type { ExitedEvent } from "../exec-types.js";
import type { SessionRegistry } from "../session-registry.js";
import { sftpPool } from "../sftp-pool.js";
import { notADirectory, validatePath } from "../sftp-session.js";
import { ArchiveRefusal, TarChecker } from "./tar-check.js";
import { tarFailure } from "./tar-errors.js";
import { gzip } from "./zlib-stream.js";

export interface DownloadArchiveOptions {
  path: string;
  gzip?: boolean;
  signal?: AbortSignal;
}

export interface DownloadArchiveDone {
  /** Bytes sent (after gzip, if asked). */
  bytes: number;
  sha256: string;
  entries: number;
  /** tar exited 1: a file changed while it was read (it is in the archive as read). */
  changedWhileReading: boolean;
}

export type DownloadArchiveItem = { data: Buffer } | { done: DownloadArchiveDone };

/** tar's status for "some files differ" (changed as read): the archive is complete. */
const TAR_FILES_CHANGED = 1;

export async function* downloadArchive(registry: SessionRegistry, sandboxId: string, o: DownloadArchiveOptions): AsyncGenerator<DownloadArchiveItem> {
  const path = validatePath(o.path);
  await sftpPool(registry).use(sandboxId, o.signal, async (sftp) => {
    const st = await sftp.stat(path);
    if (!st) throw notFound(`download archive ${JSON.stringify(path)}: no such directory`);
    if (!st.isDirectory()) throw notADirectory(path);
  });
  const checker = new TarChecker({ allowSpecial: true });
  let exited: ExitedEvent | undefined;
  const stderr: Buffer[] = [];
  const stream = exec(registry, sandboxId, {
    argv: ["tar", "-c", "-f", "-", "-C", path, "."], env: { LC_ALL: "C" },
    maxStderrBytes: 16384, onOutputLimit: "discard", signal: o.signal,
  });
  async function* tarOutput(): AsyncGenerator<Buffer> {
    for await (const ev of stream) {
      if (ev.type === "stdout") {
        try {
          checker.push(ev.data);
        } catch (err) {
          if (err instanceof ArchiveRefusal) throw internal(`download archive ${JSON.stringify(path)}: the sandbox's tar wrote an invalid archive (${err.message})`);
          throw err;
        }
        yield ev.data;
      } else if (ev.type === "stderr") {
        stderr.push(ev.data);
      } else if (ev.type === "exited") {
        exited = ev;
      }
    }
  }
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    for await (const chunk of o.gzip ? gzip(tarOutput()) : tarOutput()) {
      hash.update(chunk);
      bytes += chunk.length;
      yield { data: chunk };
    }
  } catch (err) {
    if (o.signal?.aborted && !isSandboxError(err, "invalid_argument")) throw cancelled("download archive: cancelled");
    throw err;
  } finally {
    stream.cancel();
  }
  if (!exited || exited.reason === "cancelled" || o.signal?.aborted) throw cancelled("download archive: cancelled");
  if (exited.exitCode !== 0 && exited.exitCode !== TAR_FILES_CHANGED) throw tarFailure("download archive", path, exited.exitCode, Buffer.concat(stderr));
  if (!checker.ended) throw internal(`download archive ${JSON.stringify(path)}: tar's output ended without its end-of-archive marker`);
  yield { done: { bytes, sha256: hash.digest("hex"), entries: checker.entries, changedWhileReading: exited.exitCode === TAR_FILES_CHANGED } };
}
