/**
 * File transfers: upload (chunked, checksummed), download (checksummed,
 * resumed from the offset reached when the stream is cut), tar archives.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ArchiveFormat, type UploadArchiveRequestSchema, type UploadRequestSchema } from "./gen/sandbox/v1/sandbox_pb.js";
import { Code, IntegrityError, SandboxdError, errorForCode, toSandboxdError } from "./errors.js";
import { num } from "./private/convert.js";
import { callOptions, consume, type CallOptions, type Context } from "./private/context.js";
import { MemorySink, openSink, openSource, type DownloadDest, type Sink, type UploadSource } from "./private/io.js";
import { Backoff, isTransient } from "./private/retry.js";
import { newHasher, type Hasher } from "./private/sha256.js";

export type { DownloadDest, UploadSource } from "./private/io.js";

export interface UploadOptions extends CallOptions {
  /** Permission bits (default 0o644). */
  mode?: number;
  /** Create missing parent directories (default true). */
  makeParents?: boolean;
  /** Called with the bytes sent so far, after each chunk. */
  onProgress?: (bytes: number) => void;
  /** The data's hex sha256 if known in advance: the server refuses other bytes (for bytes it is computed). */
  sha256?: string;
}

export interface UploadResult {
  bytesWritten: number;
  /** Hex sha256 of the bytes written, equal to the one computed here. */
  sha256: string;
}

/** Runs a client-streaming call over a source, keeping the source's own error (a local read error) as the one thrown. */
async function streamUp<Req, Res>(
  source: UploadSource,
  header: Req,
  toData: (chunk: Uint8Array) => Req,
  call: (reqs: AsyncIterable<Req>) => Promise<Res>,
  onProgress: ((bytes: number) => void) | undefined,
): Promise<{ res: Res; sent: number; sha256: string; size: number | undefined }> {
  const src = await openSource(source);
  const hasher = await newHasher();
  let sent = 0;
  let localError: unknown;
  async function* reqs(): AsyncGenerator<Req> {
    yield header;
    try {
      for await (const chunk of src.chunks) {
        hasher.update(chunk);
        yield toData(chunk);
        sent += chunk.length;
        onProgress?.(sent);
      }
    } catch (e) {
      localError = e;
      throw e;
    }
  }
  let res: Res;
  try {
    res = await call(reqs());
  } catch (e) {
    throw localError ?? toSandboxdError(e);
  }
  return { res, sent, sha256: hasher.digest(), size: src.size };
}

export async function upload(ctx: Context, sandboxId: string, path: string, source: UploadSource, o: UploadOptions = {}): Promise<UploadResult> {
  let expectedSha256 = o.sha256 ?? "";
  if (!expectedSha256 && source instanceof Uint8Array) {
    const h = await newHasher();
    h.update(source);
    expectedSha256 = h.digest();
  }
  const size = source instanceof Uint8Array ? source.length : undefined;
  const rpc = await ctx.rpc();
  const src = typeof source === "string" ? await openSizeOf(source) : size;
  const header: MessageInitShape<typeof UploadRequestSchema> = {
    part: {
      case: "header",
      value: {
        sandboxId,
        path,
        mode: o.mode ?? 0o644,
        makeParents: o.makeParents ?? true,
        ...(src !== undefined && { expectedSize: BigInt(src) }),
        expectedSha256,
      },
    },
  };
  const { res, sent, sha256 } = await streamUp(
    source,
    header,
    (chunk): MessageInitShape<typeof UploadRequestSchema> => ({ part: { case: "data", value: chunk } }),
    (reqs) => rpc.upload(reqs, callOptions(ctx, o, false)),
    o.onProgress,
  );
  if (num(res.bytesWritten) !== sent || res.sha256 !== sha256) {
    throw new IntegrityError(
      Code.DataLoss,
      `upload ${path}: the server wrote ${res.bytesWritten} bytes with sha256 ${res.sha256}; sent ${sent} bytes with sha256 ${sha256}`,
    );
  }
  return { bytesWritten: sent, sha256 };
}

