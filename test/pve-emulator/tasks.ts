/** Worker tasks with real UPIDs, their status and log. */
import { ApiError, paramError } from "./http.js";

export interface Task {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
  tokenid?: string;
  status: "running" | "stopped";
  exitstatus?: string;
  log: string[];
  done: Promise<void>;
}

/** Thrown inside a worker: its message becomes the exitstatus (newlines as spaces). */
export class TaskError extends Error {}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");
const UPID = /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$/;

export class Tasks {
  private readonly tasks = new Map<string, Task>();
  private pid = 100_000 + Math.floor(Math.random() * 800_000);
  private readonly bootTicks = 1_000_000 + Math.floor(Math.random() * 1_000_000);

  /** Starts `work` as a task; the UPID is returned at once. `user` is "user@realm!tokenid" for tokens. */
  start(node: string, type: string, id: string, user: string, work: (log: (line: string) => void) => Promise<string | void>): string {
    const pid = ++this.pid;
    const starttime = Math.floor(Date.now() / 1000);
    const pstart = this.bootTicks + Math.floor(performance.now() / 10);
    const upid = `UPID:${node}:${hex8(pid)}:${hex8(pstart)}:${hex8(starttime)}:${type}:${id}:${user}:`;
    const bang = user.indexOf("!");
    const task: Task = {
      upid, node, pid, pstart, starttime, type, id, user: bang < 0 ? user : user.slice(0, bang),
      tokenid: bang < 0 ? undefined : user.slice(bang + 1), status: "running", log: [], done: Promise.resolve(),
    };
    this.tasks.set(upid, task);
    const log = (line: string) => void task.log.push(line);
    task.done = (async () => {
      await Promise.resolve();
      try {
        const warnings = await work(log);
        task.exitstatus = warnings ? `WARNINGS: ${warnings}` : "OK";
        log(warnings ? `TASK WARNINGS: ${warnings}` : "TASK OK");
      } catch (e) {
        const msg = (e as Error).message;
        task.exitstatus = msg.replace(/\n+$/, "").replace(/\n/g, " ");
        log(`TASK ERROR: ${msg.replace(/\n+$/, "")}`);
      }
      task.status = "stopped";
    })();
    return upid;
  }

  /** The task, or 400 "no such task" (also for a UPID of another node); unparsable → errors.upid. */
  get(node: string, upid: string): Task {
    if (!UPID.test(upid)) throw paramError({ upid: "unable to parse worker upid" });
    const t = this.tasks.get(upid);
    if (!t || t.node !== node) throw new ApiError(400, "no such task");
    return t;
  }

  all(): Task[] {
    return [...this.tasks.values()];
  }

  status(t: Task): Record<string, unknown> {
    const out: Record<string, unknown> = {
      upid: t.upid, node: t.node, pid: t.pid, pstart: t.pstart, starttime: t.starttime, type: t.type, id: t.id,
      user: t.user, status: t.status,
    };
    if (t.tokenid) out.tokenid = t.tokenid;
    if (t.exitstatus !== undefined) out.exitstatus = t.exitstatus;
    return out;
  }

  logPage(t: Task, start: number, limit: number): { lines: { n: number; t: string }[]; total: number } {
    const lines = t.log.length ? t.log : ["no content"];
    return { lines: lines.slice(start, start + limit).map((l, i) => ({ n: start + i + 1, t: l })), total: lines.length };
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
