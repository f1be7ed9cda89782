/**
 * API tokens: a file of token hashes, never the tokens themselves, one line
 * per token:
 *
 *   sha256:<hex SHA-256 of the token> tenant=<tenant> role=<admin|user|viewer> name=<who>
 *
 * (`#` starts a comment; `npm run token -- --tenant t --name n` mints a token
 * and prints its line.) Tokens are 256-bit random strings, so a plain
 * SHA-256 is enough: nobody guesses one from its hash. The file is re-read
 * when it changes (polled every `pollMs`), so tokens are added and revoked
 * without a restart. A line that does not parse is skipped and logged; a
 * missing or unreadable file means no token is valid (fail closed).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import type { Logger } from "../providers/local/options.js";
import { ROLES, TENANT_PATTERN, type Principal, type Role } from "./principal.js";

export interface TokenEntry {
  hash: Buffer;
  tenant: string;
  role: Role;
  name: string;
}

const HASH = /^sha256:([0-9a-f]{64})$/;
const NAME = /^[A-Za-z0-9._@:/-]{1,128}$/;

export function hashToken(token: string): string {
  return `sha256:${createHash("sha256").update(token, "utf8").digest("hex")}`;
}

/** A new token ("sbx_" + 43 base64url characters, 256 bits) and the line that admits it. */
export function mintToken(tenant: string, role: Role, name: string): { token: string; line: string } {
  const token = `sbx_${randomBytes(32).toString("base64url")}`;
  return { token, line: `${hashToken(token)} tenant=${tenant} role=${role} name=${name}` };
}

/** The entries of a token file, and why each skipped line was skipped (1-based line numbers; no secret in them). */
export function parseTokenFile(text: string): { entries: TokenEntry[]; errors: string[] } {
  const entries: TokenEntry[] = [];
  const errors: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) return;
    const [hash, ...fields] = line.split(/\s+/);
    const kv = Object.fromEntries(fields.map((f) => [f.slice(0, f.indexOf("=")), f.slice(f.indexOf("=") + 1)]));
    const hex = HASH.exec(hash ?? "")?.[1];
    const problem = !hex ? "the first field is not sha256:<64 hex digits>"
      : !TENANT_PATTERN.test(kv.tenant ?? "") ? `tenant= missing or not ${TENANT_PATTERN}`
      : !ROLES.includes(kv.role as Role) ? `role= missing or not one of ${ROLES.join(", ")}`
      : !NAME.test(kv.name ?? "") ? "name= missing or not 1-128 of A-Za-z0-9._@:/-"
      : undefined;
    if (problem) errors.push(`line ${i + 1}: ${problem}`);
    else entries.push({ hash: Buffer.from(hex!, "hex"), tenant: kv.tenant!, role: kv.role as Role, name: kv.name! });
  });
  return { entries, errors };
}

export class TokenFile {
  private entries: TokenEntry[] = [];
  private listener?: (curr: fs.Stats, prev: fs.Stats) => void;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    private readonly pollMs = 1000,
  ) {}

  /** Loads the file now and follows its changes. */
  start(): void {
    this.reload();
    this.listener = (curr, prev) => {
      if (curr.mtimeMs !== prev.mtimeMs || curr.ino !== prev.ino || curr.size !== prev.size) this.reload();
    };
    fs.watchFile(this.path, { interval: this.pollMs, persistent: false }, this.listener);
  }

  stop(): void {
    if (this.listener) fs.unwatchFile(this.path, this.listener);
  }

  /** How many tokens are valid now. */
  get size(): number {
    return this.entries.length;
  }

  reload(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.path, "utf8");
    } catch (err) {
      this.entries = [];
      this.log.error({ path: this.path, err: (err as Error).message }, "cannot read the API token file: no token is valid until it can be read");
      return;
    }
    const { entries, errors } = parseTokenFile(text);
    this.entries = entries;
    for (const e of errors) this.log.error({ path: this.path, problem: e }, "API token file: line skipped");
    this.log.info({ path: this.path, tokens: entries.length }, "API tokens loaded");
  }

  /**
   * The principal a bearer token stands for, or undefined. Compares the
   * token's hash with every entry in constant time (no early exit).
   */
  authenticate(token: string): Principal | undefined {
    const hash = createHash("sha256").update(token, "utf8").digest();
    let found: TokenEntry | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.hash, hash) && !found) found = e;
    return found && { tenant: found.tenant, role: found.role, name: found.name, via: "token" };
  }
}
