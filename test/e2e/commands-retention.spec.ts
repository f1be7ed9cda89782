/**
 * Issue 12's retention cap at the RPC level (local provider; the cap is
 * sbx-run's, the same on both): a background command with retain_bytes 64 KiB
 * writes 1 MiB. ListCommands shows the held range [earliest, end); Attach from
 * a dropped offset is OUT_OF_RANGE naming the earliest offsets still held (over
 * gRPC and Connect/HTTP1.1); from_earliest starts exactly there with the
 * file's tail, byte for byte.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AttachResponse } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { startE2E, type E2E, type SandboxClient } from "./harness.js";

const N = 24;
const CAP = 65_536;
const SIZE = 1 << 20;

async function collect(stream: AsyncIterable<AttachResponse>) {
  let stdout = Buffer.alloc(0);
  let stderr = "";
  const offsets: number[] = [];
  const lengths: number[] = [];
  const stderrOffsets: number[] = [];
  let exited: { exitCode?: number; signal: string } | undefined;
  let started = false;
  for await (const m of stream) {
    const e = m.event;
    if (e.case === "started") started = true;
    else if (e.case === "stdout") {
      offsets.push(Number(m.offset));
      lengths.push(e.value.length);
      stdout = Buffer.concat([stdout, e.value]);
    } else if (e.case === "stderr") {
      stderrOffsets.push(Number(m.offset));
      stderr += Buffer.from(e.value).toString();
    } else if (e.case === "exited") exited = e.value;
  }
  return { started, stdout, stderr, offsets, lengths, stderrOffsets, exited };
}

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (x: unknown) => x);
  expect(err, "expected the call to fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe("retention of a kept command's output (local)", () => {
  let e: E2E;
  let api: SandboxClient;
  let sandboxId: string;
  let execId: string;
  let file: Buffer;
  let earliest: number;

  beforeAll(async () => {
    e = await startE2E(N);
    api = e.grpc;
    sandboxId = (await api.createSandbox({})).sandbox!.id;
  }, 60_000);
  afterAll(async () => {
    await e?.stop();
  });

  it(`retain_bytes ${CAP}, 1 MiB written: ListCommands holds between 7/8 and all of the cap, ending at 1 MiB`, async () => {
    const ac = new AbortController();
    const script = `head -c ${SIZE} /dev/urandom > /tmp/r.bin && echo err >&2 && cat /tmp/r.bin`;
    for await (const m of api.exec({ sandboxId, command: { case: "shell", value: script }, background: true, tag: "big", retainBytes: BigInt(CAP) }, { signal: ac.signal })) {
      if (m.event.case === "started") {
        execId = m.event.value.execId;
        break; // detach at once: the command writes on by itself
      }
    }
    ac.abort();
    const deadline = Date.now() + 30_000;
    for (;;) {
      const c = (await api.listCommands({ sandboxId })).commands.find((x) => x.execId === execId)!;
      if (!c.running) break;
      if (Date.now() > deadline) throw new Error("the command did not end");
      await new Promise((r) => setTimeout(r, 100));
    }
    const c = (await e.connect1.listCommands({ sandboxId })).commands.find((x) => x.execId === execId)!;
    expect(c.exited?.exitCode).toBe(0);
    expect(Number(c.stdoutEnd)).toBe(SIZE);
    earliest = Number(c.stdoutEarliest);
    // Segments of cap/8: the oldest go once a stream holds more than the cap.
    expect(earliest % (CAP / 8)).toBe(0);
    expect(SIZE - earliest).toBeGreaterThanOrEqual((CAP * 7) / 8);
    expect(SIZE - earliest).toBeLessThanOrEqual(CAP);
    expect([Number(c.stderrEarliest), Number(c.stderrEnd)]).toEqual([0, 4]);

    const parts: Buffer[] = [];
    for await (const m of api.download({ sandboxId, path: "/tmp/r.bin" })) if (m.part.case === "data") parts.push(Buffer.from(m.part.value));
    file = Buffer.concat(parts);
    expect(file.length).toBe(SIZE);
  });

  it("Attach from 0 is OUT_OF_RANGE naming the earliest offsets held, over gRPC and Connect/HTTP1.1", async () => {
    for (const client of [api, e.connect1]) {
      const err = await failure(collect(client.attach({ command: { sandboxId, command: { case: "execId", value: execId } } })));
      expect(Code[err.code]).toBe("OutOfRange");
      expect(err.rawMessage).toBe(`output before stdout offset ${earliest} / stderr offset 0 is no longer kept (retention); attach from there, or with from_earliest`);
    }
    // One byte before the earliest is dropped too; by tag the same.
    const err = await failure(collect(api.attach({ command: { sandboxId, command: { case: "tag", value: "big" } }, stdoutOffset: BigInt(earliest - 1) })));
    expect(Code[err.code]).toBe("OutOfRange");
    expect(err.rawMessage).toContain(`stdout offset ${earliest} `);
  });

  it("from_earliest starts at the earliest offset held: the first chunk's offset is it, the bytes are the file's tail", async () => {
    const got = await collect(api.attach({ command: { sandboxId, command: { case: "tag", value: "big" } }, fromEarliest: true }));
    expect(got.started).toBe(true);
    expect(got.offsets[0]).toBe(earliest);
    expect(got.stdout.length).toBe(SIZE - earliest);
    expect(got.stdout.equals(file.subarray(earliest))).toBe(true);
    expect(got.stderr).toBe("err\n");
    expect(got.stderrOffsets).toEqual([0]);
    expect(got.exited?.exitCode).toBe(0);
    // Offsets are contiguous: no gap inside what is held.
    let at = earliest;
    got.offsets.forEach((o, i) => {
      expect(o).toBe(at);
      at = o + got.lengths[i]!;
    });
    expect(at).toBe(SIZE);
  });

  it("an offset inside the held range (no from_earliest) starts exactly there", async () => {
    const from = earliest + 12_345;
    const got = await collect(e.connect1.attach({ command: { sandboxId, command: { case: "execId", value: execId } }, stdoutOffset: BigInt(from), stderrOffset: 4n }));
    expect(got.offsets[0]).toBe(from);
    expect(got.stdout.equals(file.subarray(from))).toBe(true);
    expect(got.stderr).toBe("");
    expect(got.exited?.exitCode).toBe(0);
  });
});
