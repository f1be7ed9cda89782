/** batchWrites on a real TCP connection: writes of one tick are corked together, released on the next tick, in order. */
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { afterEach, expect, it } from "vitest";
import { batchWrites } from "./write-batching.js";

const open: Socket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
});

async function pair(): Promise<{ client: Socket; received: () => Buffer; server: ReturnType<typeof createServer> }> {
  const chunks: Buffer[] = [];
  const server = createServer((s) => {
    open.push(s);
    s.on("data", (d) => chunks.push(d));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const client = connect((server.address() as AddressInfo).port, "127.0.0.1");
  open.push(client);
  await new Promise<void>((r) => client.once("connect", () => r()));
  return { client, received: () => Buffer.concat(chunks), server };
}

it("corks the writes of one tick and uncorks on the next, keeping their order", async () => {
  const { client, received, server } = await pair();
  batchWrites(client);
  const parts = Array.from({ length: 50 }, (_, i) => Buffer.alloc(1000, i));
  for (const p of parts) client.write(p);
  expect(client.writableCorked).toBe(1); // held for this tick
  await new Promise((r) => process.nextTick(r));
  expect(client.writableCorked).toBe(0);
  const want = Buffer.concat(parts);
  for (let i = 0; i < 100 && received().length < want.length; i++) await new Promise((r) => setTimeout(r, 10));
  expect(received().equals(want)).toBe(true);
  // A later tick corks afresh.
  client.write(Buffer.from("x"));
  expect(client.writableCorked).toBe(1);
  await new Promise((r) => process.nextTick(r));
  expect(client.writableCorked).toBe(0);
  server.close();
});

it("a destroyed socket is not corked (the write fails as it would anyway)", async () => {
  const { client, server } = await pair();
  batchWrites(client);
  client.on("error", () => {});
  client.destroy();
  client.write(Buffer.from("late"));
  expect(client.writableCorked).toBe(0);
  server.close();
});
