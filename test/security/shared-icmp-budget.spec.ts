/**
 * Attack: a sandbox flooding blocked addresses must not make another
 * sandbox's blocked UDP hang until a timeout instead of failing at once. Each
 * sandbox's own guard table refuses it in the sandbox's own stack (EPERM, no
 * ICMP involved); where only the host table is left (a guard removed by hand),
 * the host refuses with ICMP errors, which the kernel budgets per destination,
 * so the attacker's flood must not use up the victim's. Run from inside real
 * sandboxes; the flood goes to the host's own bridge address.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../server/providers/local/index.js";
import type { SandboxHandle, SandboxSpec } from "../../server/providers/provider.js";
import { sshExec } from "../../server/providers/local/testing.js";
import { GUARD_TABLE } from "../../server/providers/local/firewall.js";
import { run } from "../../server/providers/local/host.js";

const spec: SandboxSpec = { cores: 1, memoryMiB: 256, diskGiB: 1, internet: false, labels: {} };

/** n UDP datagrams to host:53, one at a time, each waiting up to 1 s for an answer: a count per outcome. */
const udpTries = (host: string, n: number) => `python3 -c '
import errno, json, socket, sys
seen = {}
for _ in range(${n}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.connect((sys.argv[1], 53))
    try:
        s.send(b"x"); s.recv(1); k = "answered"
    except socket.timeout: k = "timeout"
    except OSError as e: k = errno.errorcode[e.errno]
    seen[k] = seen.get(k, 0) + 1
    s.close()
print(json.dumps(seen))' ${host}`;

describe("a sandbox cannot spend its neighbours' ICMP refusals", () => {
  // No periodic check: the second test removes the guards and needs them gone for its duration.
  const rt = new LocalRuntime({ instance: "sandboxd-t-sec1", subnet: "198.18.220.0/24", isolationCheckIntervalMs: 3_600_000 });
  let attacker: SandboxHandle;
  let victim: SandboxHandle;

  beforeAll(async () => {
    await rt.start();
    [attacker, victim] = await Promise.all([rt.create(spec), rt.create(spec)]);
  });
  afterAll(async () => {
    await rt.purge();
  });

  const floodAndTry = async () => {
    const gw = rt.subnet.gateway;
    // As fast as one core sends (tens of thousands a second), for 6 s.
    const flood = sshExec(attacker.ssh, `timeout 6 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    try: s.sendto(b"x", (sys.argv[1], 53))
    except OSError: pass' ${gw}; echo flooded`, { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    const during = JSON.parse((await sshExec(victim.ssh, udpTries(gw, 5), { timeoutMs: 30_000 })).stdout);
    expect((await flood).stdout).toBe("flooded\n");
    return during;
  };

  it("keeps refusing the victim's blocked UDP at once while the attacker floods", async () => {
    expect(await floodAndTry()).toEqual({ EPERM: 5 });
  });

  it("does so with only the host table left (guards removed by hand)", async () => {
    for (const h of [attacker, victim]) await run("nsenter", [`--net=/run/netns/${rt.names.netns(h.id)}`, "nft", "delete", "table", "inet", GUARD_TABLE]);
    // Within the kernel's per-destination burst, every one of the victim's tries is refused.
    expect(await floodAndTry()).toEqual({ EHOSTUNREACH: 5 });
  });
});
