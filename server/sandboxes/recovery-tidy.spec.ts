import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exec, execCollect, SessionRegistry } from "../ssh/index.js";
import { startSpecSandbox, type SpecSandbox } from "../ssh/spec-sandbox.js";
import { tidyCommand } from "./recovery-tidy.js";

let sb: SpecSandbox;
beforeAll(async () => {
  sb = await startSpecSandbox();
});
afterAll(async () => {
  await sb?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async (cmd: string) => Number((await sb.sh(`pgrep -c -x -f '${cmd}' || true`)).trim());

describe("tidying up after a crash", () => {
  it("kills the commands whose SSH session died, and nothing else", async () => {
    const m = "65432" + Math.floor(Math.random() * 1000);
    const dead = new SessionRegistry();
    dead.register(sb.id, sb.target);
    // Finished normally, leaving a background process: kept.
    await execCollect(dead, sb.id, { shell: `(sleep ${m}9 &) ; exit 0` });
    // Running when its connection goes, with a child in its group and a daemon it set apart (setsid).
    const events = exec(dead, sb.id, { shell: `setsid sleep ${m}8 & sleep ${m} & sleep ${m}` })[Symbol.asyncIterator]();
    expect((await events.next()).value).toMatchObject({ type: "started" });
    const drained = (async () => {
      for (let r = await events.next(); !r.done; r = await events.next());
    })().catch(() => {});
    // Running on a live session (this process, or another replica): kept.
    const live = new AbortController();
    const liveRun = execCollect(sb.registry, sb.id, { shell: `sleep ${m}7`, signal: live.signal }).catch(() => undefined);
    await sleep(300);
    expect(await count(`sleep ${m}`)).toBe(2);

    // The connection just goes, as when sandboxd is killed: the command runs on unowned.
    await dead.closeAll();
    await drained;
    await sleep(500);
    expect(await count(`sleep ${m}`)).toBe(2);

    const tidy = await execCollect(sb.registry, sb.id, { shell: tidyCommand(Date.now()) });
    expect(tidy.exitCode).toBe(0);
    expect(tidy.stdout.toString()).toMatch(/^killed \d+\n$/);
    for (let i = 0; i < 20 && (await count(`sleep ${m}`)) > 0; i++) await sleep(50);
    expect(await count(`sleep ${m}`)).toBe(0);
    expect(await count(`sleep ${m}9`)).toBe(1);
    expect(await count(`sleep ${m}8`)).toBe(1);
    expect(await count(`sleep ${m}7`)).toBe(1);

    live.abort();
    await liveRun;
    await sb.sh(`pkill -x -f 'sleep ${m}9' ; pkill -x -f 'sleep ${m}8' ; true`);
  });

  it("removes upload temp files older than the restart, not fresh ones nor look-alikes", async () => {
    const dir = `${sb.workDir}/tidy`;
    await sb.sh(`mkdir -p ${dir} /tmp/tidy-spec && cd ${dir} && touch -d '1 hour ago' .a.bin.sandboxd-0123456789ab.part /tmp/tidy-spec/.b.sandboxd-0123456789ab.part .c.part .d.sandboxd-short.part`);
    const startedAt = Date.now() - 1000;
    await sb.sh(`touch ${dir}/.e.bin.sandboxd-ba9876543210.part`); // being written by a live upload
    await execCollect(sb.registry, sb.id, { shell: tidyCommand(startedAt) });
    const left = await sb.sh(`ls -A ${dir} /tmp/tidy-spec`);
    expect(left).not.toContain(".a.bin.sandboxd-0123456789ab.part");
    expect(left).not.toContain(".b.sandboxd-0123456789ab.part");
    for (const kept of [".c.part", ".d.sandboxd-short.part", ".e.bin.sandboxd-ba9876543210.part"]) expect(left).toContain(kept);
    await sb.sh(`rm -rf ${dir} /tmp/tidy-spec`);
  });

  it("removes archive staging directories nothing touched since the restart, not live ones nor look-alikes", async () => {
    const dir = `${sb.workDir}/tidy-arch`;
    const stale = ".proj.sandboxd-archive-0123456789ab";
    const old = ".proj.sandboxd-archive-0123456789ab-old";
    const live = ".other.sandboxd-archive-ba9876543210";
    const alike = ".proj.sandboxd-archive-short";
    await sb.sh(`mkdir -p ${dir} && cd ${dir} && for d in ${stale} ${old} ${live} ${alike}; do mkdir -p "$d/sub" && echo x > "$d/sub/f"; done && ` +
      `find . -exec touch -h -d '1 hour ago' {} +`);
    const startedAt = Date.now() - 1000;
    await sb.sh(`echo fresh > ${dir}/${live}/sub/g`); // an unpack still writing, deep inside
    await execCollect(sb.registry, sb.id, { shell: tidyCommand(startedAt) });
    const left = await sb.sh(`ls -A ${dir}`);
    expect(left).not.toContain(`${stale}\n`);
    expect(left).not.toContain(old);
    for (const kept of [live, alike]) expect(left).toContain(kept);
    await sb.sh(`rm -rf ${dir}`);
  });
});
