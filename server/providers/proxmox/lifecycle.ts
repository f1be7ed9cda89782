/** Per-container steps shared by create and destroy: stop+purge, waiting for the IPv4 and for sshd. */
import { sshBannerAnswers } from "../../ssh/banner.js";
import type { PveClient } from "./client.js";
import { classify, pollMs, sleep } from "./retry.js";
import { TaskFailedError, waitTask } from "./tasks.js";

export const ctPath = (node: string, vmid: number) => `/nodes/${node}/lxc/${vmid}`;

const gone = (e: unknown) => ["not_found", "permission"].includes(classify(e));

/**
 * Stops (if running) and destroys with purge. Idempotent: a missing CT (not
 * found, or 403 because it left the pool) is success. A failed destroy task is retried.
 */
export async function destroyVm(client: PveClient, node: string, vmid: number, deadline: number): Promise<void> {
  const path = ctPath(node, vmid);
  for (let attempt = 0; ; attempt++) {
    try {
      const st = await client.get<{ status: string }>(`${path}/status/current`, {}, { deadline });
      if (st.status === "running") {
        try {
          await waitTask(client, await client.post<string>(`${path}/status/stop`, {}, { retry: "idempotent", deadline }), deadline);
        } catch (e) {
          // "not running" (raced) is fine; any other stop failure is left to force=1 below.
          if (gone(e)) return;
        }
      }
      const upid = await client.delete<string>(path, { purge: 1, force: 1, "destroy-unreferenced-disks": 1 }, { deadline });
      await waitTask(client, upid, deadline);
      return;
    } catch (e) {
      if (gone(e)) return;
      const retriable = e instanceof TaskFailedError || classify(e) === "transient" || classify(e) === "locked";
      if (!retriable || attempt >= 5 || Date.now() > deadline) throw e;
      await sleep(pollMs(attempt + 2));
    }
  }
}

interface Iface {
  name: string;
  inet?: string;
  "ip-addresses"?: { "ip-address": string; "ip-address-type": string }[];
}

/** eth0's IPv4 address from /interfaces, if it has one yet. */
export function ipv4Of(ifaces: Iface[] | null | undefined): string | undefined {
  const eth0 = (ifaces ?? []).find((i) => i.name === "eth0");
  if (!eth0) return undefined;
  if (eth0.inet && /^\d+\.\d+\.\d+\.\d+\//.test(eth0.inet)) return eth0.inet.split("/")[0];
  return eth0["ip-addresses"]?.find((a) => a["ip-address-type"] === "inet")?.["ip-address"];
}

export async function waitIpv4(client: PveClient, node: string, vmid: number, deadline: number, signal?: AbortSignal): Promise<string> {
  for (let i = 0; ; i++) {
    const ip = ipv4Of(await client.get<Iface[] | null>(`${ctPath(node, vmid)}/interfaces`, {}, { deadline, signal }));
    if (ip) return ip;
    const wait = pollMs(i);
    if (Date.now() + wait > deadline) throw new Error(`CT ${vmid} got no IPv4 address on eth0 in time`);
    await sleep(wait, signal);
  }
}

export async function waitSsh(host: string, port: number, deadline: number, signal?: AbortSignal): Promise<void> {
  for (let i = 0; ; i++) {
    signal?.throwIfAborted();
    if (await sshBannerAnswers(host, port, Math.max(100, Math.min(3000, deadline - Date.now())))) return;
    const wait = pollMs(i);
    if (Date.now() + wait > deadline) throw new Error(`sshd on ${host}:${port} did not answer in time`);
    await sleep(wait, signal);
  }
}
