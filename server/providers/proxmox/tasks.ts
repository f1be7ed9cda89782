/** Waiting for PVE worker tasks (UPIDs): backoff polling, OK/WARNINGS = success. */
import type { PveClient } from "./client.js";
import { proxmox as metrics } from "../../telemetry/metrics.js";
import { pollMs, sleep } from "./retry.js";

export class TaskFailedError extends Error {
  override readonly name = "TaskFailedError";
  constructor(readonly upid: string, readonly type: string, readonly exitstatus: string) {
    super(`task ${type} failed: ${exitstatus}`);
  }
}

export class TaskTimeoutError extends Error {
  override readonly name = "TaskTimeoutError";
}

/** UPID:node:pid:pstart:starttime:type:id:user: → its parts. */
export function parseUpid(upid: string): { node: string; type: string; id: string } | undefined {
  const m = /^UPID:([^:]+):[0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+:([^:]+):([^:]*):[^:]+:$/.exec(upid);
  return m ? { node: m[1]!, type: m[2]!, id: m[3]! } : undefined;
}

export const taskSucceeded = (exitstatus: string | undefined) => /^(OK|WARNINGS)/.test(exitstatus ?? "");

/** Polls until the task stops; resolves on OK/WARNINGS, throws TaskFailedError otherwise. */
export async function waitTask(client: PveClient, upid: string, deadline: number, signal?: AbortSignal): Promise<void> {
  const parsed = parseUpid(upid);
  if (!parsed) throw new Error(`not a task id: ${upid}`);
  const started = performance.now();
  const type = /^[a-z]{1,20}$/.test(parsed.type) ? parsed.type : "other";
  const result = (r: string) => metrics.taskSeconds.observe({ type, result: r }, (performance.now() - started) / 1000);
  try {
    await pollTask(client, upid, parsed, deadline, signal);
    result("ok");
  } catch (err) {
    result(err instanceof TaskFailedError ? "failed" : err instanceof TaskTimeoutError ? "timeout" : "error");
    throw err;
  }
}

async function pollTask(client: PveClient, upid: string, parsed: { node: string; type: string }, deadline: number, signal?: AbortSignal): Promise<void> {
  for (let i = 0; ; i++) {
    const s = await client.get<{ status: string; exitstatus?: string }>(`/nodes/${parsed.node}/tasks/${encodeURIComponent(upid)}/status`, {}, { signal, deadline });
    if (s.status === "stopped") {
      if (taskSucceeded(s.exitstatus)) return;
      throw new TaskFailedError(upid, parsed.type, s.exitstatus ?? "unknown error");
    }
    const wait = pollMs(i);
    if (Date.now() + wait > deadline) throw new TaskTimeoutError(`task ${parsed.type} did not finish in time`);
    await sleep(wait, signal);
  }
}
