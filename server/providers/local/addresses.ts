/**
 * The sandbox subnet and its address pool. Sandboxes only ever get addresses
 * from 198.18.0.0/15 (benchmarking space, RFC 2544), never routable ones.
 * The first host address is the bridge (the sandboxes' gateway).
 */

const ALLOWED_NET = ipToInt("198.18.0.0");
const ALLOWED_PREFIX = 15;

export function ipToInt(ip: string): number {
  const parts = ip.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

const mask = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

export interface Subnet {
  cidr: string;
  prefix: number;
  network: number;
  /** The bridge's address. */
  gateway: string;
  /** First and last address handed to sandboxes. */
  first: number;
  last: number;
}

export function parseSubnet(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`subnet must be a.b.c.d/len, got ${cidr}`);
  const prefix = Number(m[2]);
  const network = ipToInt(m[1]!);
  if (prefix < ALLOWED_PREFIX || prefix > 29) throw new Error(`subnet ${cidr}: prefix must be /15../29`);
  if ((network & mask(prefix)) >>> 0 !== network) throw new Error(`subnet ${cidr}: host bits set`);
  if ((network & mask(ALLOWED_PREFIX)) >>> 0 !== ALLOWED_NET) throw new Error(`subnet ${cidr} is not inside 198.18.0.0/15`);
  const size = 2 ** (32 - prefix);
  return {
    cidr,
    prefix,
    network,
    gateway: intToIp(network + 1),
    first: network + 2,
    last: network + size - 2,
  };
}

/**
 * Hands out addresses next-fit (continuing after the last one given), so an
 * address just released is not reused at once while conntrack may still hold
 * entries for it.
 */
export class AddressPool {
  private readonly used = new Set<number>();
  private cursor: number;

  constructor(private readonly subnet: Subnet) {
    this.cursor = subnet.first;
  }

  get capacity(): number {
    return this.subnet.last - this.subnet.first + 1;
  }

  contains(ip: string): boolean {
    const n = ipToInt(ip);
    return n >= this.subnet.first && n <= this.subnet.last;
  }

  /** Marks an address in use (an adopted sandbox's); false if it was taken or is outside the pool. */
  take(ip: string): boolean {
    if (!this.contains(ip)) return false;
    const n = ipToInt(ip);
    if (this.used.has(n)) return false;
    this.used.add(n);
    return true;
  }

  allocate(): string | undefined {
    const { first, last } = this.subnet;
    for (let i = 0; i < this.capacity; i++) {
      const n = this.cursor;
      this.cursor = n >= last ? first : n + 1;
      if (!this.used.has(n)) {
        this.used.add(n);
        return intToIp(n);
      }
    }
    return undefined;
  }

  release(ip: string): void {
    this.used.delete(ipToInt(ip));
  }
}
