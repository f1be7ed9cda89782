/**
 * Attack: leave the sandbox's user cgroup. Everything a sandbox runs shares
 * one group for pids and CPU beside sshd (server/providers/local/cgroups.ts):
 * a process that got out would fork and burn CPU beside sshd and sandboxd's
 * kill, and lock the owner out again under a fork bomb. sandboxd's own
 * commands choose when they join (first line "# sandboxd", SANDBOXD_JOIN), so
 * the attacks are: pretend to be such a command, keep SANDBOXD_JOIN, and
 * write one's pid into any cgroup the jail can see. Run through Exec, from
 * inside a real sandbox.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectExec, startE2E, type E2E } from "../e2e/harness.js";

let e: E2E;
let id: string;
const run = async (value: string) => {
  const r = await collectExec(e.grpc.exec({ sandboxId: id, command: { case: "shell", value } }));
  expect(r.exited?.exitCode, r.stderr).toBe(0);
  return r.stdout;
};

/** The cgroup paths in /proc/self/cgroup of the pids and cpu controllers (v1), else the unified one (v2). */
const WHERE = `awk -F: '$2 ~ /(^|,)(pids|cpu)(,|$)/ {print $3; v1=1} $1 == 0 {u=$3} END {if (!v1) print u}' /proc/self/cgroup`;

describe("a sandbox's processes stay in its user cgroup", () => {
  beforeAll(async () => {
    e = await startE2E(5);
    id = (await e.grpc.createSandbox({})).sandbox!.id;
  });
  afterAll(async () => {
    await e?.stop();
  });

  it("an Exec's command runs in the user cgroup for pids and CPU, without SANDBOXD_JOIN", async () => {
    const lines = (await run(`${WHERE}; echo "join=\${SANDBOXD_JOIN-unset}"`)).trim().split("\n");
    expect(lines.pop()).toBe("join=unset");
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(new RegExp(`/${id}/user$`));
  });

  it("a command that starts with sandboxd's mark is still the user's command", async () => {
    const lines = (await run(`# sandboxd control\n${WHERE}`)).trim().split("\n");
    for (const l of lines) expect(l).toMatch(new RegExp(`/${id}/user$`));
  });

  it("writing its pid into every cgroup.procs the jail can see gets no process out", async () => {
    // The shell itself (not a subshell) tries each file; a write that fails is just skipped.
    const out = await run(
      `writes=0; for f in $(find /sys/fs/cgroup /run \\( -name cgroup.procs -o -path '/run/sandboxd/join/*' \\) 2>/dev/null); do ` +
        `{ echo $$ > "$f"; } 2>/dev/null && writes=$((writes+1)); done; echo "writes=$writes of $(ls /run/sandboxd/join | wc -l)"; ${WHERE}`,
    );
    const lines = out.trim().split("\n");
    // Only the join files take a write, and they lead into the user cgroup itself.
    const [, writes, joinFiles] = /^writes=(\d+) of (\d+)$/.exec(lines.shift()!)!;
    expect(Number(joinFiles)).toBeGreaterThan(0);
    expect(writes).toBe(joinFiles);
    for (const l of lines) expect(l).toMatch(new RegExp(`/${id}/user$`));
    const after = (await run(WHERE)).trim().split("\n");
    for (const l of after) expect(l).toMatch(new RegExp(`/${id}/user$`));
  });
});
