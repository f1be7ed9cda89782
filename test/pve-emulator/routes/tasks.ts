/** Task status and log; readable by the token that started the task (or its user). */
import { ApiError } from "../http.js";
import { WithExtra, type Call, type Route } from "../context.js";

function task({ emu, p, user }: Call) {
  const t = emu.tasks.get(String(p.node), String(p.upid));
  const owner = t.tokenid ? `${t.user}!${t.tokenid}` : t.user;
  if (owner !== user && t.user !== user) throw new ApiError(403, `Permission check failed (/nodes/${p.node}, Sys.Audit)`);
  return t;
}

export const taskRoutes: Route[] = [
  {
    method: "GET", path: "/nodes/{node}/tasks/{upid}/status",
    handler: (call) => call.emu.tasks.status(task(call)),
  },
  {
    method: "GET", path: "/nodes/{node}/tasks/{upid}/log",
    handler: (call) => {
      const { lines, total } = call.emu.tasks.logPage(task(call), Number(call.p.start ?? 0), Number(call.p.limit ?? 50));
      return new WithExtra(lines, { total });
    },
  },
];
