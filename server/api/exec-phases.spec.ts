import { describe, expect, it } from "vitest";
import { phaseDurations } from "./exec-phases.js";

describe("phaseDurations", () => {
  it("gives each phase as the time since the previous step, and the total from arrival", () => {
    const s = { arrived: 100, handler: 100.5, pinned: 100.6, channelOpen: 101.6, header: 104.1, firstOutput: 104.3, exitStatus: 105.0, closed: 105.1, exitedSent: 105.15 };
    expect(phaseDurations(s, 105.4)).toEqual({
      decode: 0.5, pin: 0.1, channel: 1, header: 2.5, first_output: 0.2, exit: 0.7, close: 0.1, trailers: 0.3, total: 5.4,
    });
  });

  it("skips steps that did not happen (no output; failed before the channel opened)", () => {
    expect(phaseDurations({ arrived: 0, handler: 1, pinned: 2, channelOpen: 3, header: 4, exitStatus: 6, closed: 7, exitedSent: 7 }, 8)).toEqual({
      decode: 1, pin: 1, channel: 1, header: 1, exit: 2, close: 1, trailers: 1, total: 8,
    });
    expect(phaseDurations({ handler: 10, pinned: 12 }, 15)).toEqual({ decode: 0, pin: 2, total: 5 });
  });
});
