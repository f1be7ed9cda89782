/**
 * Coalesces the writes a socket gets within one tick into one syscall. ssh2
 * writes every SSH packet on its own, and sshd takes channel data in packets
 * of at most 32 KiB: one 255 KiB SFTP WRITE became 8 writes, each a trip
 * through the kernel's TCP stack. Corking on the first write of a tick and
 * uncorking on the next tick sends them as one writev. Nothing waits longer
 * than the current tick, so latency is unchanged (TCP_NODELAY stays on).
 */
import type { Socket } from "node:net";

export function batchWrites(socket: Socket): void {
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: Parameters<Socket["write"]>) {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Socket["write"];
}
