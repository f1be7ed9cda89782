import { describe, expect, it } from "vitest";
import { isSandboxError } from "../../errors.js";
import { configDigest } from "./config-digest.js";

describe("configDigest", () => {
  it("passes PVE's 40-hex digest through", () => {
    const d = "0123456789abcdef0123456789ABCDEF01234567";
    expect(configDigest({ digest: d, cores: 1 }, "lease of sbx-1")).toBe(d);
  });

  it("never yields an empty or missing compare-and-swap token: the write is refused as unavailable", () => {
    for (const conf of [{}, { digest: "" }, { digest: 42 }, { digest: "not-a-digest" }, { digest: "a".repeat(64) }]) {
      let err: unknown;
      try {
        configDigest(conf, "lease of sbx-1");
      } catch (e) {
        err = e;
      }
      expect(isSandboxError(err, "unavailable"), JSON.stringify(conf)).toBe(true);
      expect(String((err as Error).message)).toContain("lease of sbx-1");
    }
  });
});
