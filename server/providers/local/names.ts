/**
 * Every host object a runtime instance makes is named from the instance name
 * and the sandbox id, so start-up recovery finds exactly its own leftovers and
 * never touches another instance's.
 *
 *   sandbox id      sbx-<10 of [a-z0-9]>                       e.g. sbx-k3j9x0q2ab
 *   netns           <instance>-<id>                            /run/netns/sandboxd-sbx-k3j9x0q2ab
 *   cgroups         <controller root>/<instance>/<id>[/user|/sshd]
 *   nft table       inet sandboxd_<instance, "-" as "_">
 *   state           <stateDir>/sandboxes/<id>/
 *   bridge          "sbxbr" + hex[0..8)       (13 chars; overridable)
 *   host-side veth  "sx" + hex[0..3) + the id's 10 random chars   (15 chars, the kernel's limit)
 *   sandbox MACs    02:<hex byte>:<the 4 address bytes>; the bridge's MAC is fixed too
 * where hex = sha256(instance). Interface names are at most 15 characters.
 */
import { createHash, randomBytes } from "node:crypto";

export const ID_PATTERN = /^sbx-[a-z0-9]{10}$/;
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

export function newSandboxId(): string {
  const bytes = randomBytes(10);
  let s = "sbx-";
  for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return s;
}

export const INSTANCE_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;

export class Names {
  readonly hash: string;
  readonly bridge: string;
  readonly table: string;
  private readonly vethPrefix: string;

  constructor(
    readonly instance: string,
    bridge?: string,
  ) {
    if (!INSTANCE_PATTERN.test(instance)) {
      throw new Error(`instance name ${JSON.stringify(instance)} must match ${INSTANCE_PATTERN}`);
    }
    this.hash = createHash("sha256").update(instance).digest("hex");
    this.bridge = bridge ?? `sbxbr${this.hash.slice(0, 8)}`;
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(this.bridge)) throw new Error(`bad bridge name ${this.bridge}`);
    this.table = `sandboxd_${instance.replace(/-/g, "_")}`;
    this.vethPrefix = `sx${this.hash.slice(0, 3)}`;
  }

  netns(id: string): string {
    return `${this.instance}-${id}`;
  }

  /** The id a netns name belongs to, if it is one of this instance's. */
  idOfNetns(name: string): string | undefined {
    const prefix = `${this.instance}-`;
    if (!name.startsWith(prefix)) return undefined;
    const id = name.slice(prefix.length);
    return ID_PATTERN.test(id) ? id : undefined;
  }

  veth(id: string): string {
    return this.vethPrefix + id.slice(4);
  }

  idOfVeth(name: string): string | undefined {
    if (name.length !== 15 || !name.startsWith(this.vethPrefix)) return undefined;
    const id = `sbx-${name.slice(this.vethPrefix.length)}`;
    return ID_PATTERN.test(id) ? id : undefined;
  }

  /** Locally administered unicast MAC from the address, so a reused address keeps its MAC and no ARP entry goes stale. */
  sandboxMac(address: string): string {
    const bytes = [0x02, parseInt(this.hash.slice(0, 2), 16), ...address.split(".").map(Number)];
    return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
  }

  /** Fixed so the bridge's MAC (the sandboxes' gateway) does not change as ports come and go. */
  bridgeMac(): string {
    const h = this.hash.slice(2, 12);
    return `02:${h.match(/../g)!.join(":")}`;
  }
}
