/**
 * Issue 13 (part): Watch end to end on real sandboxes, over gRPC and Connect
 * HTTP/1.1: a burst of 1,000 creations with none lost (or an explicit
 * OVERFLOW), renames paired, a recursive watch that sees a file in a newly
 * created subdirectory, cancel ending the helper in the sandbox, and the
 * errors (missing directory, a file, an empty path).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WatchEventType, type WatchEvent } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { collectExec, PROVIDERS, startE2E, type E2E, type LogLines, type SandboxClient } from "./harness.js";

const N = 30;
let e: E2E;
let id: string;
const logs: LogLines = [];

const sh = async (script: string) => {
  const r = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value: script } }));
  return r.stdout;
};

async function until(cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Watching {
  events: WatchEvent[];
  /** Messages received; the first must be the ready one. */
  messages: number;
  ready: Promise<void>;
  /** Resolves with the error the stream ended with (undefined: ended cleanly). */
  ended: Promise<unknown>;
  cancel(): void;
}

function watch(client: SandboxClient, path: string, recursive = false): Watching {
  const abort = new AbortController();
  const w = { events: [] as WatchEvent[], messages: 0 };
  let onReady: () => void = () => {};
  let notReady: (err: unknown) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => ((onReady = resolve), (notReady = reject)));
  ready.catch(() => {});
  const ended = (async () => {
    try {
      for await (const m of client.watch({ sandboxId: id, path, recursive }, { signal: abort.signal })) {
        w.messages++;
        if (w.messages === 1) {
          expect(m.ready).toBe(true);
          expect(m.events).toHaveLength(0);
          onReady();
        } else {
          expect(m.ready).toBe(false);
          expect(m.events.length).toBeGreaterThan(0);
          expect(m.events.length).toBeLessThanOrEqual(1000);
        }
        w.events.push(...m.events);
      }
      notReady(new Error("ended before ready"));
      return undefined;
    } catch (err) {
      notReady(err);
      return err;
    }
  })();
  return Object.assign(w, { ready, ended, cancel: () => abort.abort() }) as Watching;
}

const has = (w: Watching, type: WatchEventType, path: string, oldPath?: string) =>
  w.events.some((x) => x.type === type && x.path === path && (oldPath === undefined || x.oldPath === oldPath));

const watchers = async () => (await sh("pgrep -f 'sbx-run-[0-9]* watch' || true")).toString().trim();

describe.each(PROVIDERS)("Watch (%s)", (provider) => {
  beforeAll(async () => {
    e = await startE2E(N, {}, provider, logs);
    id = (await e.grpc.createSandbox({})).sandbox!.id;
  });
  afterAll(async () => {
    await e?.stop();
  });

  for (const transport of ["grpc", "connect1"] as const) {
    it(`${transport}: a burst of 1,000 creations, none lost (or OVERFLOW); modify, rename, remove; cancel ends the helper`, async () => {
      const client = e[transport];
      const dir = `burst-${transport}`;
      await sh(`mkdir -p ${dir}`);
      const w = watch(client, dir);
      await w.ready;
      await sh(`cd ${dir} && for i in $(seq 1 1000); do : > f$i; done`);
      const created = () => new Set(w.events.filter((x) => x.type === WatchEventType.CREATED).map((x) => x.path));
      const overflowed = () => w.events.some((x) => x.type === WatchEventType.OVERFLOW);
      await until(() => overflowed() || created().size === 1000);
      console.log(`${provider} ${transport}: ${created().size} of 1000 creations seen${overflowed() ? ", with an OVERFLOW event" : ", no overflow"}`);
      if (overflowed()) {
        expect(w.events.find((x) => x.type === WatchEventType.OVERFLOW)!.path).toBe(dir);
      } else {
        expect(created().size).toBe(1000);
        for (let i = 1; i <= 1000; i++) expect(created().has(`${dir}/f${i}`)).toBe(true);
      }
      await sh(`cd ${dir} && echo x >> f1 && mv f2 g2 && rm f3 && mkdir sub`);
      await until(() => has(w, WatchEventType.REMOVED, `${dir}/f3`) && has(w, WatchEventType.CREATED, `${dir}/sub`));
      expect(has(w, WatchEventType.MODIFIED, `${dir}/f1`)).toBe(true);
      expect(has(w, WatchEventType.RENAMED, `${dir}/g2`, `${dir}/f2`)).toBe(true);
      const sub = w.events.find((x) => x.path === `${dir}/sub`)!;
      expect(sub.isDir).toBe(true);
      expect(Math.abs(Number(sub.time!.seconds) - Date.now() / 1000)).toBeLessThan(120);
      expect(await watchers()).not.toBe("");
      w.cancel();
      const err = await w.ended;
      expect(err === undefined || (err instanceof ConnectError && err.code === Code.Canceled)).toBe(true);
      await until(async () => (await watchers()) === "", 10_000);
    });

    it(`${transport}: recursive watch sees a file in a newly created subdirectory`, async () => {
      const client = e[transport];
      const dir = `/home/sandbox/rec-${transport}`;
      await sh(`mkdir -p ${dir}/old`);
      const w = watch(client, `${dir}/`, true);
      await w.ready;
      await sh(`touch ${dir}/old/x && mkdir -p ${dir}/n1/n2 && echo hi > ${dir}/n1/n2/f`);
      await until(() => has(w, WatchEventType.CREATED, `${dir}/old/x`) && has(w, WatchEventType.CREATED, `${dir}/n1/n2/f`));
      expect(w.events.find((x) => x.path === `${dir}/n1`)).toMatchObject({ type: WatchEventType.CREATED, isDir: true });
      // Not recursive: only the directory's own entries.
      const flat = watch(client, dir);
      await flat.ready;
      await sh(`touch ${dir}/old/y ${dir}/top`);
      await until(() => has(flat, WatchEventType.CREATED, `${dir}/top`) && has(w, WatchEventType.CREATED, `${dir}/old/y`));
      expect(has(flat, WatchEventType.CREATED, `${dir}/old/y`)).toBe(false);
      w.cancel();
      flat.cancel();
      await Promise.all([w.ended, flat.ended]);
      await until(async () => (await watchers()) === "", 10_000);
    });

    it(`${transport}: missing directory NOT_FOUND, a file FAILED_PRECONDITION, empty path INVALID_ARGUMENT`, async () => {
      const client = e[transport];
      await sh("printf x > plain-file");
      const code = async (path: string) => {
        const err = await watch(client, path).ended;
        expect(err).toBeInstanceOf(ConnectError);
        return (err as ConnectError).code;
      };
      expect(await code("no/such/dir")).toBe(Code.NotFound);
      expect(await code("plain-file")).toBe(Code.FailedPrecondition);
      expect(await code("")).toBe(Code.InvalidArgument);
    });
  }
});
