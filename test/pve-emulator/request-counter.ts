/**
 * Counts the API requests the emulator receives, in total and per route
 * ("GET /nodes/{node}/lxc/{vmid}/config"), so a benchmark or test can say how
 * many Proxmox calls sandboxd made. Counted on arrival, before faults and
 * authentication: a refused or dropped request still cost the client a call.
 */

export interface RequestCounts {
  total: number;
  /** "METHOD path-template" → requests; unknown paths count under "METHOD (unmatched)". */
  byRoute: Record<string, number>;
}

export class RequestCounter {
  private total = 0;
  private readonly byRoute = new Map<string, number>();

  count(key: string): void {
    this.total++;
    this.byRoute.set(key, (this.byRoute.get(key) ?? 0) + 1);
  }

  /** A copy: later requests do not change it, so two snapshots can be subtracted. */
  snapshot(): RequestCounts {
    return { total: this.total, byRoute: Object.fromEntries(this.byRoute) };
  }
}

/** What happened between two snapshots (routes with no requests in between left out). */
export function countsBetween(before: RequestCounts, after: RequestCounts): RequestCounts {
  const byRoute: Record<string, number> = {};
  for (const [k, n] of Object.entries(after.byRoute)) {
    const d = n - (before.byRoute[k] ?? 0);
    if (d > 0) byRoute[k] = d;
  }
  return { total: after.total - before.total, byRoute };
}
