/**
 * A hostile sshd for specs, in this process (ssh2's Server on 127.0.0.1):
 * it plays what a sandbox could make its sshd session do, without a sandbox.
 * Exec requests get a scripted reply (raw stdout/stderr bytes, exit status);
 * the sftp subsystem is a raw byte-level SFTP server (`FakeSftp`) so it can
 * advertise any limits@openssh.com values, which ssh2's own SFTP server
 * cannot. Any client key is accepted; the host key is fresh and pinned.
 */
import type { AddressInfo } from "node:net";
import { Server, type ServerChannel } from "ssh2";
import { generateEd25519 } from "../providers/local/keys.js";
import type { SshTarget } from "../providers/provider.js";

export interface ExecScript {
  /** Plays the command on the channel; end with `exit`/`close` (or not). */
  (channel: ServerChannel, command: string): void | Promise<void>;
}

export interface FakeSshdOptions {
  exec?: ExecScript;
  /** Called for each sftp subsystem channel. */
  sftp?: (channel: ServerChannel) => void;
}

export interface FakeSshd {
  target: SshTarget;
  /** Every exec command received. */
  commands: string[];
  close(): Promise<void>;
}

export async function startFakeSshd(options: FakeSshdOptions): Promise<FakeSshd> {
  const host = generateEd25519();
  const client = generateEd25519();
  const commands: string[] = [];
  const server = new Server({ hostKeys: [host.privateKey] }, (conn) => {
    conn.on("error", () => {});
    conn.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
    conn.on("session", (accept) => {
      const session = accept();
      session.on("exec", (acceptExec, _reject, info) => {
        commands.push(info.command);
        const channel = acceptExec();
        channel.on("error", () => {});
        void options.exec?.(channel, info.command);
      });
      session.on("subsystem", (acceptSub, reject, info) => {
        if (info.name !== "sftp" || !options.sftp) return reject();
        const channel = acceptSub();
        channel.on("error", () => {});
        options.sftp(channel);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    target: { host: "127.0.0.1", port, username: "sandbox", privateKey: Buffer.from(client.privateKey), hostKey: host.publicKey },
    commands,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The nonce of a wrapper command (its header line's argument). */
export function nonceOf(command: string): string {
  const m = /printf 'P%d ([0-9a-f]{32})\\n'/.exec(command);
  if (!m) throw new Error(`no nonce in ${JSON.stringify(command.slice(0, 200))}`);
  return m[1]!;
}

const ZEROS = Buffer.alloc(261_120);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s: string | Buffer) => {
  const b = typeof s === "string" ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};

/**
 * A minimal SFTP v3 server over a raw channel, enough for one download or
 * upload of a file of `size` bytes (zeros): INIT, limits@openssh.com, OPEN,
 * FSTAT/STAT/LSTAT, READ, WRITE, FSETSTAT, CLOSE, posix-rename, statvfs.
 * Records the data length of every READ asked and WRITE received.
 */
export class FakeSftp {
  readonly reads: number[] = [];
  readonly writes: number[] = [];
  private pending = Buffer.alloc(0);
  private exists = new Set<string>();

  constructor(
    private readonly channel: ServerChannel,
    private readonly limits: { maxPacket: number; maxRead: number; maxWrite: number },
    private readonly size: number,
  ) {
    this.exists.add("/file");
    channel.on("data", (d: Buffer) => this.onData(d));
  }

  /** Writes the parts as they are (no copy into one buffer: the 256 MiB a download spec reads stays little garbage). */
  private send(type: number, ...parts: Buffer[]): void {
    const len = 1 + parts.reduce((n, b) => n + b.length, 0);
    this.channel.write(Buffer.concat([u32(len), Buffer.from([type])]));
    for (const b of parts) this.channel.write(b);
  }

  private status(id: number, code: number): void {
    this.send(101, u32(id), u32(code), str(code === 0 ? "ok" : "failure"), str(""));
  }

  private attrs(size: number, mode: number): Buffer {
    // flags: SIZE (1) | PERMISSIONS (4)
    return Buffer.concat([u32(1 | 4), u64(size), u32(mode)]);
  }

  private onData(d: Buffer): void {
    this.pending = Buffer.concat([this.pending, d]);
    while (this.pending.length >= 4) {
      const len = this.pending.readUInt32BE(0);
      if (this.pending.length < 4 + len) return;
      const pkt = this.pending.subarray(4, 4 + len);
      this.pending = this.pending.subarray(4 + len);
      this.handle(pkt);
    }
  }

  private handle(pkt: Buffer): void {
    const type = pkt[0]!;
    if (type === 1) {
      // VERSION 3 with limits@openssh.com (and posix-rename, statvfs for uploads).
      return this.send(2, u32(3), str("limits@openssh.com"), str("1"), str("posix-rename@openssh.com"), str("1"), str("statvfs@openssh.com"), str("2"));
    }
    const id = pkt.readUInt32BE(1);
    let p = 5;
    const readStr = () => {
      const n = pkt.readUInt32BE(p);
      const s = pkt.subarray(p + 4, p + 4 + n);
      p += 4 + n;
      return s;
    };
    switch (type) {
      case 200: {
        const name = readStr().toString();
        if (name === "limits@openssh.com") {
          const { maxPacket, maxRead, maxWrite } = this.limits;
          return this.send(201, u32(id), u64(maxPacket), u64(maxRead), u64(maxWrite), u64(64));
        }
        if (name === "posix-rename@openssh.com") {
          this.exists.add(readStr().toString());
          return this.status(id, 0);
        }
        if (name === "statvfs@openssh.com") {
          return this.send(201, u32(id), ...[4096, 4096, 1e6, 1e6, 1e6, 1e6, 1e6, 1e6, 0, 0, 255].map(u64));
        }
        return this.status(id, 8); // OP_UNSUPPORTED
      }
      case 3: // OPEN
        return this.send(102, u32(id), str(readStr()));
      case 7: // LSTAT
      case 17: {
        // STAT
        const path = readStr().toString();
        if (path === "/" || path === "/dir") return this.send(105, u32(id), this.attrs(4096, 0o40755));
        if (!this.exists.has(path)) return this.status(id, 2); // NO_SUCH_FILE
        return this.send(105, u32(id), this.attrs(this.size, 0o100644));
      }
      case 8: // FSTAT
        return this.send(105, u32(id), this.attrs(this.size, 0o100644));
      case 5: {
        // READ: handle, offset, len
        readStr();
        const offset = Number(pkt.readBigUInt64BE(p));
        const len = pkt.readUInt32BE(p + 8);
        this.reads.push(len);
        if (offset >= this.size) return this.status(id, 1); // EOF
        // Like OpenSSH's sftp-server whatever it advertised: at most 255 KiB per reply.
        const n = Math.min(len, this.size - offset, 261_120);
        return this.send(103, u32(id), u32(n), ZEROS.subarray(0, n));
      }
      case 6: {
        // WRITE: handle, offset, data
        readStr();
        p += 8;
        this.writes.push(readStr().length);
        return this.status(id, 0);
      }
      case 4: // CLOSE
      case 10: // FSETSTAT
      case 13: // REMOVE
        return this.status(id, 0);
      default:
        return this.status(id, 8);
    }
  }
}