async function openSizeOf(path: string): Promise<number | undefined> {
  try {
    const m = "node:fs/promises";
    const fsp = (await import(/* @vite-ignore */ m)) as typeof import("node:fs/promises");
    return (await fsp.stat(path)).size;
  } catch {
    return undefined; // openSource reports it
  }
}

export interface DownloadOptions extends CallOptions {
  /** Called with the bytes received so far (counting from 0, resumes included). */
  onProgress?: (bytes: number) => void;
  /**
   * Resume after a cut-off stream (UNAVAILABLE, ABORTED, INTERNAL, or an end
   * without `done`) with a new Download from the offset reached, under the
   * client's retry policy (default true).
   */
  resume?: boolean;
}

export interface DownloadResult {
  /** The file's size. */
  size: number;
  /** Its permission bits. */
  mode: number;
  /** Hex sha256 of all bytes received (each part was checked against the server's). */
  sha256: string;
  /** How many Download calls it took (1 without a cut). */
  attempts: number;
}

/** Cuts a resumed download continues after. */
function resumable(err: unknown): boolean {
  return isTransient(err) || (err instanceof SandboxdError && err.code === Code.Internal);
}

export async function download(ctx: Context, sandboxId: string, path: string, sink: Sink, o: DownloadOptions = {}): Promise<DownloadResult> {
  const rpc = await ctx.rpc();
  // The whole file's hash: the first part's until a part is cut off, then its own (each byte hashed once without resumes).
  let whole: Hasher | undefined;
  let offset = 0;
  let size: number | undefined;
  let mode = 0;
  let attempts = 0;
  const backoff = ctx.retry && o.resume !== false ? new Backoff(ctx.retry, o.signal) : undefined;
  try {
    for (;;) {
      attempts++;
      const part = await newHasher();
      let partBytes = 0;
      let done: { bytes: bigint; sha256: string } | undefined;
      try {
        const req = { sandboxId, path, offset: BigInt(offset) };
        for await (const msg of consume((signal) => rpc.download(req, callOptions(ctx, o, false, signal)), o.signal)) {
          const p = msg.part;
          if (p.case === "info") {
            const s = num(p.value.size);
            if (size !== undefined && s !== size) {
              throw new IntegrityError(Code.DataLoss, `download ${path}: the file changed size from ${size} to ${s} while resuming`);
            }
            if (num(p.value.offset) !== offset) {
              throw new IntegrityError(Code.DataLoss, `download ${path}: data starts at ${p.value.offset}, asked for ${offset}`);
            }
            size = s;
            mode = p.value.mode;
          } else if (p.case === "data") {
            await sink.write(p.value);
            whole?.update(p.value);
            part.update(p.value);
            partBytes += p.value.length;
            offset += p.value.length;
            o.onProgress?.(offset);
          } else if (p.case === "done") {
            done = p.value;
          }
        }
        if (!done) throw errorForCode(Code.Unavailable, `download ${path}: the stream ended without its done message at byte ${offset}`);
      } catch (e) {
        const err = toSandboxdError(e);
        if (!backoff || !resumable(err) || o.signal?.aborted) throw err;
        whole ??= part.copy();
        if (partBytes > 0) backoff.reset();
        if (!(await backoff.next())) throw err;
        continue;
      }
      const partSha = part.digest();
      if (num(done.bytes) !== partBytes || done.sha256 !== partSha || offset !== size) {
        throw new IntegrityError(
          Code.DataLoss,
          `download ${path}: the server sent ${done.bytes} bytes with sha256 ${done.sha256}; received ${partBytes} bytes with sha256 ${partSha} (${offset} of ${size})`,
        );
      }
      await sink.close();
      return { size, mode, sha256: whole ? whole.digest() : partSha, attempts };
    }
  } catch (e) {
    await sink.abort().catch(() => {});
    throw e;
  }
}

export async function downloadTo(ctx: Context, sandboxId: string, path: string, dest: DownloadDest, o: DownloadOptions = {}): Promise<DownloadResult> {
  return download(ctx, sandboxId, path, await openSink(dest), o);
}

