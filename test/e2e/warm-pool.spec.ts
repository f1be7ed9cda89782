/**
 * Issue 16: the warm pool, on both providers. A create of a pooled shape
 * claims a member that is made, started and SSH-ready; anything else, or an
 * empty pool, is a cold create. A claimed sandbox looks like a fresh one:
 * its labels, lease, request id and creation time are the claim's, and
 * nothing inside shows it waited in a pool. Members are never listed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { registry } from "../../server/telemetry/metrics.js";
import { parseMetrics, total } from "../fixtures/metrics.js";
import { collectExec, e2eInstance, PROVIDERS, startE2E, type E2E, type LogLines } from "./harness.js";

const SHAPE = "1x256Mx1G"; // the harness's default sandbox: a plain create claims from this pool
const POOL_SIZE = 8;
const metric = async (name: string, labels: Record<string, string> = {}) => total(parseMetrics(await registry.metrics()), name, labels);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poolFull(e: E2E, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while ((await metric("sandboxd_warm_pool_ready", { shape: SHAPE })) < POOL_SIZE) {
    if (Date.now() > end) throw new Error(`the warm pool did not fill to ${POOL_SIZE} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * What a new user would look at first: their home, /tmp, the processes (sshd's own, which come and
 * go with connections such as the pool's banner check, and this pipeline's own left out), the environment.
 */
const FIRST_LOOK = "ls -A ~ /tmp; ps -eo user,comm --no-headers | grep -vE ' (sshd|ps|grep|sort|bash|sh)$' | sort; env | cut -d= -f1 | sort";

