/**
 * The create flow: nextid → full clone into the pool → config (cores, memory,
 * description) → root disk grown to the spec → firewall → start → IPv4 →
 * sshd → tag. Every step is bounded
 * by the create's deadline; on any failure whatever was made is destroyed.
 *
 * The tag comes last, so it means "finished": another replica (or a restarted
 * sandboxd) takes an untagged container with our description for a create
 * under way or cut off (see pool-sweep.ts), never for a sandbox to adopt. The
 * same write restarts the lease, which counts from when the sandbox is ready.
 */
import { randomBytes } from "node:crypto";
import type { CreateRequestKey, SandboxSpec, StoredLease } from "../provider.js";
import type { PveClient } from "./client.js";
import type { ProxmoxConfig } from "./config.js";
import { formatDescription, withTag } from "./description.js";
import { egressPolicy } from "./firewall.js";
import { ctPath, destroyVm, waitIpv4, waitSsh } from "./lifecycle.js";
import { backoffMs, classify, pollMs, sleep } from "./retry.js";
import { waitTask } from "./tasks.js";
import type { CloneSource } from "./templates.js";
import { learnHostKey } from "./host-key.js";

export interface CreateContext {
  client: PveClient;
  cfg: ProxmoxConfig;
  /** The template to clone for this node, and `target` when it lives on another (shared storage). */
  source: CloneSource;
  /** The template's root disk: a larger spec is grown to after the clone. */
  templateDiskGiB: number;
  log: { debug: (o: object, m?: string) => void; warn: (o: object, m?: string) => void };
}

export interface Created {
  id: string;
  node: string;
  vmid: number;
  address: string;
  /** The sshd host key pinned for it. */
  hostKey: string;
  createdAt: Date;
  /** The lease as stored at the end (restarted at ready). */
  lease?: StoredLease;
}

/** Hostname and sandbox id: sbx-<vmid>-<random>, so a reused vmid never matches an old id. */
export const sandboxId = (vmid: number, suffix: string) => `sbx-${vmid}-${suffix}`;
export function vmidOf(id: string): number | undefined {
  const m = /^sbx-(\d+)-[a-z0-9]+$/.exec(id);
  return m ? Number(m[1]) : undefined;
}

type Made = { node: string; vmid: number };

/** What the description stores besides id, spec and creation time. */
export interface Stored {
  lease?: StoredLease;
  request?: CreateRequestKey;
}

export async function createSandbox(ctx: CreateContext, node: string, spec: SandboxSpec, stored: Stored, signal: AbortSignal | undefined, onMade: (m: Made & { id: string }) => void): Promise<Created> {
  const { client, cfg } = ctx;
  const deadline = Date.now() + cfg.createTimeoutMs;
  const suffix = randomBytes(4).toString("hex");
  const createdAt = new Date();
  let made: Made | undefined;
  let cloneTask: string | undefined;
  try {
    const { vmid, upid } = await cloneStep(ctx, node, suffix, spec, stored, createdAt, deadline, signal);
    made = { node, vmid };
    cloneTask = upid;
    const id = sandboxId(vmid, suffix);
    onMade({ ...made, id });
    const path = ctPath(node, vmid);
    if (upid) await waitTask(client, upid, deadline, signal);
    else await waitUnlocked(client, path, deadline, signal);

    const conf = await client.get<Record<string, unknown>>(`${path}/config`, {}, { deadline, signal });
    const put: Record<string, string | number> = {
      cores: spec.cores, memory: spec.memoryMiB, swap: 0, description: formatDescription({ id, spec, createdAt, ...stored }),
    };
    const net0 = String(conf.net0 ?? "");
    if (cfg.bridge && net0 && !net0.includes(`bridge=${cfg.bridge}`)) put.net0 = net0.replace(/bridge=[^,]+/, `bridge=${cfg.bridge}`);
    await client.put(`${path}/config`, put, { deadline, signal });
    if (spec.diskGiB > ctx.templateDiskGiB) {
      // Proxmox only grows a volume; sizes below the template's were refused before the clone.
      const upid = await client.put<string | null>(`${path}/resize`, { disk: "rootfs", size: `${spec.diskGiB}G` }, { deadline, signal });
      if (upid) await waitTask(client, upid, deadline, signal);
    }
    await client.put(`${path}/firewall/options`, { enable: 1, policy_out: egressPolicy(spec.internet) }, { deadline, signal });

    try {
      await waitTask(client, await client.post<string>(`${path}/status/start`, {}, { retry: "idempotent", deadline, signal }), deadline, signal);
    } catch (e) {
      if (!/already running/i.test((e as Error).message)) throw e;
    }
    // Read once, before any command of the user ran in it, then pinned (stored below).
    const address = await waitIpv4(client, node, vmid, deadline, signal);
    await waitSsh(address, 22, deadline, signal);
    const hostKey = cfg.hostKey ?? (await learnHostKey(address, 22, Math.max(1000, Math.min(15_000, deadline - Date.now()))));
    const lease = stored.lease && { expiresAt: Date.now() + stored.lease.ttlMs, ttlMs: stored.lease.ttlMs };
    await client.put(`${path}/config`, {
      tags: withTag(conf.tags as string | undefined, cfg.tag), description: formatDescription({ id, spec, createdAt, ...stored, lease, address, hostKey }),
    }, { deadline, signal });
    return { id, node, vmid, address, hostKey, createdAt, ...(lease ? { lease } : {}) };
  } catch (e) {
    if (made) {
      const m = made;
      ctx.log.warn({ vmid: m.vmid, node: m.node, err: (e as Error).message }, "proxmox create failed; destroying the container");
      // A CT still cloning is locked and outside the pool (invisible): let the clone finish first.
      if (cloneTask) await waitTask(client, cloneTask, Date.now() + 120_000).catch(() => {});
      await destroyVm(client, m.node, m.vmid, Date.now() + 120_000).catch((err: Error) =>
        ctx.log.warn({ vmid: m.vmid, err: err.message }, "proxmox cleanup failed; list() will show the leftover"));
    }
    throw e;
  }
}

