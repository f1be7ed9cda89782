/**
 * Writes a command's stdin to its channel with backpressure, then EOF.
 *
 * ssh2's Channel._write silently drops the write callback once the remote has
 * closed, so 'drain' may never come: every wait also ends on channel close,
 * and the source stops being read as soon as the command is gone.
 */
import type { ClientChannel } from "ssh2";
import { abortable } from "./abortable.js";
import { drainOrClose } from "./drain.js";

export async function feedStdin(
  channel: ClientChannel,
  stdin: Uint8Array | AsyncIterable<Uint8Array> | undefined,
): Promise<void> {
  if (stdin === undefined) {
    channel.end();
    return;
  }
  if (stdin instanceof Uint8Array) {
    channel.end(Buffer.from(stdin.buffer, stdin.byteOffset, stdin.byteLength));
    return;
  }
  const gone = new AbortController();
  const onClose = () => gone.abort();
  channel.once("close", onClose);
  try {
    for await (const chunk of abortable(stdin, gone.signal, "stdin")) {
      if (chunk.byteLength === 0) continue;
      if (!channel.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
        await drainOrClose(channel);
      }
      if (gone.signal.aborted) break;
    }
  } catch (err) {
    if (!gone.signal.aborted) throw err; // the command ended first: not a stdin failure
  } finally {
    channel.off("close", onClose);
  }
  if (!gone.signal.aborted) channel.end();
}
