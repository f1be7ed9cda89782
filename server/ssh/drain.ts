/** Waits until a writable drains or closes (a closed one never drains: waiting for 'drain' alone could hang). */
import type { EventEmitter } from "node:events";

export function drainOrClose(w: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off("drain", done);
      w.off("close", done);
      resolve();
    };
    w.on("drain", done);
    w.on("close", done);
  });
}
