/**
 * Host uid/gid ranges for the sandboxes' user namespaces: root inside a
 * sandbox is host uid `base`, the user `sandbox` (1001 inside) is base + 1001,
 * and no two live sandboxes on the host share a range, whichever instance
 * made them. So per-user kernel state (keyrings, RLIMIT_NPROC, inotify
 * instances, mqueue and memlock budgets) is never shared between sandboxes.
 *
 * Range i is [2^20 + i·65536, 2^20 + (i+1)·65536): above the uids of host
 * accounts and of the usual /etc/subuid allocations (100000 + n·65536 for
 * the first 14 users); ranges that overlap an /etc/subuid or /etc/subgid
 * entry anyway are skipped. The last range is never handed out: it ends at
 * 2^32 - 1, which is (uid_t)-1. That leaves 65519 ranges, far more than the
 * sandboxes a host can run.
 *
 * A range is claimed host-wide by creating CLAIMS_DIR/<i> exclusively (it
 * holds the owner's state dir and sandbox id); the owner's state record
 * stores the range's base, so a restarted runtime keeps the range of every
 * sandbox it adopts. Teardown removes the claim. A claim is stale, and
 * taken over, when it is more than a minute old and its owner's record is
 * gone or holds another range (a runtime killed mid-create; a reboot clears
 * /run anyway).
 */
import { promises as fs } from "node:fs";
import { readText } from "./host.js";

export const UID_FIRST = 2 ** 20;
export const UID_RANGE = 65536;
/** Ranges available: the one ending at 2^32 - 1 is left out. */
export const UID_RANGES = Math.floor((2 ** 32 - UID_FIRST) / UID_RANGE) - 1;
/** The user `sandbox` inside every sandbox (and its group). */
export const SANDBOX_UID = 1001;

export const CLAIMS_DIR = "/run/sandboxd/uid-ranges";
const STALE_AFTER_MS = 60_000;

export interface UidOwner {
  stateDir: string;
  id: string;
}

interface Claim extends UidOwner {
  base: number;
}

export const rangeBase = (index: number): number => UID_FIRST + index * UID_RANGE;

let subordinate: Promise<Array<[number, number]>> | undefined;

/** Ranges [start, start + count) of /etc/subuid and /etc/subgid (read once per process): never handed out. */
function subordinateRanges(): Promise<Array<[number, number]>> {
  subordinate ??= readSubordinateRanges();
  return subordinate;
}

async function readSubordinateRanges(): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  for (const file of ["/etc/subuid", "/etc/subgid"]) {
    for (const line of ((await readText(file)) ?? "").split("\n")) {
      const [, start, count] = line.trim().split(":");
      if (start && count && /^\d+$/.test(start) && /^\d+$/.test(count)) out.push([Number(start), Number(start) + Number(count)]);
    }
  }
  return out;
}

async function ownerHolds(claim: Claim): Promise<boolean> {
  const text = await readText(`${claim.stateDir}/sandboxes/${claim.id}/state.json`);
  if (text === undefined) return false;
  try {
    return (JSON.parse(text) as { uidBase?: number }).uidBase === claim.base;
  } catch {
    return true; // being rewritten: keep it
  }
}

async function stale(path: string): Promise<boolean> {
  const [text, st] = await Promise.all([readText(path), fs.stat(path).catch(() => undefined)]);
  if (!st) return true;
  if (Date.now() - st.mtimeMs < STALE_AFTER_MS) return false;
  try {
    return !(await ownerHolds(JSON.parse(text ?? "") as Claim));
  } catch {
    return true;
  }
}

/** Claims a free range for `owner` and returns its base uid. */
export async function allocateUidRange(owner: UidOwner): Promise<number> {
  const [reserved, names] = await Promise.all([
    subordinateRanges(),
    fs.readdir(CLAIMS_DIR).catch(async () => {
      await fs.mkdir(CLAIMS_DIR, { recursive: true, mode: 0o700 });
      return [] as string[];
    }),
  ]);
  const taken = new Set(names.map(Number));
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < UID_RANGES; i++) {
      // First pass: only ranges without a claim file; second: also stale claims.
      if (pass === 0 && taken.has(i)) continue;
      const base = rangeBase(i);
      if (reserved.some(([s, e]) => s < base + UID_RANGE && base < e)) continue;
      const path = `${CLAIMS_DIR}/${i}`;
      if (pass === 1) {
        if (!(await stale(path))) continue;
        await fs.rm(path, { force: true });
      }
      try {
        await fs.writeFile(path, JSON.stringify({ ...owner, base }), { flag: "wx", mode: 0o600 });
        return base;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
    }
  }
  throw new Error(`no free uid range (${UID_RANGES} ranges of ${UID_RANGE} from ${UID_FIRST})`);
}

/** Releases the range at `base` if `owner` holds it (idempotent). */
export async function releaseUidRange(base: number, owner: UidOwner): Promise<void> {
  const index = (base - UID_FIRST) / UID_RANGE;
  if (!Number.isInteger(index) || index < 0) return;
  const path = `${CLAIMS_DIR}/${index}`;
  const text = await readText(path);
  if (text === undefined) return;
  try {
    const claim = JSON.parse(text) as Claim;
    if (claim.stateDir !== owner.stateDir || claim.id !== owner.id) return;
  } catch {
    // unreadable: ours to clear
  }
  await fs.rm(path, { force: true });
}

/** Re-creates the claim of an adopted sandbox's range if it went missing (/run cleared by hand). */
export async function keepUidRange(base: number, owner: UidOwner): Promise<void> {
  await fs.mkdir(CLAIMS_DIR, { recursive: true, mode: 0o700 });
  const path = `${CLAIMS_DIR}/${(base - UID_FIRST) / UID_RANGE}`;
  await fs.writeFile(path, JSON.stringify({ ...owner, base }), { flag: "wx", mode: 0o600 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "EEXIST") throw e;
  });
}

/** Releases every range claimed for sandboxes under `stateDir` (purge: the instance and all its records go). */
export async function releaseUidRangesOf(stateDir: string): Promise<void> {
  const names = await fs.readdir(CLAIMS_DIR).catch(() => [] as string[]);
  await Promise.all(names.map(async (name) => {
    const path = `${CLAIMS_DIR}/${name}`;
    try {
      if ((JSON.parse((await readText(path)) ?? "") as Claim).stateDir === stateDir) await fs.rm(path, { force: true });
    } catch {
      // unreadable or gone: not provably ours, left to the stale-claim takeover
    }
  }));
}
