/**
 * An async iterable through a zlib transform (gzip or gunzip), with
 * backpressure both ways: the source is read only as fast as the output is
 * consumed, so memory stays at zlib's window plus a chunk or two.
 */
import type { Transform } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import { drainOrClose } from "../drain.js";

const CHUNK = 64 * 1024;

export const gzip = (source: AsyncIterable<Uint8Array>) => through(source, createGzip({ chunkSize: CHUNK, level: 6 }));
export const gunzip = (source: AsyncIterable<Uint8Array>) => through(source, createGunzip({ chunkSize: CHUNK }));

/** zlib's own errors (a corrupt or cut-off stream): Z_DATA_ERROR, Z_BUF_ERROR... */
export function isZlibError(err: unknown): err is Error {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("Z_");
}

async function* through(source: AsyncIterable<Uint8Array>, z: Transform): AsyncGenerator<Buffer> {
  const feed = (async () => {
    try {
      for await (const c of source) {
        if (z.destroyed) return;
        if (!z.write(c)) await drainOrClose(z);
      }
      if (!z.destroyed) z.end();
    } catch (err) {
      z.destroy(err as Error);
    }
  })();
  try {
    for await (const out of z) yield out as Buffer;
  } finally {
    z.destroy();
    await feed;
  }
}
