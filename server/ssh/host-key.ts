/**
 * Host key pinning: a sandbox's sshd must present exactly the key its provider
 * recorded. We compare raw key blobs (not fingerprints) and restrict the
 * negotiated host key algorithms to the pinned key's type, so sshd cannot
 * legitimately answer with a different key it also holds.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { failedPrecondition } from "../errors.js";

export interface PinnedHostKey {
  /** Key type as written in the line and inside the blob, e.g. "ssh-ed25519". */
  type: string;
  /** The SSH wire-format public key blob (what the base64 field decodes to). */
  blob: Buffer;
  /** Host key algorithms to offer in key exchange for this key type. */
  algorithms: string[];
  /** OpenSSH-style fingerprint, for messages. */
  fingerprint: string;
}

/** SHA256 fingerprint in OpenSSH's format ("SHA256:base64-without-padding"). */
export function fingerprint(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined;
  return blob.subarray(4, 4 + len).toString("latin1");
}

function algorithmsFor(type: string): string[] {
  // An RSA key may sign with any of these; the blob type stays "ssh-rsa".
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [type];
}

/**
 * Parses an OpenSSH public key line: "type base64 [comment]", optionally
 * preceded by a known_hosts host field. Raises failed_precondition, because a
 * bad pinned key is a provider/state problem, not the API caller's.
 */
export function parseHostKey(line: string): PinnedHostKey {
  const tokens = line.trim().split(/\s+/);
  for (let i = 0; i + 1 < tokens.length; i++) {
    const type = tokens[i]!;
    const b64 = tokens[i + 1]!;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
    const blob = Buffer.from(b64, "base64");
    if (blobType(blob) !== type) continue;
    return { type, blob, algorithms: algorithmsFor(type), fingerprint: fingerprint(blob) };
  }
  throw failedPrecondition("the sandbox's pinned host key is not an OpenSSH public key line");
}

/** Constant-time comparison of a presented key blob with the pinned one. */
export function matchesPinned(pinned: PinnedHostKey, presented: Buffer): boolean {
  return presented.length === pinned.blob.length && timingSafeEqual(presented, pinned.blob);
}
