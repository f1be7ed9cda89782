/**
 * The cheap way to enumerate sandboxes for the periodic sync of several
 * replicas: one pool listing per sweep, and a config read only for a vmid not
 * seen before (or still half-made). What a container is, by its config:
 *
 * - OURS: sandboxd's description whose id matches the vmid and hostname, our
 *   tag, and not locked by a create (another lock, such as a backup or a clone
 *   of it running, passes). Listed; its lease decides its fate.
 * - HALF-MADE: our description and hostname, but untagged (create.ts tags
 *   last) or locked by a create: a create under way, or cut off by a killed
 *   sandboxd. Undone (destroyed)
 *   once older than a create may take plus a margin, unless a create of this
 *   process is working on it: another replica may still be finishing it.
 * - UNRECOGNISED: our tag without a matching description (a hand-made clone
 *   of the template or of a sandbox, a mangled description). Never touched:
 *   logged once, for an operator to delete or untag.
 * - FOREIGN: neither. Never touched.
 *
 * PVE hands a freed vmid out again at once, so a cached verdict holds only
 * while the pool listing shows the same name (hostname) for that vmid. The
 * schema promises pool members only id, node, type, vmid and storage: a
 * member without `name` is re-read on every sweep (correct, one config read
 * per member), and one without `template` is recognised by its config.
 *
 * The same pass indexes our sandboxes by CreateSandbox request id (from the
 * description), so a create retried through another replica finds the first
 * sandbox for one pool listing plus reads of containers not seen before.
 */
import type { Logger } from "../local/options.js";
import { vmidOf } from "./create.js";
import { POOL_LABEL } from "../provider.js";
import { hasTag, parseDescription } from "./description.js";

export interface Member {
  vmid: number;
  node: string;
  type?: string;
  /** Not promised by the schema. */
  template?: number;
  /** Not promised by the schema. The hostname ("CT<vmid>" or absent while PVE has not caught up). */
  name?: string;
}

export type Kind = "ours" | "half-made" | "unrecognised" | "foreign";

export function kindOf(vmid: number, conf: Record<string, unknown>, tag: string): { kind: Kind; id?: string; createdAt?: Date; requestId?: string } {
  const meta = parseDescription(conf.description as string | undefined);
  const tagged = hasTag(conf.tags as string | undefined, tag);
  // A template is never a sandbox, even one made from a sandbox (pool members need not say `template`).
  if (Number(conf.template ?? 0) === 1) return { kind: tagged ? "unrecognised" : "foreign" };
  const mine = meta && vmidOf(meta.id) === vmid && conf.hostname === meta.id;
  if (!mine) return { kind: tagged ? "unrecognised" : "foreign" };
  const lock = conf.lock as string | undefined;
  if (lock === "destroyed") return { kind: "foreign" }; // on its way out already
  const requestId = meta.request?.id;
  if (tagged && lock !== "create") return { kind: "ours", id: meta.id, createdAt: meta.createdAt, requestId };
  return { kind: "half-made", id: meta.id, createdAt: meta.createdAt, requestId };
}

export interface Found {
  kind: "ours" | "half-made";
  vmid: number;
  id: string;
  node: string;
  requestId?: string;
}

export interface SweepDeps {
  members(): Promise<Member[]>;
  config(node: string, vmid: number): Promise<Record<string, unknown> | undefined>;
  destroy(node: string, vmid: number): Promise<void>;
  /** Ids a create of this process is working on. */
  creating: ReadonlySet<string>;
  isTemplate(vmid: number): boolean;
  tag: string;
  /** How long a create may take; half-made containers younger than this (plus as much again, at most a minute) are left alone. */
  createTimeoutMs: number;
  log: Logger;
  /** Learns where an id lives. */
  located(id: string, node: string): void;
}

export class PoolSweep {
  /** vmid → id of our finished sandboxes. */
  private readonly ours = new Map<number, string>();
  /** vmids that are not ours to touch (foreign, unrecognised), and so never re-read. */
  private readonly skip = new Set<number>();
  /** vmid → the name the listing showed when the verdict was made; another name is another CT. */
  private readonly names = new Map<number, string | undefined>();
  /** vmid → CreateSandbox request id of our finished sandboxes. */
  private readonly requests = new Map<number, string>();
  /** vmid → node of our finished sandboxes. */
  private readonly nodeOf = new Map<number, string>();
  /** vmids of warm pool members: a claim on another replica gives them a request id, so they are read again when one is looked for. */
  private readonly poolMembers = new Set<number>();
  /** Half-made sandboxes seen by the last sweep (never cached: they change). */
  private pending = new Map<number, Found>();

