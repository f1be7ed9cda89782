import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { parseWarmPool, shapeKey } from "./warm-pool.js";

describe("SANDBOXD_WARM_POOL", () => {
  it("reads shapes as <cores>x<memory>M|G x<disk>G:<count>, memory in MiB or GiB", () => {
    expect(parseWarmPool("1x512Mx2G:8, 2x2Gx8G:2", "X")).toEqual([
      { cores: 1, memoryMiB: 512, diskGiB: 2, count: 8 },
      { cores: 2, memoryMiB: 2048, diskGiB: 8, count: 2 },
    ]);
    expect(shapeKey({ cores: 2, memoryMiB: 2048, diskGiB: 8 })).toBe("2x2048Mx8G");
    expect(parseWarmPool("", "X")).toEqual([]);
    expect(parseWarmPool("1x512Mx2G:0", "X")).toEqual([]); // a count of 0 keeps none
    expect(loadConfig({}).warmPool).toEqual({ shapes: [], refillConcurrency: 3 });
    expect(loadConfig({ SANDBOXD_WARM_POOL: "1x256Mx1G:3", SANDBOXD_WARM_POOL_REFILL_CONCURRENCY: "4" }).warmPool).toEqual({
      shapes: [{ cores: 1, memoryMiB: 256, diskGiB: 1, count: 3 }], refillConcurrency: 4,
    });
  });

  it("refuses what it cannot read, naming the setting", () => {
    expect(() => loadConfig({ SANDBOXD_WARM_POOL: "1x512x2G:8" })).toThrow("SANDBOXD_WARM_POOL: expected <cores>x<memory>M|G x<disk>G:<count> like 1x512Mx2G:8, got '1x512x2G:8'");
    expect(() => loadConfig({ SANDBOXD_WARM_POOL: "0x512Mx2G:1" })).toThrow(/needs at least 1 core/);
    expect(() => loadConfig({ SANDBOXD_WARM_POOL: "1x512Mx2G:1,1x512Mx2G:2" })).toThrow(/the shape 1x512Mx2G is given twice/);
    expect(() => loadConfig({ SANDBOXD_WARM_POOL: "1x0.5Gx2G:1" })).toThrow(/expected/);
    expect(() => loadConfig({ SANDBOXD_WARM_POOL_REFILL_CONCURRENCY: "0" })).toThrow(/SANDBOXD_WARM_POOL_REFILL_CONCURRENCY: expected an integer ≥ 1/);
  });
});
