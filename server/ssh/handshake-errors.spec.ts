/**
 * A sandbox whose port 22 accepts and then resets or closes before sending
 * its SSH banner (a stopping container, an overloaded sshd) makes ssh2 emit
 * two errors: the socket's ECONNRESET, then "Connection lost before
 * handshake". Both must end as one UNAVAILABLE for the caller; a second
 * 'error' with no listener would be an uncaught exception, which crashes
 * sandboxd (vitest fails the run on one).
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { generateEd25519 } from "../providers/local/keys.js";
import { SessionRegistry } from "./session-registry.js";

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listen(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer((s) => {
    s.on("error", () => {});
    onSocket(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return (server.address() as AddressInfo).port;
}

describe("an SSH connection lost during the handshake", () => {
  const key = generateEd25519();
  const cases: Array<[string, (s: Socket) => void]> = [
    ["reset before the banner", (s) => setTimeout(() => s.resetAndDestroy(), 20)],
    ["closed before the banner", (s) => setTimeout(() => s.destroy(), 20)],
    ["reset after the banner", (s) => {
      s.write("SSH-2.0-OpenSSH_9.2\r\n");
      setTimeout(() => s.resetAndDestroy(), 20);
    }],
  ];
  for (const [name, behave] of cases) {
    it(`${name}: one UNAVAILABLE, nothing uncaught`, async () => {
      const port = await listen(behave);
      const registry = new SessionRegistry();
      registry.register("sbx-t", { host: "127.0.0.1", port, username: "sandbox", privateKey: Buffer.from(key.privateKey), hostKey: key.publicKey });
      const err = await registry.openExec("sbx-t", "true").then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ kind: "unavailable" });
      // ssh2's second error comes with the socket's close, after the first one settled the connect.
      await new Promise((r) => setTimeout(r, 100));
      await registry.closeAll();
    });
  }
});
