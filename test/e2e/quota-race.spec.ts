/**
 * Issue 11: two sandboxd replicas on ONE Proxmox (the PVE emulator) racing
 * for a tenant's last slots. Each replica's own view is empty when the burst
 * comes, so each admits up to the quota in its pre-check and makes the
 * containers; the count after the create (server/sandboxes/quotas.ts:
 * "visible first, then count") must still leave the tenant with exactly its
 * quota: every create either succeeded or got RESOURCE_EXHAUSTED, the
 * surplus containers are destroyed before the refusal is answered, both
 * replicas and the pool agree, and Proxmox's schema accepted every call.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/api/logger.js";
import { loadConfig } from "../../server/config/config.js";
import { ProxmoxProvider } from "../../server/providers/proxmox/index.js";
import { parseDescription } from "../../server/providers/proxmox/description.js";
import { startServer, type SandboxServer } from "../../server/server.js";
import { proxmoxConfigOf, type Emulator } from "../pve-emulator/index.js";
import { startE2E, type E2E, type LogLines } from "./harness.js";
import { tenantTokens, type TokenFixture } from "../fixtures/tenant-tokens.js";

const N = 19;
const QUOTA = 3;
const PER_REPLICA = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let a: E2E;
let b: SandboxServer | undefined;
let emu: Emulator;
let t: TokenFixture;
const logs: LogLines = [];
const env = () => ({
  SANDBOXD_AUTH_TOKENS_FILE: t.file,
  SANDBOXD_TENANT_QUOTAS: JSON.stringify({ racers: { sandboxes: QUOTA } }),
  SANDBOXD_SYNC_INTERVAL: "500ms",
});
const urlB = () => `http://${b!.address}`;
/** Our containers (not the template) and the tenant each description names. */
const cts = () => emu.containers().filter((c) => c.vmid !== emu.connection.templateId)
  .map((c) => ({ vmid: c.vmid, id: parseDescription(String(c.conf.description ?? ""))?.id, tenant: parseDescription(String(c.conf.description ?? ""))?.spec.tenant }));

beforeAll(async () => {
  t = tenantTokens(["racers", "bystander"]);
  a = await startE2E(N, env(), "proxmox", logs);
  emu = a.emulator!;
  const logger = createLogger("info", { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const config = loadConfig({ SANDBOXD_LISTEN: "127.0.0.1:0", SANDBOXD_ADMIN_LISTEN: "127.0.0.1:0", SANDBOXD_DEFAULT_MEMORY_MIB: "256", SANDBOXD_DEFAULT_DISK_GIB: "1", SANDBOXD_DRAIN_DELAY: "0s", ...env() });
  b = await startServer(config, logger, new ProxmoxProvider(proxmoxConfigOf(emu.connection), { logger }));
}, 120_000);

afterAll(async () => {
  try {
    await b?.shutdown();
  } finally {
    try {
      await a?.stop(); // closes the emulator (purging its containers) and fails on any request Proxmox's schema refuses
    } finally {
      t?.remove();
    }
  }
}, 120_000);

describe("two replicas racing for a tenant's last slots (PVE emulator)", () => {
  const made: string[] = [];

  it(`${2 * PER_REPLICA} concurrent creates through both replicas, quota ${QUOTA}: exactly ${QUOTA} made, the rest RESOURCE_EXHAUSTED, no container left over`, async () => {
    const clients = [t.client(a.baseUrl, "racers"), t.client(urlB(), "racers")];
    const calls = clients.flatMap((c, r) => Array.from({ length: PER_REPLICA }, (_, i) => c.createSandbox({ labels: { replica: String(r), i: String(i) } })));
    const results = await Promise.allSettled(calls);
    for (const r of results) {
      if (r.status === "fulfilled") made.push(r.value.sandbox!.id);
      else {
        expect(r.reason, String(r.reason)).toBeInstanceOf(ConnectError);
        expect(Code[(r.reason as ConnectError).code], (r.reason as ConnectError).rawMessage).toBe("ResourceExhausted");
        expect((r.reason as ConnectError).rawMessage).toMatch(new RegExp(`^tenant racers: quota sandboxes=${QUOTA} reached \\(\\d+ in use\\)$`));
      }
    }
    expect(made).toHaveLength(QUOTA);
    // The race really happened: each replica's view was empty, so each admitted QUOTA in its pre-check and made
    // them; the QUOTA surplus containers were destroyed after counting, before their refusal was answered.
    const undone = logs.filter((l) => String(l.msg).startsWith("a create went over its tenant's quota once counted"));
    expect(undone).toHaveLength(QUOTA);
    // Nothing leaked: the pool holds exactly the admitted sandboxes.
    expect(cts().map((c) => c.id).sort()).toEqual([...made].sort());
    expect(cts().every((c) => c.tenant === "racers")).toBe(true);
  });

  it("both replicas list the same sandboxes for the tenant, and neither admits another", async () => {
    const lists = async () => Promise.all([a.baseUrl, urlB()].map(async (u) => (await t.client(u, "racers").listSandboxes({})).sandboxes.map((s) => s.id).sort()));
    const deadline = Date.now() + 10_000;
    let seen = await lists();
    while (!seen.every((l) => JSON.stringify(l) === JSON.stringify([...made].sort())) && Date.now() < deadline) {
      await sleep(200);
      seen = await lists();
    }
    expect(seen).toEqual([[...made].sort(), [...made].sort()]);
    for (const u of [a.baseUrl, urlB()]) {
      const err = await t.client(u, "racers").createSandbox({}).then(() => undefined, (x: unknown) => x as ConnectError);
      expect(err?.code).toBe(Code.ResourceExhausted);
    }
    expect(cts()).toHaveLength(QUOTA);
    // Another tenant is not held back by the racers' quota.
    const other = (await t.client(urlB(), "bystander").createSandbox({})).sandbox!;
    expect(other.tenant).toBe("bystander");
    await t.client(a.baseUrl, "bystander").destroySandbox({ sandboxId: other.id });
  });

  it("destroying frees the slots; every call was one Proxmox's schema accepts", async () => {
    for (const [i, id] of made.entries()) await t.client(i % 2 ? a.baseUrl : urlB(), "racers").destroySandbox({ sandboxId: id });
    expect(cts()).toEqual([]);
    const again = (await t.client(urlB(), "racers").createSandbox({})).sandbox!;
    await t.client(urlB(), "racers").destroySandbox({ sandboxId: again.id });
    expect(cts()).toEqual([]);
    expect(emu.rejectedRequests()).toEqual([]);
  });
});
