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
 * while the pool listing shows the same name (hostname) for that vmid.
 */
import type { Logger } from "../local/options.js";
import { vmidOf } from "./create.js";
import { hasTag, parseDescription } from "./description.js";

export interface Member {
  vmid: number;
  node: string;
  type?: string;
  template?: number;
  /** The hostname ("CT<vmid>" or absent while PVE has not caught up). */
  name?: string;
}

export type Kind = "ours" | "half-made" | "unrecognised" | "foreign";

export function kindOf(vmid: number, conf: Record<string, unknown>, tag: string): { kind: Kind; id?: string; createdAt?: Date } {
  const meta = parseDescription(conf.description as string | undefined);
  const tagged = hasTag(conf.tags as string | undefined, tag);
  const mine = meta && vmidOf(meta.id) === vmid && conf.hostname === meta.id;
  if (!mine) return { kind: tagged ? "unrecognised" : "foreign" };
  const lock = conf.lock as string | undefined;
  if (lock === "destroyed") return { kind: "foreign" }; // on its way out already
  if (tagged && lock !== "create") return { kind: "ours", id: meta.id, createdAt: meta.createdAt };
  return { kind: "half-made", id: meta.id, createdAt: meta.createdAt };
}

export interface SweepDeps {
  members(): Promise<Member[]>;
  config(node: string, vmid: number): Promise<Record<string, unknown> | undefined>;
  destroy(node: string, vmid: number): Promise<void>;
  /** Ids a create of this process is working on. */
  creating: ReadonlySet<string>;
  templateId: number;
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

  constructor(private readonly d: SweepDeps) {}

  /** Records a sandbox of ours found by a full listing, so the next sweep does not read its config again. */
  learn(m: Member, id: string): void {
    this.skip.delete(m.vmid);
    this.ours.set(m.vmid, id);
    this.names.set(m.vmid, m.name);
  }

  /** Forgets a destroyed sandbox (a later CT may reuse its vmid). */
  forget(vmid: number): void {
    this.ours.delete(vmid);
    this.skip.delete(vmid);
    this.names.delete(vmid);
  }

  async ids(): Promise<string[]> {
    const members = (await this.d.members()).filter((m) => !m.template && m.vmid !== this.d.templateId);
    const present = new Map(members.map((m) => [m.vmid, m]));
    for (const vmid of [...this.ours.keys(), ...this.skip]) {
      const m = present.get(vmid);
      if (!m || m.name !== this.names.get(vmid)) this.forget(vmid);
    }
    await Promise.all(members.filter((m) => !this.ours.has(m.vmid) && !this.skip.has(m.vmid)).map((m) => this.look(m)));
    return [...this.ours.values()];
  }

  private async look(m: Member): Promise<void> {
    const conf = await this.d.config(m.node, m.vmid);
    if (!conf) return;
    const { kind, id, createdAt } = kindOf(m.vmid, conf, this.d.tag);
    if (kind === "ours") {
      this.ours.set(m.vmid, id!);
      this.names.set(m.vmid, m.name);
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
    } else if (!this.d.creating.has(id!) && Date.now() > createdAt!.getTime() + this.d.createTimeoutMs + Math.min(60_000, this.d.createTimeoutMs)) {
      this.d.log.warn({ vmid: m.vmid, id, createdAt }, "undoing a half-made sandbox (its create was interrupted)");
      await this.d.destroy(m.node, m.vmid).catch((e: Error) => this.d.log.warn({ vmid: m.vmid, err: e.message }, "undoing a half-made sandbox failed; next sweep retries"));
    }
  }
}
