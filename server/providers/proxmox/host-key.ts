/**
 * A host key per sandbox, learnt once: the template holds no SSH host keys,
 * so each clone's sshd makes its own at first boot. sandboxd reads the key in
 * the create, right after sshd first answers and before any command of the
 * user ran in the container, stores it with the sandbox (the description)
 * and pins it from then on. Clones therefore cannot impersonate each other,
 * which one shared template key could not prevent.
 */
import { Client } from "ssh2";

/** Connects to sshd, takes its ed25519 host key and hangs up before authenticating. */
export function learnHostKey(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      client.removeAllListeners();
      client.on("error", () => {});
      client.end();
      if (key) resolve(`ssh-ed25519 ${key.toString("base64")}`);
      else reject(err ?? new Error(`sshd on ${host}:${port} presented no ed25519 host key`));
    };
    const timer = setTimeout(() => done(new Error(`sshd on ${host}:${port}: no host key within ${timeoutMs} ms`)), timeoutMs);
    client.on("error", (e) => done(e));
    client.on("close", () => done());
    client.connect({
      host, port, username: "sandboxd-host-key", readyTimeout: timeoutMs,
      algorithms: { serverHostKey: ["ssh-ed25519"] },
      // Refusing the key ends the handshake: nothing is authenticated, nothing runs.
      hostVerifier: (blob: Buffer) => {
        key = Buffer.from(blob);
        return false;
      },
    });
  });
}
