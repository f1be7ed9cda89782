/** A minimal ustar writer for the archive test (names under 100 bytes). */
export interface TarEntry {
  name: string;
  /** "0" file, "2" symlink, "5" directory. */
  type: string;
  mode: number;
  body: Buffer;
  link?: string;
}

export function ustar(entries: TarEntry[]): Buffer {
  const mtime = Math.floor(Date.now() / 1000);
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const octal = (off: number, len: number, v: number) => h.write(`${v.toString(8).padStart(len - 1, "0")}\0`, off, len, "ascii");
    h.write(e.name, 0, 100, "utf8");
    octal(100, 8, e.mode);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, e.body.length);
    octal(136, 12, mtime);
    h.write(e.type, 156, 1, "ascii");
    h.write(e.link ?? "", 157, 100, "utf8");
    h.write("ustar\0" + "00", 257, 8, "ascii");
    h.fill(" ", 148, 156);
    const sum = h.reduce((a, b) => a + b, 0);
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
    blocks.push(h, e.body, Buffer.alloc((512 - (e.body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
