/**
 * Reads a tar stream as it passes, without holding it: every header is
 * checked before the chunk that carries it goes on, so a refused entry never
 * reaches the `tar` in the sandbox. Understands ustar, GNU long names and
 * links ('L', 'K') and pax headers ('x', 'g'); sizes in octal or base-256.
 *
 * Refused (ArchiveRefusal): a bad checksum (not a tar), an absolute path or a
 * `..` component (in a name or a hard link's target), a path below a symlink
 * the archive made earlier ("symlink tricks"), an entry replacing such a
 * symlink, and, when uploading, devices, FIFOs and GNU sparse or multi-volume
 * entries. Memory is fixed: one header block, a long name or pax header of at
 * most MAX_META_BYTES, and the symlinks' paths up to MAX_SYMLINK_BYTES.
 */

export const BLOCK = 512;
/** GNU long names and pax headers larger than this are refused. */
export const MAX_META_BYTES = 1 << 20;
/** The archive's symlinks are remembered (to refuse paths through them) up to this many bytes of paths. */
export const MAX_SYMLINK_BYTES = 16 << 20;

export class ArchiveRefusal extends Error {}

export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

export interface TarEntry {
  /** Normalised path below the archive's root ("" is the root itself). */
  path: string;
  type: TarEntryType;
  size: number;
  linkTarget: string;
}

export interface TarCheckOptions {
  /** Devices and FIFOs pass (a download: the sandbox's own files). Default: refused. */
  allowSpecial?: boolean;
}

type State = "header" | "data" | "meta" | "end";

export class TarChecker {
  private state: State = "header";
  private block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  /** Bytes of the current entry's data (with padding) still to pass. */
  private remaining = 0;
  private metaType = "";
  private meta: Buffer[] = [];
  private metaSize = 0;
  private longName?: string;
  private longLink?: string;
  private pax: Record<string, string> = {};
  private readonly symlinks = new Set<string>();
  private symlinkBytes = 0;
  entries = 0;
  /** Sum of the regular files' sizes. */
  fileBytes = 0;

  constructor(private readonly options: TarCheckOptions = {}) {}

  /** True once the end-of-archive marker (a zero block) was read. */
  get ended(): boolean {
    return this.state === "end";
  }

  /** True between entries (a stream cut here lost whole entries, not part of one). */
  get atBoundary(): boolean {
    return (this.state === "header" && this.blockFill === 0) || this.state === "end";
  }

