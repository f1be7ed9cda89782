/**
 * Whether an SSH server answers at host:port: one TCP connection, and its
 * first 8 bytes must be "SSH-2.0-" (RFC 4253 §4.2) within the timeout. It
 * decides on those bytes alone, so whatever a sandbox sends on that port
 * never grows more than one chunk in memory.
 */
import net from "node:net";

const BANNER = "SSH-2.0-";

export function sshBannerAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let seen = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("data", (d: Buffer) => {
      seen = (seen + d.toString("latin1")).slice(0, BANNER.length);
      if (seen.length === BANNER.length) done(seen === BANNER);
      else if (!BANNER.startsWith(seen)) done(false);
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}
