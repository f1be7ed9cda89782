/**
 * The SFTP server runs in the sandbox, so the limits it advertises
 * (limits@openssh.com) are the sandbox's word. A fake server in this process
 * (spec-fake-sshd.ts: ssh2's Server with a raw byte-level SFTP, since ssh2's
 * own SFTP server cannot advertise limits) claims huge and tiny ones;
 * sandboxd's READs and WRITEs stay within OpenSSH's own 261120 bytes, and
 * its memory stays flat.
 */
import { afterEach, describe, expect, it } from "vitest";
import { download } from "./download.js";
import { SessionRegistry } from "./session-registry.js";
import { FakeSftp, startFakeSshd, type FakeSshd } from "./spec-fake-sshd.js";
import { SFTP_MAX_DATA_LEN, SFTP_MIN_DATA_LEN, SftpSession } from "./sftp-session.js";
import { upload } from "./upload.js";

const MiB = 1024 * 1024;
let sshd: FakeSshd | undefined;
let registry: SessionRegistry | undefined;
afterEach(async () => {
  await registry?.closeAll();
  await sshd?.close();
  registry = sshd = undefined;
});

async function fake(limits: { maxPacket: number; maxRead: number; maxWrite: number }, size: number) {
  const servers: FakeSftp[] = [];
  sshd = await startFakeSshd({ sftp: (ch) => servers.push(new FakeSftp(ch, limits, size)) });
  registry = new SessionRegistry();
  registry.register("fake", sshd.target);
  return { servers, registry };
}

describe("SFTP limits advertised by the sandbox", () => {
  it("clamps 64 MiB limits to 261120 bytes: the session, every READ and every WRITE, with flat memory", async () => {
    const size = 256 * MiB;
    const { servers, registry } = await fake({ maxPacket: 64 * MiB + 1024, maxRead: 64 * MiB, maxWrite: 64 * MiB }, size);

    const session = await SftpSession.open(registry, "fake");
    expect(session.maxReadLen).toBe(SFTP_MAX_DATA_LEN);
    expect(session.maxWriteLen).toBe(SFTP_MAX_DATA_LEN);
    const internals = session.sftp as unknown as { _maxReadLen: number; _maxWriteLen: number; _maxOutPktLen: number };
    expect(internals._maxReadLen).toBe(261_120);
    expect(internals._maxWriteLen).toBe(261_120);
    expect(internals._maxOutPktLen).toBeLessThanOrEqual(262_144);
    session.end();

    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let got = 0;
    for await (const e of download(registry, "fake", { path: "/file" })) {
      if (e.type === "data") {
        got += e.data.length;
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    }
    expect(got).toBe(size);
    console.log(`download of 256 MiB, server claiming 64 MiB limits: rss peak +${((peak - before) / MiB).toFixed(1)} MiB`);
    const reads = servers.at(-1)!.reads;
    expect(reads.length).toBeGreaterThanOrEqual(size / SFTP_MAX_DATA_LEN);
    expect(Math.max(...reads)).toBeLessThanOrEqual(261_120);
    // 16 READs of 255 KiB in flight are 4 MiB; of 64 MiB, they were the whole 256 MiB file. (The fake
    // server and both ends' ssh2 run here too: some tens of MiB of garbage come on top either way.)
    expect(peak - before).toBeLessThan(128 * MiB);

    const block = Buffer.alloc(4 * MiB, 7);
    async function* source() {
      for (let i = 0; i < 8; i++) yield block;
    }
    const up = await upload(registry, "fake", { path: "/dir/up", source: source() });
    expect(up.bytesWritten).toBe(32 * MiB);
    const writes = servers.at(-1)!.writes;
    expect(writes.reduce((a, b) => a + b, 0)).toBe(32 * MiB);
    expect(Math.max(...writes)).toBeLessThanOrEqual(261_120);
  });

  it("raises tiny limits to a few KiB, so a transfer is not cut into millions of round trips", async () => {
    const size = 1 * MiB;
    const { servers, registry } = await fake({ maxPacket: 64, maxRead: 1, maxWrite: 1 }, size);
    const session = await SftpSession.open(registry, "fake");
    expect(session.maxReadLen).toBe(SFTP_MIN_DATA_LEN);
    expect(session.maxWriteLen).toBe(SFTP_MIN_DATA_LEN);
    session.end();
    let got = 0;
    for await (const e of download(registry, "fake", { path: "/file" })) if (e.type === "data") got += e.data.length;
    expect(got).toBe(size);
    expect(servers.at(-1)!.reads.length).toBe(size / SFTP_MIN_DATA_LEN);
  });
});
