/**
 * How sandboxd marks its containers: a tag (list() only considers tagged CTs
 * in the pool) and a description carrying the handle's metadata and the lease
 * as JSON, so a restarted sandboxd or another replica can rebuild handles and
 * leases from the API alone. The clone request already carries the
 * description, so no container of ours ever exists without its lease.
 */
import type { CreateRequestKey, SandboxSpec, StoredLease } from "../provider.js";

export const DEFAULT_TAG = "sandboxd";
const HEADER = "Managed by sandboxd: destroyed automatically, do not edit.";
const PREFIX = "sandboxd-meta:";
/** PVE's limit on description length. */
export const MAX_DESCRIPTION = 8192;

export interface SandboxMeta {
  id: string;
  spec: SandboxSpec;
  createdAt: Date;
  /** Pinned at create: the address sandboxd reaches it at (never re-read from the container, whose root could change it). */
  address?: string;
  /** Pinned at create: the host key its sshd made at first boot (OpenSSH line). */
  hostKey?: string;
  lease?: StoredLease;
  request?: CreateRequestKey;
}

export function formatDescription(meta: SandboxMeta): string {
  const lease = meta.lease && { expiresAt: new Date(meta.lease.expiresAt).toISOString(), ttlMs: meta.lease.ttlMs };
  const json = JSON.stringify({
    v: 1, id: meta.id, createdAt: meta.createdAt.toISOString(), spec: meta.spec, ...(lease ? { lease } : {}), ...(meta.request ? { request: meta.request } : {}),
    ...(meta.address ? { address: meta.address } : {}), ...(meta.hostKey ? { hostKey: meta.hostKey } : {}),
  });
  return `${HEADER}\n${PREFIX}${json}`;
}

/** The metadata, or undefined for a description sandboxd did not write (or one that was mangled). */
export function parseDescription(text: string | undefined): SandboxMeta | undefined {
  if (!text) return undefined;
  const line = text.split(/\r?\n/).find((l) => l.startsWith(PREFIX));
  if (!line) return undefined;
  try {
    const o = JSON.parse(line.slice(PREFIX.length)) as Record<string, any>;
    if (o.v !== 1 || typeof o.id !== "string" || typeof o.spec !== "object" || o.spec === null) return undefined;
    const createdAt = new Date(String(o.createdAt));
    if (Number.isNaN(createdAt.getTime())) return undefined;
    const s = o.spec;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries((s.labels ?? {}) as Record<string, unknown>)) labels[k] = String(v);
    const tenant = typeof s.tenant === "string" && s.tenant ? { tenant: s.tenant } : {};
    const spec = { cores: Number(s.cores), memoryMiB: Number(s.memoryMiB), diskGiB: Number(s.diskGiB), internet: Boolean(s.internet), labels, ...tenant };
    const expiresAt = new Date(String(o.lease?.expiresAt)).getTime();
    const ttlMs = Number(o.lease?.ttlMs);
    const lease = Number.isFinite(expiresAt) && Number.isFinite(ttlMs) && ttlMs > 0 ? { expiresAt, ttlMs } : undefined;
    const r = o.request;
    const request = r && typeof r.id === "string" && typeof r.fingerprint === "string" ? { id: r.id, fingerprint: r.fingerprint } : undefined;
    const address = typeof o.address === "string" && /^\d{1,3}(\.\d{1,3}){3}$/.test(o.address) ? o.address : undefined;
    const hostKey = typeof o.hostKey === "string" && /^ssh-ed25519 [A-Za-z0-9+/]+={0,2}$/.test(o.hostKey) ? o.hostKey : undefined;
    return { id: o.id, createdAt, spec, ...(lease ? { lease } : {}), ...(request ? { request } : {}), ...(address ? { address } : {}), ...(hostKey ? { hostKey } : {}) };
  } catch {
    return undefined;
  }
}

/** PVE stores tags lowercased and ';'-joined; the API accepts ',', ';' or spaces. */
export function parseTags(tags: string | undefined): string[] {
  return (tags ?? "").split(/[;,\s]+/).filter(Boolean).map((t) => t.toLowerCase());
}

export function hasTag(tags: string | undefined, tag: string): boolean {
  return parseTags(tags).includes(tag.toLowerCase());
}

/** Adds our tag to whatever the template carried (clones copy tags). */
export function withTag(tags: string | undefined, tag: string): string {
  const all = new Set(parseTags(tags));
  all.add(tag.toLowerCase());
  return [...all].sort().join(";");
}

export const TAG_PATTERN = /^[a-z0-9_][a-z0-9_\-+.]*$/i;
