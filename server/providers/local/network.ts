/**
 * The host bridge and each sandbox's network namespace and veth pair, made
 * with as few `ip` processes as possible (`ip -batch`).
 */
import { promises as fs } from "node:fs";
import type { Subnet } from "./addresses.js";
import { HostCommandError, exists, readText, run, writeControl } from "./host.js";
import type { Names } from "./names.js";

const NETNS_DIR = "/run/netns";

export class Network {
  constructor(
    private readonly names: Names,
    private readonly subnet: Subnet,
  ) {}

  netnsPath(id: string): string {
    return `${NETNS_DIR}/${this.names.netns(id)}`;
  }

  /** Creates the bridge if missing, with its gateway address; enables IPv4 forwarding for egress. */
  async ensureBridge(): Promise<void> {
    const br = this.names.bridge;
    const gw = `${this.subnet.gateway}/${this.subnet.prefix}`;
    const script = [
      ...((await exists(`/sys/class/net/${br}`)) ? [] : [`link add name ${br} address ${this.names.bridgeMac()} type bridge`]),
      `addr replace ${gw} dev ${br}`,
      `link set ${br} up`,
    ];
    await run("ip", ["-batch", "-"], { input: script.join("\n") + "\n" });
    // Sandboxes have no IPv6; keep the bridge from speaking it either.
    await writeControl(`/proc/sys/net/ipv6/conf/${br}/disable_ipv6`, "1").catch(() => {});
    await writeControl("/proc/sys/net/ipv4/ip_forward", "1");
    await this.ensureNetnsDir();
  }

  /**
   * `ip netns add` turns /run/netns into a shared mount the first time; done
   * once here so concurrent creates do not race to stack bind mounts.
   */
  private async ensureNetnsDir(): Promise<void> {
    const mountinfo = (await readText("/proc/self/mountinfo")) ?? "";
    if (mountinfo.split("\n").some((l) => l.split(" ")[4] === NETNS_DIR)) return;
    const probe = `${this.names.instance}-probe`;
    await run("ip", ["netns", "add", probe]);
    await run("ip", ["netns", "del", probe]);
  }

  /** Idempotent: a bridge removed meanwhile (a concurrent purge of the same instance) is no error. */
  async removeBridge(): Promise<void> {
    if (await exists(`/sys/class/net/${this.names.bridge}`)) {
      await run("ip", ["link", "del", this.names.bridge]).catch(async (e) => {
        if (await exists(`/sys/class/net/${this.names.bridge}`)) throw e;
      });
    }
  }

  /**
   * Namespace, veth pair on the bridge (port isolated), address, routes: two
   * `ip` runs. The address is a /32 with only the gateway on-link, so every
   * packet, to another sandbox too, goes to the host, whose firewall refuses
   * at once what it blocks. (With the subnet on-link a sandbox would ARP for
   * its neighbours, which port isolation silences: a connect would hang for
   * the ARP timeout instead of failing.) `guard` writes the namespace's own
   * guard table (firewall.ts) once the namespace exists, before the jail starts.
   */
  async createSandbox(id: string, address: string, guard?: () => Promise<void>): Promise<void> {
    const ns = this.names.netns(id);
    const veth = this.names.veth(id);
    const mac = this.names.sandboxMac(address);
    await run("ip", ["-batch", "-"], {
      input: [
        `netns add ${ns}`,
        `link add name ${veth} master ${this.names.bridge} type veth peer name eth0 address ${mac} netns ${ns}`,
        // With br_netfilter loaded bridged frames are filtered too, but isolation stops
        // sandbox-to-sandbox frames at the bridge itself.
        `link set ${veth} type bridge_slave isolated on`,
        `link set ${veth} up`,
        "",
      ].join("\n"),
    });
    const inside = run("ip", ["-n", ns, "-batch", "-"], {
      input: [
        `addr add ${address}/32 dev eth0`,
        "link set lo up",
        "link set eth0 up",
        `route add ${this.subnet.gateway} dev eth0 scope link`,
        `route add default via ${this.subnet.gateway}`,
        "",
      ].join("\n"),
    });
    // Nothing runs in the namespace yet: its guard goes in meanwhile (the build waits for both).
    const results = await Promise.allSettled([inside, guard?.()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /** Deletes the veth pair (synchronously, unlike the namespace's own teardown) and the namespace. */
  async deleteSandbox(id: string): Promise<void> {
    const ns = this.names.netns(id);
    const veth = this.names.veth(id);
    const lines: string[] = [];
    if (await exists(`/sys/class/net/${veth}`)) lines.push(`link del ${veth}`);
    if (await exists(`${NETNS_DIR}/${ns}`)) lines.push(`netns del ${ns}`);
    if (lines.length === 0) return;
    try {
      await run("ip", ["-force", "-batch", "-"], { input: lines.join("\n") + "\n" });
    } catch (e) {
      // -force went on past errors; what matters is whether both are gone now.
      if ((await exists(`/sys/class/net/${veth}`)) || (await exists(`${NETNS_DIR}/${ns}`))) throw e;
      if (!(e instanceof HostCommandError)) throw e;
    }
  }

  /**
   * Checks that each sandbox's host-side veth is still an isolated bridge
   * port (frames between sandboxes stop at the bridge, whatever nftables
   * holds) and isolates again any that is not. Returns the veths it fixed.
   */
  async ensurePortsIsolated(ids: readonly string[]): Promise<string[]> {
    const fixed: string[] = [];
    for (const id of ids) {
      const veth = this.names.veth(id);
      const flag = (await readText(`/sys/class/net/${veth}/brport/isolated`))?.trim();
      if (flag === undefined || flag === "1") continue;
      await run("ip", ["link", "set", veth, "type", "bridge_slave", "isolated", "on"]);
      fixed.push(veth);
    }
    return fixed;
  }

  /** Ids of this instance's namespaces under /run/netns. */
  async listNetnsIds(): Promise<string[]> {
    const names = await fs.readdir(NETNS_DIR).catch(() => [] as string[]);
    return names.map((n) => this.names.idOfNetns(n)).filter((id): id is string => id !== undefined);
  }

  /** Ids of host-side veths with this instance's prefix that hang on this instance's bridge (or on none). */
  async listVethIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const name of await fs.readdir("/sys/class/net")) {
      const id = this.names.idOfVeth(name);
      if (!id) continue;
      const master = await fs.readlink(`/sys/class/net/${name}/master`).catch(() => undefined);
      if (master === undefined || master.endsWith(`/${this.names.bridge}`)) ids.push(id);
    }
    return ids;
  }

  /** Inode of a namespace file, to find processes inside it (/proc/<pid>/ns/net). */
  async netnsInode(id: string): Promise<number | undefined> {
    try {
      return (await fs.stat(this.netnsPath(id))).ino;
    } catch {
      return undefined;
    }
  }
}
