/**
 * The raw baselines every sandboxd figure is compared with, measured against
 * the same sandbox in the same run: a bare ssh2 connection (no registry, no
 * wrapper) and the OpenSSH client tools.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, type ClientChannel } from "ssh2";
import type { SshTarget } from "../../server/providers/provider.js";
import { nowMs } from "./stats.js";

const CIPHER = "aes128-gcm@openssh.com";

/** One ssh2 connection with TCP_NODELAY, as fast as ssh2 goes. */
export async function rawSsh2(target: SshTarget): Promise<Client> {
  const sock = tcpConnect({ host: target.host, port: target.port });
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once("ready", resolve).once("error", reject);
    client.connect({
      sock,
      username: target.username,
      privateKey: target.privateKey,
      algorithms: { cipher: [CIPHER] },
      hostVerifier: () => true, // baseline only: the target was pinned by whoever made it
    });
  });
  return client;
}

function execChannel(client: Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** Runs a command on a fresh channel; resolves with the stdout byte count once it exits. */
export async function rawExec(client: Client, command: string): Promise<number> {
  const ch = await execChannel(client, command);
  let bytes = 0;
  ch.on("data", (d: Buffer) => (bytes += d.length));
  ch.stderr.resume();
  await new Promise<void>((resolve) => ch.once("close", () => resolve()));
  return bytes;
}

/** Files the OpenSSH tools need: key and known_hosts pinned to the target's host key. */
export class OpenSshFiles {
  readonly dir = mkdtempSync(join(tmpdir(), "sandboxd-bench-ssh-"));
  readonly keyPath = join(this.dir, "id");
  readonly knownHosts = join(this.dir, "known_hosts");

  constructor(readonly target: SshTarget) {
    writeFileSync(this.keyPath, target.privateKey, { mode: 0o600 });
    writeFileSync(this.knownHosts, `${target.host} ${target.hostKey.trim()}\n`);
  }

  options(): string[] {
    return [
      "-i", this.keyPath, "-o", `UserKnownHostsFile=${this.knownHosts}`, "-o", "StrictHostKeyChecking=yes",
      "-o", "BatchMode=yes", "-c", CIPHER, "-o", "LogLevel=ERROR",
    ];
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.once("error", reject);
    p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.trim()}`))));
  });
}

/** Milliseconds for the OpenSSH client to stream a remote command's stdout to /dev/null. */
export async function openSshStreamMs(files: OpenSshFiles, command: string): Promise<number> {
  const t0 = nowMs();
  await run("ssh", [...files.options(), `${files.target.username}@${files.target.host}`, command]);
  return nowMs() - t0;
}

/** Milliseconds for `scp` (SFTP protocol since OpenSSH 9) to copy one file. */
export async function scpMs(files: OpenSshFiles, from: string, to: string): Promise<number> {
  const t0 = nowMs();
  await run("scp", [...files.options(), "-q", from, to]);
  return nowMs() - t0;
}

export const remote = (t: SshTarget, path: string) => `${t.username}@${t.host}:${path}`;
