/**
 * Attack: blocked UDP is refused with an ICMP error, and the kernel budgets
 * ICMP errors. A sandbox flooding blocked addresses must not use up what
 * another sandbox needs to be refused at once (its blocked UDP would then hang
 * until a timeout). Run from inside real sandboxes; the flood goes to the
 * host's own bridge address, which the firewall refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../server/providers/local/index.js";
import type { SandboxHandle, SandboxSpec } from "../../server/providers/provider.js";
import { sshExec } from "../../server/providers/local/testing.js";

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
  const rt = new LocalRuntime({ instance: "sandboxd-t-sec1", subnet: "198.18.220.0/24" });
  let attacker: SandboxHandle;
  let victim: SandboxHandle;

  beforeAll(async () => {
    await rt.start();
    [attacker, victim] = await Promise.all([rt.create(spec), rt.create(spec)]);
  });
  afterAll(async () => {
    await rt.purge();
  });

  it("keeps refusing the victim's blocked UDP at once while the attacker floods", async () => {
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
    // Within the kernel's per-destination burst, every one of the victim's tries is refused.
    expect(during).toEqual({ EHOSTUNREACH: 5 });
  });
});
