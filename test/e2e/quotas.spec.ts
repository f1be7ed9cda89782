/**
 * Issue 11, quotas per tenant through a real server (local runtime, API
 * tokens): over the sandbox count, memory, lease TTL (CreateSandbox and
 * KeepAlive) or creates per minute → RESOURCE_EXHAUSTED naming the quota and
 * the use; another tenant is unaffected; a burst of concurrent creates never
 * goes past the count.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startE2E, type E2E, type SandboxClient } from "./harness.js";
import { tenantTokens, type TokenFixture } from "../fixtures/tenant-tokens.js";

const N = 18;
const QUOTAS = {
  "*": { sandboxes: 3 },
  counted: { sandboxes: 2 },
  mem: { memoryMiB: 512 },
  ttl: { maxLeaseTtl: "5m" },
  rate: { createsPerMinute: 2 },
};

let e: E2E;
let t: TokenFixture;
const as = (tenant: string): SandboxClient => t.client(e.baseUrl, tenant);

async function refusal(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected RESOURCE_EXHAUSTED").toBeInstanceOf(ConnectError);
  expect(Code[(err as ConnectError).code], (err as ConnectError).rawMessage).toBe("ResourceExhausted");
  return err as ConnectError;
}

beforeAll(async () => {
  t = tenantTokens(["counted", "free", "mem", "ttl", "rate"]);
  e = await startE2E(N, { SANDBOXD_AUTH_TOKENS_FILE: t.file, SANDBOXD_TENANT_QUOTAS: JSON.stringify(QUOTAS) });
}, 60_000);
afterAll(async () => {
  try {
    await e?.stop();
  } finally {
    t?.remove();
  }
});

describe("quotas per tenant (local)", () => {
  it("sandboxes: a concurrent burst gets exactly the quota; the next is refused naming it; another tenant is unaffected", async () => {
    const c = as("counted");
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => c.createSandbox({})));
    const made = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.sandbox!.id] : []));
    expect(made).toHaveLength(2);
    for (const r of results) {
      if (r.status === "rejected") expect((r.reason as ConnectError).code).toBe(Code.ResourceExhausted);
    }
    const err = await refusal(c.createSandbox({}));
    expect(err.rawMessage).toBe("tenant counted: quota sandboxes=2 reached (2 in use)");

    // "free" is not listed: it has its own budget of "*" (3), whatever "counted" holds.
    const free = as("free");
    const mine = await Promise.all([0, 1, 2].map(() => free.createSandbox({})));
    expect(mine.map((m) => m.sandbox!.tenant)).toEqual(["free", "free", "free"]);
    expect((await refusal(free.createSandbox({}))).rawMessage).toBe("tenant free: quota sandboxes=3 reached (3 in use)");

    // A destroyed sandbox frees its slot.
    await c.destroySandbox({ sandboxId: made[0]! });
    made[0] = (await c.createSandbox({})).sandbox!.id;
    for (const id of made) await c.destroySandbox({ sandboxId: id });
    for (const m of mine) await free.destroySandbox({ sandboxId: m.sandbox!.id });
  });

  it("memoryMiB: a create that does not fit beside the tenant's sandboxes is refused with the use; one that fits is made", async () => {
    const c = as("mem");
    const a = (await c.createSandbox({ resources: { memoryMib: 256 } })).sandbox!;
    const err = await refusal(c.createSandbox({ resources: { memoryMib: 512 } }));
    expect(err.rawMessage).toBe("tenant mem: quota memoryMiB=512 exceeded (256 in use + 512 asked)");
    const b = (await c.createSandbox({ resources: { memoryMib: 256 } })).sandbox!;
    expect((await refusal(c.createSandbox({ resources: { memoryMib: 64 } }))).rawMessage).toBe("tenant mem: quota memoryMiB=512 exceeded (512 in use + 64 asked)");
    for (const s of [a, b]) await c.destroySandbox({ sandboxId: s.id });
  });

  it("maxLeaseTtl: a longer lease is refused at create and at KeepAlive; no TTL asked gets the default cut to the maximum", async () => {
    const c = as("ttl");
    const err = await refusal(c.createSandbox({ leaseTtl: { seconds: 600n } }));
    expect(err.rawMessage).toBe("tenant ttl: quota maxLeaseTtl=5m exceeded (lease_ttl 10m asked)");
    const before = Date.now();
    const s = (await c.createSandbox({})).sandbox!; // the server's default is 10 min
    const ttl = timestampDate(s.leaseExpiresAt!).getTime() - before;
    expect(ttl).toBeLessThanOrEqual(5 * 60_000 + 30_000);
    expect(ttl).toBeGreaterThan(4 * 60_000);
    const renew = await refusal(c.keepAlive({ sandboxId: s.id, leaseTtl: { seconds: 301n } }));
    expect(renew.rawMessage).toBe("tenant ttl: quota maxLeaseTtl=5m exceeded (lease_ttl 301s asked)");
    await c.keepAlive({ sandboxId: s.id, leaseTtl: { seconds: 120n } });
    await c.keepAlive({ sandboxId: s.id });
    await c.destroySandbox({ sandboxId: s.id });
    // Another tenant may ask for a longer lease.
    const other = (await as("free").createSandbox({ leaseTtl: { seconds: 3600n } })).sandbox!;
    await as("free").destroySandbox({ sandboxId: other.id });
  });

  it("createsPerMinute: the third create within a minute is refused, also after the first two were destroyed", async () => {
    const c = as("rate");
    for (let i = 0; i < 2; i++) {
      const s = (await c.createSandbox({})).sandbox!;
      await c.destroySandbox({ sandboxId: s.id });
    }
    const err = await refusal(c.createSandbox({}));
    expect(err.rawMessage).toBe("tenant rate: quota createsPerMinute=2 reached (2 creates in the last minute)");
    const other = (await as("counted").createSandbox({})).sandbox!;
    await as("counted").destroySandbox({ sandboxId: other.id });
    for (const tenant of Object.keys(t.tokens)) expect((await as(tenant).listSandboxes({})).sandboxes, tenant).toEqual([]);
  });
});