  constructor(private readonly d: SweepDeps) {}

  /** Records a sandbox of ours found by a full listing, so the next sweep does not read its config again. */
  learn(m: Member, id: string, requestId?: string): void {
    this.skip.delete(m.vmid);
    this.ours.set(m.vmid, id);
    this.names.set(m.vmid, m.name);
    this.nodeOf.set(m.vmid, m.node);
    if (requestId) this.requests.set(m.vmid, requestId);
  }

  /** Forgets a destroyed sandbox (a later CT may reuse its vmid). */
  forget(vmid: number): void {
    this.ours.delete(vmid);
    this.skip.delete(vmid);
    this.names.delete(vmid);
    this.nodeOf.delete(vmid);
    this.requests.delete(vmid);
    this.poolMembers.delete(vmid);
  }

  async ids(): Promise<string[]> {
    const members = (await this.d.members()).filter((m) => !m.template && !this.d.isTemplate(m.vmid));
    const present = new Map(members.map((m) => [m.vmid, m]));
    for (const vmid of [...this.ours.keys(), ...this.skip]) {
      const m = present.get(vmid);
      if (!m || m.name === undefined || m.name !== this.names.get(vmid)) this.forget(vmid);
    }
    const pending = new Map<number, Found>();
    await Promise.all(members.filter((m) => !this.ours.has(m.vmid) && !this.skip.has(m.vmid)).map((m) => this.look(m, pending)));
    this.pending = pending;
    return [...this.ours.values()];
  }

  /** Our sandbox (finished, or a create under way) made for a request id, after a fresh sweep. */
  async byRequest(requestId: string): Promise<Found | undefined> {
    await this.ids();
    const cached = () => {
      for (const [vmid, rid] of this.requests) {
        if (rid === requestId) return { kind: "ours" as const, vmid, id: this.ours.get(vmid)!, node: this.nodeOf.get(vmid)! };
      }
      return undefined;
    };
    let found = cached();
    if (!found && this.poolMembers.size) {
      // Members claimed since they were read carry their claim's request id now.
      const pending = new Map<number, Found>();
      await Promise.all([...this.poolMembers].map((vmid) => this.look({ vmid, node: this.nodeOf.get(vmid)!, name: this.names.get(vmid) }, pending)));
      found = cached();
    }
    return found ?? [...this.pending.values()].find((f) => f.requestId === requestId);
  }

  private async look(m: Member, pending: Map<number, Found>): Promise<void> {
    const conf = await this.d.config(m.node, m.vmid);
    if (!conf) return;
    const { kind, id, createdAt, requestId } = kindOf(m.vmid, conf, this.d.tag);
    if (kind === "ours") {
      if (parseDescription(conf.description as string)?.spec.labels[POOL_LABEL] !== undefined) this.poolMembers.add(m.vmid);
      else this.poolMembers.delete(m.vmid);
      this.ours.set(m.vmid, id!);
      this.names.set(m.vmid, m.name);
      this.nodeOf.set(m.vmid, m.node);
      if (requestId) this.requests.set(m.vmid, requestId);
      this.d.located(id!, m.node);
    } else if (kind === "unrecognised") {
      this.skip.add(m.vmid);
      this.names.set(m.vmid, m.name);
      this.d.log.warn({ vmid: m.vmid, node: m.node }, `CT carries the '${this.d.tag}' tag but no sandboxd description matching it; never touched (delete it or remove the tag)`);
    } else if (kind === "foreign") {
      // Mid-destroy ("destroyed" lock) is passing: a failed destroy brings the config back.
      if (conf.lock !== "destroyed") {
        this.skip.add(m.vmid);
        this.names.set(m.vmid, m.name);
      }
    } else if (this.d.creating.has(id!) || Date.now() <= createdAt!.getTime() + this.d.createTimeoutMs + Math.min(60_000, this.d.createTimeoutMs)) {
      pending.set(m.vmid, { kind: "half-made", vmid: m.vmid, id: id!, node: m.node, requestId });
    } else {
      this.d.log.warn({ vmid: m.vmid, id, createdAt }, "undoing a half-made sandbox (its create was interrupted)");
      await this.d.destroy(m.node, m.vmid).catch((e: Error) => this.d.log.warn({ vmid: m.vmid, err: e.message }, "undoing a half-made sandbox failed; next sweep retries"));
    }
  }
}
