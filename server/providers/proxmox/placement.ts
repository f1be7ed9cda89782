/**
 * Placement: the configured node with the most free memory (maxmem - mem),
 * counting memory promised to creates still in flight so that concurrent
 * creates spread instead of all picking the same node.
 */
export interface NodeFigures {
  node: string;
  maxmem: number;
  mem: number;
  status?: string;
}

/** Free bytes per node from /cluster/resources?type=node entries (or /nodes). */
export function freeMemory(entries: NodeFigures[], nodes: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of entries) {
    if (!nodes.includes(e.node) || (e.status !== undefined && e.status !== "online")) continue;
    out.set(e.node, Number(e.maxmem) - Number(e.mem));
  }
  return out;
}

export class Placement {
  private readonly pending = new Map<string, number>();

  constructor(private readonly nodes: string[]) {}

  /** Picks a node and reserves `bytes` on it until release() is called. */
  pick(free: Map<string, number>, bytes: number): { node: string; release: () => void } {
    let best: string | undefined;
    let bestFree = -Infinity;
    for (const node of this.nodes) {
      const f = free.get(node);
      if (f === undefined) continue;
      const effective = f - (this.pending.get(node) ?? 0);
      if (effective > bestFree) {
        best = node;
        bestFree = effective;
      }
    }
    const node = best ?? this.nodes[0]!;
    this.pending.set(node, (this.pending.get(node) ?? 0) + bytes);
    let released = false;
    return {
      node,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.pending.get(node) ?? 0) - bytes;
        if (left <= 0) this.pending.delete(node);
        else this.pending.set(node, left);
      },
    };
  }
}