export async function readFile(ctx: Context, sandboxId: string, path: string, o: DownloadOptions = {}): Promise<Uint8Array> {
  const sink = new MemorySink();
  await download(ctx, sandboxId, path, sink, o);
  return sink.bytes();
}

export interface UploadArchiveOptions extends CallOptions {
  /** The source is a gzip-compressed tar (.tar.gz); else a plain tar. */
  gzip?: boolean;
  /** Replace an existing directory (else AlreadyExistsError). */
  replace?: boolean;
  /** Create missing parents (default true). */
  makeParents?: boolean;
  onProgress?: (bytes: number) => void;
}

export interface UploadArchiveResult {
  entries: number;
  archiveBytes: number;
  fileBytes: number;
}

export async function uploadArchive(
  ctx: Context,
  sandboxId: string,
  dir: string,
  source: UploadSource,
  o: UploadArchiveOptions = {},
): Promise<UploadArchiveResult> {
  const rpc = await ctx.rpc();
  const header: MessageInitShape<typeof UploadArchiveRequestSchema> = {
    part: {
      case: "header",
      value: {
        sandboxId,
        path: dir,
        format: o.gzip ? ArchiveFormat.TAR_GZIP : ArchiveFormat.TAR,
        replace: o.replace ?? false,
        makeParents: o.makeParents ?? true,
      },
    },
  };
  const { res, sent } = await streamUp(
    source,
    header,
    (chunk): MessageInitShape<typeof UploadArchiveRequestSchema> => ({ part: { case: "data", value: chunk } }),
    (reqs) => rpc.uploadArchive(reqs, callOptions(ctx, o, false)),
    o.onProgress,
  );
  if (num(res.archiveBytes) !== sent) {
    throw new IntegrityError(Code.DataLoss, `upload archive ${dir}: the server received ${res.archiveBytes} bytes, sent ${sent}`);
  }
  return { entries: num(res.entries), archiveBytes: num(res.archiveBytes), fileBytes: num(res.fileBytes) };
}

export interface DownloadArchiveOptions extends CallOptions {
  /** Ask for a .tar.gz instead of a plain tar. */
  gzip?: boolean;
  onProgress?: (bytes: number) => void;
}

export interface DownloadArchiveResult {
  bytes: number;
  sha256: string;
  entries: number;
  /** A file changed while tar read it (its contents may be mixed). */
  changedWhileReading: boolean;
}

export async function downloadArchive(
  ctx: Context,
  sandboxId: string,
  dir: string,
  sink: Sink,
  o: DownloadArchiveOptions = {},
): Promise<DownloadArchiveResult> {
  const rpc = await ctx.rpc();
  const h = await newHasher();
  let bytes = 0;
  try {
    let done: { bytes: bigint; sha256: string; entries: bigint; changedWhileReading: boolean } | undefined;
    const req = { sandboxId, path: dir, format: o.gzip ? ArchiveFormat.TAR_GZIP : ArchiveFormat.TAR };
    for await (const msg of consume((signal) => rpc.downloadArchive(req, callOptions(ctx, o, false, signal)), o.signal)) {
      if (msg.part.case === "data") {
        await sink.write(msg.part.value);
        h.update(msg.part.value);
        bytes += msg.part.value.length;
        o.onProgress?.(bytes);
      } else if (msg.part.case === "done") {
        done = msg.part.value;
      }
    }
    if (!done) throw errorForCode(Code.Unavailable, `download archive ${dir}: the stream ended without its done message`);
    const sha256 = h.digest();
    if (num(done.bytes) !== bytes || done.sha256 !== sha256) {
      throw new IntegrityError(Code.DataLoss, `download archive ${dir}: the server sent ${done.bytes} bytes with sha256 ${done.sha256}; received ${bytes} with ${sha256}`);
    }
    await sink.close();
    return { bytes, sha256, entries: num(done.entries), changedWhileReading: done.changedWhileReading };
  } catch (e) {
    await sink.abort().catch(() => {});
    throw toSandboxdError(e);
  }
}
