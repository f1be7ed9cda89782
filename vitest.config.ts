import { defineConfig } from "vitest/config";

// Tests drive real namespaces, sshd and nftables on a 2-core machine: files run
// one at a time so they neither race for host resources nor skew each other.
export default defineConfig({
  test: {
    include: ["server/**/*.spec.ts", "test/**/*.spec.ts", "sandbox-tools/**/*.spec.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // The default report, plus a line when each file and test starts (where a hang is).
    reporters: ["default", "./test/reporters/progress.ts"],
  },
});
