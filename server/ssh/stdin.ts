/**
 * Writes a command's stdin to its channel with backpressure, then EOF.
 *
 * ssh2's Channel._write silently drops the write callback once the remote has
 * closed, so 'drain' may never come: every wait also ends on channel close.
 */
import type { ClientChannel } from "ssh2";

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
  // Stop reading the source as soon as the command is gone, even mid-wait.
  let closed = false;
  let onClose!: () => void;
  const closedP = new Promise<void>((r) => (onClose = () => ((closed = true), r())));
  channel.once("close", onClose);
  const it = stdin[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await Promise.race([it.next(), closedP]);
      if (!r || r.done) break;
      const chunk = r.value;
      if (chunk.byteLength === 0) continue;
      if (!channel.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            channel.off("drain", done);
            resolve();
          };
          channel.on("drain", done);
          void closedP.then(done);
        });
      }
      if (closed) break;
    }
  } finally {
    channel.off("close", onClose);
    if (closed) void it.return?.().catch(() => {});
  }
  if (!closed) channel.end();
}
