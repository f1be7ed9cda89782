/**
 * A 1 GiB Upload and Download through each proxy (TLS at the proxy, h2c to
 * sandboxd), streamed chunk by chunk and never held in memory: the client's
 * sha256 equals the server's both ways. The same directly against sandboxd
 * for comparison; the throughput of each is printed.
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { e2eInstance, purge } from "../e2e/harness.js";
import { startSandboxd, type SandboxdProcess } from "../fixtures/sandboxd-process.js";
import { PROXIES, downloadHashed, grpcClient, makeCerts, mibps, run, startProxy, uploadDeterministic, type Certs, type Proxy, type SandboxClient } from "../fixtures/proxies.js";

const N = 38;
const GIB = 2 ** 30;
const FILE = "big/one-gib.bin";

let sandboxd: SandboxdProcess;
let certs: Certs;
let direct: SandboxClient;
let id: string;
const proxies: Proxy[] = [];
const results: Record<string, { upMiBps: number; downMiBps: number }> = {};

beforeAll(async () => {
  await purge(N);
  certs = makeCerts();
  const { instance, subnet } = e2eInstance(N);
  // Room for the 1 GiB file in the sandbox's disk image.
  sandboxd = await startSandboxd({ SANDBOXD_LOCAL_INSTANCE: instance, SANDBOXD_LOCAL_SUBNET: subnet, SANDBOXD_DEFAULT_MEMORY_MIB: "256", SANDBOXD_DEFAULT_DISK_GIB: "2" });
  direct = grpcClient(`http://${sandboxd.address}`);
  id = (await direct.createSandbox({ labels: { suite: "proxy-transfer" } })).sandbox!.id;
});
afterAll(async () => {
  console.log(`1 GiB transfers (MiB/s): ${JSON.stringify(results)}`);
  await Promise.allSettled(proxies.map((p) => p.stop()));
  await sandboxd?.stop();
  await purge(N);
  if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
});

async function roundTrip(name: string, client: SandboxClient) {
  const up = await uploadDeterministic(client, id, FILE, GIB);
  expect(up.bytesWritten).toBe(BigInt(GIB));
  expect(up.serverSha256).toBe(up.sha256);
  const down = await downloadHashed(client, id, FILE);
  expect(down.bytes).toBe(GIB);
  expect(down.serverSha256).toBe(up.sha256);
  expect(down.sha256).toBe(up.sha256);
  results[name] = { upMiBps: mibps(GIB, up.ms), downMiBps: mibps(GIB, down.ms) };
  // Free the space before the next one.
  expect((await run(client, id, `rm ${FILE} && echo removed`)).stdout).toBe("removed\n");
}

describe("1 GiB both ways", () => {
  it("directly against sandboxd (for comparison)", { timeout: 600_000 }, async () => {
    await roundTrip("direct", direct);
  });

  it.each(PROXIES)("through %s", { timeout: 600_000 }, async (kind) => {
    const p = await startProxy(kind, { upstreams: [sandboxd.address], tls: certs });
    proxies.push(p);
    try {
      await roundTrip(kind, grpcClient(p.baseUrl, certs.ca));
    } catch (err) {
      console.error(`${kind} logs:\n${p.logs().slice(-5000)}`);
      throw err;
    } finally {
      await p.stop();
    }
  });
});