describe.each(PROVIDERS)("warm pool (%s)", (provider) => {
  let e: E2E;
  const made: string[] = [];
  const logs: LogLines = [];
  const poolTrouble = () => logs.filter((l) => String(l.msg).includes("warm pool"));
  beforeAll(async () => {
    // Small pids caps: 20 sandboxes plus a full pool at the default cap would exceed this host's pids.
    e = await startE2E(7, { SANDBOXD_WARM_POOL: `${SHAPE}:${POOL_SIZE}`, SANDBOXD_WARM_POOL_REFILL_CONCURRENCY: "3", SANDBOXD_LOCAL_PIDS_MAX: "256" }, provider, logs, { pidsMax: 256 });
  }, 180_000);
  afterAll(async () => {
    for (const id of made) await e?.grpc.destroySandbox({ sandboxId: id }).catch(() => {});
    await e?.stop();
  }, 180_000);
  const exec = async (id: string, script: string) => collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value: script } }));

  it("a create of the pooled shape claims a member: its labels, lease, request id and creation time are the claim's; members are never listed", async () => {
    await poolFull(e);
    expect((await e.grpc.listSandboxes({})).sandboxes).toEqual([]);
    const claims = await metric("sandboxd_warm_pool_claims_total", { shape: SHAPE });
    const before = Date.now();
    const { sandbox } = await e.grpc.createSandbox({ labels: { team: "a" }, leaseTtl: { seconds: 120n }, requestId: `warm-${provider}` });
    made.push(sandbox!.id);
    expect(poolTrouble()).toEqual([]);
    expect(await metric("sandboxd_warm_pool_claims_total", { shape: SHAPE })).toBe(claims + 1);
    expect(sandbox!.labels).toEqual({ team: "a" });
    expect(timestampDate(sandbox!.createdAt!).getTime()).toBeGreaterThanOrEqual(before - 1000);
    const expires = timestampDate(sandbox!.leaseExpiresAt!).getTime();
    expect(expires).toBeGreaterThanOrEqual(before + 119_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 121_000);
    expect((await exec(sandbox!.id, "echo ok")).stdout).toBe("ok\n");
    // The request id came with the claim: a retry returns the same sandbox.
    const again = await e.grpc.createSandbox({ labels: { team: "a" }, leaseTtl: { seconds: 120n }, requestId: `warm-${provider}` });
    expect(again.sandbox!.id).toBe(sandbox!.id);
    expect((await e.grpc.listSandboxes({})).sandboxes.map((s) => s.id)).toEqual([sandbox!.id]);
    for (const id of made.splice(0)) await e.grpc.destroySandbox({ sandboxId: id });
  }, 180_000);

  it("a claimed sandbox shows nothing a cold one would not: home, /tmp, processes, environment", async () => {
    await poolFull(e);
    const warm = (await e.grpc.createSandbox({})).sandbox!;
    const cold = (await e.grpc.createSandbox({ resources: { memoryMib: 320 } })).sandbox!; // no pool of that shape
    made.push(warm.id, cold.id);
    const [w, c] = await Promise.all([exec(warm.id, FIRST_LOOK), exec(cold.id, FIRST_LOOK)]);
    expect(w.exited?.exitCode).toBe(0);
    expect(w.stdout).toBe(c.stdout);
    for (const id of made.splice(0)) await e.grpc.destroySandbox({ sandboxId: id });
  }, 180_000);

  it("another shape, and internet on, take the right path; the reserved label prefix is refused", async () => {
    await poolFull(e);
    const misses = await metric("sandboxd_warm_pool_misses_total");
    const claims = await metric("sandboxd_warm_pool_claims_total");
    const other = (await e.grpc.createSandbox({ resources: { cores: 2 } })).sandbox!; // not a pooled shape: cold, and no miss counted
    made.push(other.id);
    expect(await metric("sandboxd_warm_pool_claims_total")).toBe(claims);
    expect(await metric("sandboxd_warm_pool_misses_total")).toBe(misses);
    const online = (await e.grpc.createSandbox({ internetAccess: true })).sandbox!;
    made.push(online.id);
    expect(await metric("sandboxd_warm_pool_claims_total")).toBe(claims + 1);
    expect(online.internetAccess).toBe(true);
    expect((await e.grpc.getSandbox({ sandboxId: online.id })).sandbox!.internetAccess).toBe(true);
    const refused = await e.grpc.createSandbox({ labels: { "sandboxd.pool": SHAPE } }).catch((x: unknown) => x);
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.InvalidArgument);
    for (const id of made.splice(0)) await e.grpc.destroySandbox({ sandboxId: id });
  }, 180_000);

  it(`20 concurrent creates against a pool of ${POOL_SIZE}: ${POOL_SIZE} warm, 12 cold, all distinct and working`, async () => {
    await poolFull(e);
    const claims = await metric("sandboxd_warm_pool_claims_total", { shape: SHAPE });
    const misses = await metric("sandboxd_warm_pool_misses_total", { shape: SHAPE });
    const created = await Promise.all(Array.from({ length: 20 }, (_, i) => e.grpc.createSandbox({ labels: { burst: String(i) } })));
    const ids = created.map((c) => c.sandbox!.id);
    made.push(...ids);
    expect(new Set(ids).size).toBe(20);
    const warm = (await metric("sandboxd_warm_pool_claims_total", { shape: SHAPE })) - claims;
    expect(warm).toBeGreaterThanOrEqual(POOL_SIZE); // refills finishing during the burst may serve a few more
    expect((await metric("sandboxd_warm_pool_misses_total", { shape: SHAPE })) - misses).toBe(20 - warm);
    const outs = await Promise.all(ids.map((id) => exec(id, "echo $((6*7))")));
    expect(outs.map((o) => o.stdout)).toEqual(ids.map(() => "42\n"));
    created.forEach((c, i) => expect(c.sandbox!.labels).toEqual({ burst: String(i) }));
    for (const id of ids.splice(0)) await e.grpc.destroySandbox({ sandboxId: id });
  }, 300_000);

  it.runIf(provider === "local")("a member whose sshd went silent is destroyed at claim time, and the create still gets a working sandbox", async () => {
    await poolFull(e);
    // Every member's sshd killed from the host: the pool notices only when it checks a member's banner.
    const dir = `/var/lib/sandboxd/${e2eInstance(7).instance}/sandboxes`;
    const records = await Promise.all((await fs.readdir(dir)).map(async (d) => JSON.parse(await fs.readFile(`${dir}/${d}/state.json`, "utf8").catch(() => "{}"))));
    const members = records.filter((r) => r.spec?.labels?.["sandboxd.pool"] === SHAPE && r.jailPid);
    expect(members.length).toBe(POOL_SIZE);
    for (const m of members) await killDescendants(m.jailPid, "sshd");
    const broken = await metric("sandboxd_warm_pool_broken_total", { shape: SHAPE });
    const { sandbox } = await e.grpc.createSandbox({});
    expect((await exec(sandbox!.id, "echo fine")).stdout).toBe("fine\n");
    expect(await metric("sandboxd_warm_pool_broken_total", { shape: SHAPE })).toBe(broken + POOL_SIZE);
    await e.grpc.destroySandbox({ sandboxId: sandbox!.id });
  }, 180_000);
});

/** SIGKILLs the processes named `comm` among pid's descendants. */
async function killDescendants(pid: number, comm: string): Promise<void> {
  const parent = new Map<number, number>();
  const names = new Map<number, string>();
  for (const d of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const stat = await fs.readFile(`/proc/${d}/stat`, "utf8").catch(() => "");
    const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
    if (m) {
      parent.set(Number(d), Number(m[2]));
      names.set(Number(d), m[1]!);
    }
  }
  const under = (p: number): boolean => {
    for (let q = parent.get(p); q !== undefined && q > 1; q = parent.get(q)) if (q === pid) return true;
    return false;
  };
  for (const [p, name] of names) if (name === comm && under(p)) process.kill(p, "SIGKILL");
}