  /** Checks a chunk; throws ArchiveRefusal on the first bad entry. Returns the entries it completed the header of. */
  push(chunk: Uint8Array): TarEntry[] {
    const out: TarEntry[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "end") return out; // padding after the marker: tar ignores it
      if (this.state === "data") {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.state = "header";
        continue;
      }
      if (this.state === "meta") {
        const n = Math.min(this.remaining, chunk.length - i);
        const want = Math.max(0, Math.min(n, this.metaSize - this.metaLength()));
        if (want > 0) this.meta.push(Buffer.from(chunk.subarray(i, i + want)));
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.finishMeta();
        continue;
      }
      const n = Math.min(BLOCK - this.blockFill, chunk.length - i);
      this.block.set(chunk.subarray(i, i + n), this.blockFill);
      this.blockFill += n;
      i += n;
      if (this.blockFill < BLOCK) continue;
      this.blockFill = 0;
      const entry = this.header(this.block);
      if (entry) out.push(entry);
    }
    return out;
  }

  private metaLength(): number {
    return this.meta.reduce((a, b) => a + b.length, 0);
  }

  private header(h: Buffer): TarEntry | undefined {
    if (h.every((b) => b === 0)) {
      this.state = "end";
      return undefined;
    }
    if (checksum(h) !== parseNumber(h.subarray(148, 156))) throw new ArchiveRefusal("not a tar archive (a header's checksum is wrong)");
    const size = parseNumber(h.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0) throw new ArchiveRefusal("an entry's size is out of range");
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const flag = String.fromCharCode(h[156]!);
    if (flag === "L" || flag === "K" || flag === "x" || flag === "g") {
      if (size > MAX_META_BYTES) throw new ArchiveRefusal(`a ${flag === "x" || flag === "g" ? "pax header" : "long name"} of ${size} bytes (at most ${MAX_META_BYTES})`);
      this.metaType = flag;
      this.meta = [];
      this.metaSize = size;
      this.remaining = padded;
      this.state = padded > 0 ? "meta" : "header";
      if (padded === 0) this.finishMeta();
      return undefined;
    }
    const ustar = h.subarray(257, 262).toString("latin1") === "ustar";
    const prefix = ustar ? cString(h.subarray(345, 500)) : "";
    const rawName = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${cString(h.subarray(0, 100))}` : cString(h.subarray(0, 100)));
    const rawLink = this.pax.linkpath ?? this.longLink ?? cString(h.subarray(157, 257));
    const paxSize = this.pax.size !== undefined ? Number(this.pax.size) : undefined;
    this.longName = this.longLink = undefined;
    this.pax = {};
    const dataSize = paxSize !== undefined && Number.isSafeInteger(paxSize) && paxSize >= 0 ? paxSize : size;
    const type = typeOf(flag, rawName);
    if (type === "other" && !this.options.allowSpecial) throw new ArchiveRefusal(`${JSON.stringify(rawName)}: entry type ${JSON.stringify(flag)} is not allowed (files, directories, symlinks and hard links only)`);
    const path = normalise(rawName, "path");
    if (path === "" && type !== "directory") throw new ArchiveRefusal(`${JSON.stringify(rawName)}: only a directory can be the archive's root`);
    this.checkThroughSymlinks(path, rawName);
    if (this.symlinks.has(path) && type !== "symlink") throw new ArchiveRefusal(`${JSON.stringify(rawName)} replaces a symlink made by the archive`);
    let linkTarget = rawLink;
    if (type === "hardlink") {
      linkTarget = normalise(rawLink, "hard link target");
      this.checkThroughSymlinks(linkTarget, rawLink);
      if (this.symlinks.has(linkTarget)) throw new ArchiveRefusal(`${JSON.stringify(rawName)}: a hard link to a symlink`);
    }
    if (type === "symlink") this.rememberSymlink(path);
    this.entries++;
    const dataBytes = type === "file" || type === "other" ? dataSize : 0;
    if (type === "file") this.fileBytes += dataSize;
    // The data that follows: per the header (or pax) size, for every type GNU tar reads it for.
    const follow = Math.ceil((type === "directory" || type === "symlink" || type === "hardlink" ? 0 : dataBytes) / BLOCK) * BLOCK;
    this.remaining = follow;
    this.state = follow > 0 ? "data" : "header";
    return { path, type, size: dataBytes, linkTarget };
  }

  private finishMeta(): void {
    const data = Buffer.concat(this.meta);
    this.meta = [];
    this.state = "header";
    if (this.metaType === "L") this.longName = cString(data);
    else if (this.metaType === "K") this.longLink = cString(data);
    else {
      const records = parsePax(data);
      if (this.metaType === "x") Object.assign(this.pax, records);
      else if (records.path !== undefined || records.linkpath !== undefined) throw new ArchiveRefusal("a global pax header that sets a path");
    }
  }

  private checkThroughSymlinks(path: string, raw: string): void {
    if (this.symlinks.size === 0) return;
    for (let at = path.indexOf("/"); at !== -1; at = path.indexOf("/", at + 1)) {
      const prefix = path.slice(0, at);
      if (this.symlinks.has(prefix)) throw new ArchiveRefusal(`${JSON.stringify(raw)} goes through the symlink ${JSON.stringify(prefix)} the archive made`);
    }
  }

  private rememberSymlink(path: string): void {
    if (this.symlinks.has(path)) return;
    this.symlinkBytes += path.length + 16;
    if (this.symlinkBytes > MAX_SYMLINK_BYTES) throw new ArchiveRefusal(`too many symlinks (their paths exceed ${MAX_SYMLINK_BYTES} bytes)`);
    this.symlinks.add(path);
  }
}

function typeOf(flag: string, name: string): TarEntryType {
  switch (flag) {
    case "0": case "\0": case "7": return name.endsWith("/") ? "directory" : "file";
    case "1": return "hardlink";
    case "2": return "symlink";
    case "5": return "directory";
    default: return "other";
  }
}

/**
 * A member name as a path below the root: "./" and "." components and a
 * trailing "/" dropped; absolute paths and ".." refused (GNU tar would only
 * warn and skip them).
 */
export function normalise(raw: string, what: string): string {
  if (raw.startsWith("/")) throw new ArchiveRefusal(`${JSON.stringify(raw)}: an absolute ${what}`);
  const parts: string[] = [];
  for (const p of raw.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") throw new ArchiveRefusal(`${JSON.stringify(raw)}: a ${what} with ".." would land outside the target`);
    parts.push(p);
  }
  return parts.join("/");
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end === -1 ? b.length : end).toString("utf8");
}

/** Octal (NUL/space terminated) or GNU base-256 (high bit set). */
export function parseNumber(b: Buffer): number {
  if (b[0]! & 0x80) {
    let n = b[0]! & 0x7f;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = b.toString("latin1").replace(/[\0 ]+$/g, "").trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

function checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum;
}

/** pax records: "<len> <key>=<value>\n". */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp === -1) break;
    const len = parseInt(data.subarray(i, sp).toString("latin1"), 10);
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > data.length) throw new ArchiveRefusal("a malformed pax header");
    const rec = data.subarray(sp + 1, i + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  if (out.path?.includes("\0") || out.linkpath?.includes("\0")) throw new ArchiveRefusal("a NUL byte in a pax path");
  return out;
}
