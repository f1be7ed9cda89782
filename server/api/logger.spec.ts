import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

describe("createLogger", () => {
  it("writes JSON lines and redacts keys, tokens and authorization", () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) });
    const log = createLogger("info", sink);
    log.info({ privateKey: "PRIV", ssh: { privateKey: "PRIV2" }, headers: { authorization: "Bearer T" }, token: "TOK", sandboxId: "sbx-1" }, "rpc");
    log.debug({ x: 1 }, "hidden");
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line.sandboxId).toBe("sbx-1");
    expect(lines[0]).not.toMatch(/PRIV|Bearer|TOK/);
  });
});
