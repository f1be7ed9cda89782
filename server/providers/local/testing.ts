/**
 * Test-only SSH helper for the local runtime's specs: connects with ssh2 to a
 * sandbox with the pinned host key and the runtime's client key. The data
 * plane's SessionRegistry replaces this later; keep all SSH use of the specs here.
 */
import { Client, type ClientChannel } from "ssh2";
import type { SshTarget } from "../provider.js";

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface ConnectOptions {
  /** Pin this key instead of the target's (to test that a wrong pin is refused). */
  hostKey?: string;
  /** Log in with this key instead of the target's. */
  privateKey?: Buffer | string;
  timeoutMs?: number;
}

/** The key blob of an OpenSSH public key line, as ssh2's hostVerifier receives it. */
const keyBlob = (line: string) => Buffer.from(line.trim().split(/\s+/)[1] ?? "", "base64");

export function connect(target: SshTarget, options: ConnectOptions = {}): Promise<Client> {
  const expected = keyBlob(options.hostKey ?? target.hostKey);
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once("ready", () => {
      client.off("error", reject);
      client.on("error", () => {}); // late errors surface as failed execs instead of crashing the run
      resolve(client);
    });
    client.on("error", reject); // `on`: ssh2 may emit a second error before ready
    client.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: options.privateKey ?? target.privateKey,
      hostVerifier: (key: Buffer) => key.equals(expected),
      readyTimeout: options.timeoutMs ?? 20_000,
    });
  });
}

export interface RunningExec {
  channel: ClientChannel;
  /** Resolves with the first line the command prints (e.g. its `echo $$`). */
  firstLine: Promise<string>;
  done: Promise<ExecResult>;
}

/** Starts a command; the caller reads its first line early and awaits the result later. */
export function startExec(client: Client, command: string): Promise<RunningExec> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) return reject(err);
      let stdout = "";
      let stderr = "";
      let code: number | null = null;
      let signal: string | null = null;
      let lineResolve!: (s: string) => void;
      const firstLine = new Promise<string>((r) => (lineResolve = r));
      channel.on("data", (b: Buffer) => {
        stdout += b.toString();
        if (stdout.includes("\n")) lineResolve(stdout.slice(0, stdout.indexOf("\n")));
      });
      channel.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      channel.on("exit", (c: number | null, s?: string) => {
        code = c;
        signal = s ?? null;
      });
      const done = new Promise<ExecResult>((r) =>
        channel.on("close", () => {
          lineResolve(stdout);
          r({ code, signal, stdout, stderr });
        }),
      );
      resolve({ channel, firstLine, done });
    });
  });
}

export async function exec(client: Client, command: string, timeoutMs = 60_000): Promise<ExecResult> {
  const running = await startExec(client, command);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${command}`)), timeoutMs);
  });
  try {
    return await Promise.race([running.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One command on a fresh connection. */
export async function sshExec(target: SshTarget, command: string, options: ConnectOptions = {}): Promise<ExecResult> {
  const client = await connect(target, options);
  try {
    return await exec(client, command, options.timeoutMs);
  } finally {
    client.end();
  }
}