/**
 * nextid + clone, retrying the nextid race ("already exists") and lock refusals.
 * A clone whose answer was lost (dropped connection, 5xx/596) is not blindly
 * re-sent: first find out whether the new id exists and is ours.
 */
async function cloneStep(ctx: CreateContext, node: string, suffix: string, spec: SandboxSpec, stored: Stored, createdAt: Date, deadline: number, signal?: AbortSignal): Promise<{ vmid: number; upid?: string }> {
  const { client, cfg } = ctx;
  let vmid = Number(await client.get<string>("/cluster/nextid", {}, { deadline, signal }));
  for (let attempt = 0; ; attempt++) {
    const id = sandboxId(vmid, suffix);
    try {
      const upid = await client.post<string>(`${ctPath(ctx.source.templateNode, ctx.source.templateId)}/clone`, {
        newid: vmid, hostname: id, full: 1, pool: cfg.pool, target: ctx.source.target,
        description: formatDescription({ id, spec, createdAt, ...stored }),
      }, { retry: "once", deadline, signal });
      return { vmid, upid };
    } catch (e) {
      const kind = classify(e);
      if (attempt >= 20 || Date.now() > deadline) throw e;
      if (kind === "exists") {
        ctx.log.debug({ vmid }, "nextid race; trying another id");
      } else if (kind === "transient") {
        const outcome = await cloneOutcome(ctx, node, vmid, id, deadline, signal);
        ctx.log.debug({ vmid, outcome }, "clone answer lost; checked what happened");
        if (outcome === "ours") return { vmid };
        if (outcome === "absent") {
          await sleep(backoffMs(attempt), signal);
          continue;
        }
      } else {
        throw e;
      }
      await sleep(backoffMs(attempt, 50, 500), signal);
      vmid = Number(await client.get<string>("/cluster/nextid", {}, { deadline, signal }));
    }
  }
}

/** After a lost clone answer: is `vmid` free, ours (our hostname), or someone else's? */
async function cloneOutcome(ctx: CreateContext, node: string, vmid: number, id: string, deadline: number, signal?: AbortSignal): Promise<"absent" | "ours" | "taken"> {
  const { client } = ctx;
  for (let i = 0; ; i++) {
    try {
      await client.get("/cluster/nextid", { vmid }, { deadline, signal });
      return "absent"; // nextid?vmid=N succeeds only while N is free
    } catch (e) {
      if (classify(e) !== "exists") throw e;
    }
    // Visible once the clone worker added it to the pool (403 before); a racer may have put it on another node.
    // A clone with `target` stays on the template's node until its task ends, then moves.
    const vms = await client.get<{ vmid: number; node: string }[]>("/cluster/resources", { type: "vm" }, { deadline, signal });
    const where = vms.find((v) => Number(v.vmid) === vmid)?.node;
    const moving = where !== undefined && where !== node && where === ctx.source.templateNode;
    if (where && where !== node && !moving) return "taken";
    try {
      const conf = await client.get<Record<string, unknown>>(`${ctPath(where ?? node, vmid)}/config`, {}, { deadline, signal });
      if (conf.hostname !== id) return "taken";
      if (!moving) return "ours";
    } catch (e) {
      if (!["permission", "not_found"].includes(classify(e))) throw e;
    }
    const wait = pollMs(i);
    if (Date.now() + wait > deadline) throw new Error(`could not find out whether the clone of CT ${vmid} happened`);
    await sleep(wait, signal);
  }
}

async function waitUnlocked(client: PveClient, path: string, deadline: number, signal?: AbortSignal): Promise<void> {
  for (let i = 0; ; i++) {
    const conf = await client.get<Record<string, unknown>>(`${path}/config`, {}, { deadline, signal });
    if (conf.lock === undefined) return;
    const wait = pollMs(i);
    if (Date.now() + wait > deadline) throw new Error(`${path} stayed locked (${String(conf.lock)})`);
    await sleep(wait, signal);
  }
}
