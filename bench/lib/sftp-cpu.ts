/**
 * The raw ssh2 client's CPU per GB moved over SFTP, both ways, with the
 * request sizes and depth sandboxd's own transfers use (255 KiB, 16 in
 * flight): the baseline for sandboxd's CPU per GB, since SSH's crypto and
 * framing are the part no design avoids.
 */
import { rmSync, statSync } from "node:fs";
import type { Client, SFTPWrapper } from "ssh2";
import { ownCpu } from "./stats.js";

const CHUNK = 255 * 1024;
const DEPTH = 16;

function sftp(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
}

export async function rawSftpCpu(client: Client, hostFile: string, remote: string, local: string): Promise<{ upPerGb: number; downPerGb: number }> {
  const s = await sftp(client);
  const gb = statSync(hostFile).size / 1e9;
  const opts = { concurrency: DEPTH, chunkSize: CHUNK };
  try {
    const { cpu: up } = await ownCpu(() => new Promise<void>((res, rej) => s.fastPut(hostFile, remote, opts, (e) => (e ? rej(e) : res()))));
    const { cpu: down } = await ownCpu(() => new Promise<void>((res, rej) => s.fastGet(remote, local, opts, (e) => (e ? rej(e) : res()))));
    return { upPerGb: up / gb, downPerGb: down / gb };
  } finally {
    await new Promise<void>((res) => s.unlink(remote, () => res()));
    s.end();
    rmSync(local, { force: true });
  }
}
