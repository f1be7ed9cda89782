/**
 * A fleet of sandboxd's own containers on the PVE emulator without a real
 * sandbox behind any of them ("paper" containers, see
 * test/pve-emulator/paper.ts), in the steady state of a fleet renewed for a
 * while: each lease runs 60 to 90 s (uniformly), as 1.5 × TTL grants written
 * over the last half TTL leave them. And the settings that point a sandboxd
 * child at the emulator.
 */
import { randomBytes } from "node:crypto";
import { formatDescription } from "../../server/providers/proxmox/description.js";
import type { SandboxSpec } from "../../server/providers/provider.js";
import type { Emulator } from "../../test/pve-emulator/index.js";

const SPEC: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: { bench: "lease" } };

/** Adds `n` paper sandboxes with leases of `ttlMs` expiring uniformly in [now + ttl, now + 1.5 × ttl]; returns their ids. */
export function addPaperFleet(emu: Emulator, n: number, ttlMs: number): string[] {
  const now = Date.now();
  const ids: string[] = [];
  emu.addPaperContainers(n, (vmid) => {
    const id = `sbx-${vmid}-${randomBytes(4).toString("hex")}`; // sandboxd's id form; hostname = id
    ids.push(id);
    const lease = { expiresAt: Math.round(now + ttlMs + Math.random() * ttlMs * 0.5), ttlMs };
    return {
      hostname: id, tags: "sandboxd", cores: SPEC.cores, memory: SPEC.memoryMiB,
      description: formatDescription({ id, spec: SPEC, createdAt: new Date(now), lease }),
    };
  });
  return ids;
}

