/**
 * Byte sources and sinks for uploads and downloads: a local path (Node's
 * fs, imported only when used), bytes, an (async) iterable of chunks such as
 * a Node Readable, a Node Writable or a WHATWG WritableStream.
 */

/** Data messages are at most this big (the server takes up to 4 MiB). */
export const CHUNK_SIZE = 1024 * 1024;

/** What an upload reads: a local file path, bytes, or chunks (a Node Readable, an async generator...). */
export type UploadSource = string | Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Where a download goes: a local file path, a Node Writable or a WHATWG WritableStream. */
export type DownloadDest = string | NodeWritableLike | WritableStream<Uint8Array>;

/** The part of a Node stream.Writable used here. */
export interface NodeWritableLike {
  write(chunk: Uint8Array, cb?: (err?: Error | null) => void): boolean;
  once(event: "drain" | "error" | "close", listener: (...args: unknown[]) => void): unknown;
  removeListener(event: "drain" | "error" | "close", listener: (...args: unknown[]) => void): unknown;
  end(cb?: () => void): unknown;
}

type Fs = typeof import("node:fs");
type FsPromises = typeof import("node:fs/promises");

async function nodeFs(): Promise<{ fs: Fs; fsp: FsPromises }> {
  const a = "node:fs";
  const b = "node:fs/promises";
  try {
    return { fs: (await import(/* @vite-ignore */ a)) as Fs, fsp: (await import(/* @vite-ignore */ b)) as FsPromises };
  } catch (e) {
    throw new Error("a local path needs Node's fs; pass bytes or a stream instead", { cause: e });
  }
}

export interface OpenedSource {
  /** Total bytes, when known in advance. */
  size?: number;
  chunks: AsyncIterable<Uint8Array>;
}

/** Splits chunks above CHUNK_SIZE; copies nothing. */
async function* rechunk(src: AsyncIterable<unknown> | Iterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    const chunk = typeof c === "string" ? new TextEncoder().encode(c) : (c as Uint8Array);
    if (!(chunk instanceof Uint8Array)) throw new TypeError("upload source yielded something other than bytes");
    for (let off = 0; off < chunk.length; off += CHUNK_SIZE) yield chunk.subarray(off, off + CHUNK_SIZE);
  }
}

export async function openSource(src: UploadSource): Promise<OpenedSource> {
  if (typeof src === "string") {
    const { fs, fsp } = await nodeFs();
    const st = await fsp.stat(src);
    return { size: st.size, chunks: rechunk(fs.createReadStream(src, { highWaterMark: CHUNK_SIZE })) };
  }
  if (src instanceof Uint8Array) return { size: src.length, chunks: rechunk([src]) };
  if (src && (Symbol.asyncIterator in src || Symbol.iterator in src)) return { chunks: rechunk(src) };
  throw new TypeError("upload source: a path, a Uint8Array or an (async) iterable of Uint8Array");
}

export interface Sink {
  write(chunk: Uint8Array): Promise<void>;
  /** Everything written; flush and close. */
  close(): Promise<void>;
  /** Failed: release what is held (a partial file stays). */
  abort(): Promise<void>;
}

/** Collects chunks in memory; `bytes()` joins them. */
export class MemorySink implements Sink {
  #chunks: Uint8Array[] = [];
  #size = 0;
  async write(chunk: Uint8Array): Promise<void> {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }
  async close(): Promise<void> {}
  async abort(): Promise<void> {}
  bytes(): Uint8Array {
    if (this.#chunks.length === 1) return this.#chunks[0]!;
    const out = new Uint8Array(this.#size);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

function isNodeWritable(d: unknown): d is NodeWritableLike {
  return typeof d === "object" && d !== null && typeof (d as NodeWritableLike).write === "function" && typeof (d as NodeWritableLike).once === "function";
}

export async function openSink(dest: DownloadDest): Promise<Sink> {
  if (typeof dest === "string") {
    const { fsp } = await nodeFs();
    const fh = await fsp.open(dest, "w");
    return {
      write: async (c) => {
        let off = 0;
        while (off < c.length) off += (await fh.write(c, off, c.length - off)).bytesWritten;
      },
      close: () => fh.close(),
      abort: () => fh.close(),
    };
  }
  if (isNodeWritable(dest)) {
    let failed: unknown;
    const onError = (e: unknown) => (failed ??= e);
    dest.once("error", onError);
    return {
      write: async (c) => {
        if (failed) throw failed;
        if (!dest.write(c)) {
          await new Promise<void>((resolve, reject) => {
            const done = () => {
              dest.removeListener("drain", done);
              dest.removeListener("close", done);
              dest.removeListener("error", fail);
              resolve();
            };
            const fail = (e: unknown) => {
              dest.removeListener("drain", done);
              dest.removeListener("close", done);
              reject(e);
            };
            dest.once("drain", done);
            dest.once("close", done);
            dest.once("error", fail);
          });
        }
        if (failed) throw failed;
      },
      close: async () => {
        await new Promise<void>((resolve) => dest.end(() => resolve()));
        dest.removeListener("error", onError);
        if (failed) throw failed;
      },
      abort: async () => {
        dest.removeListener("error", onError);
      },
    };
  }
  if (typeof (dest as WritableStream<Uint8Array>).getWriter === "function") {
    const w = (dest as WritableStream<Uint8Array>).getWriter();
    return {
      write: async (c) => {
        await w.ready;
        await w.write(c);
      },
      close: () => w.close(),
      abort: () => w.abort(),
    };
  }
  throw new TypeError("download destination: a path, a Node Writable or a WritableStream");
}
