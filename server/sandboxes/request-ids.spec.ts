import { describe, expect, it } from "vitest";
import { RequestIds } from "./request-ids.js";

describe("RequestIds", () => {
  it("runs make once for concurrent retries and rejects other parameters", async () => {
    const ids = new RequestIds();
    let calls = 0;
    let finish!: (id: string) => void;
    const make = () => (calls++, new Promise<string>((r) => (finish = r)));
    const a = ids.run("r1", "fp", make);
    const b = ids.run("r1", "fp", make);
    await expect(ids.run("r1", "other", make)).rejects.toMatchObject({ kind: "invalid_argument", field: "request_id" });
    finish("sbx-1");
    expect(await a).toBe("sbx-1");
    expect(await b).toBe("sbx-1");
    expect(await ids.run("r1", "fp", make)).toBe("sbx-1");
    expect(calls).toBe(1);
  });

  it("forgets failed creates and destroyed sandboxes", async () => {
    const ids = new RequestIds();
    await expect(ids.run("r", "fp", () => Promise.reject(new Error("no")))).rejects.toThrow("no");
    expect(await ids.run("r", "fp", async () => "sbx-2")).toBe("sbx-2");
    ids.forgetSandbox("sbx-2");
    expect(await ids.run("r", "other", async () => "sbx-3")).toBe("sbx-3");
  });

  it("a cancelled waiter stops waiting, the create goes on", async () => {
    const ids = new RequestIds();
    let finish!: (id: string) => void;
    const abort = new AbortController();
    const waiting = ids.run("r", "fp", () => new Promise<string>((r) => (finish = r)), abort.signal);
    abort.abort();
    await expect(waiting).rejects.toMatchObject({ kind: "cancelled" });
    finish("sbx-9");
    expect(await ids.run("r", "fp", async () => "never")).toBe("sbx-9");
  });
});
