/**
 * The lease benchmark's load generator: renews every sandbox once per period
 * with KeepAlive, the renewals spread evenly over the period (1,000 sandboxes
 * every 10 s is one RPC every 10 ms), as many clients each renewing on its own
 * timer would. Slots follow an absolute schedule, so a late timer is caught up
 * rather than stretching the period. With "getSandbox" it sends GetSandbox
 * instead, at the same rate: the same RPC cost without any lease work, the
 * baseline for the server's CPU.
 */
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { nowMs } from "./stats.js";

export interface RenewalCounts {
  sent: number;
  ok: number;
  failed: number;
}

export class Renewer {
  readonly counts: RenewalCounts = { sent: 0, ok: 0, failed: 0 };
  /** Failure messages (code and text) → how often. */
  readonly errors = new Map<string, number>();
  /** KeepAlive round trips in ms. */
  readonly latencies: number[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;
  private loop?: Promise<void>;

  constructor(
    private readonly api: Client<typeof SandboxService>,
    private readonly ids: readonly string[],
    private readonly periodMs: number,
    private readonly rpc: "keepAlive" | "getSandbox" = "keepAlive",
  ) {}

  start(): void {
    this.running = true;
    this.loop ??= this.run();
  }

  /** Stops sending and waits for the renewals in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  snapshot(): RenewalCounts {
    return { ...this.counts };
  }

  private async run(): Promise<void> {
    const slotMs = this.periodMs / this.ids.length;
    const t0 = nowMs();
    for (let slot = 0; this.running; slot++) {
      const wait = t0 + slot * slotMs - nowMs();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      if (!this.running) break;
      this.fire(this.ids[slot % this.ids.length]!);
    }
  }

  private fire(sandboxId: string): void {
    this.counts.sent++;
    const t0 = nowMs();
    const call = this.rpc === "keepAlive" ? this.api.keepAlive({ sandboxId }, { timeoutMs: 30_000 }) : this.api.getSandbox({ sandboxId }, { timeoutMs: 30_000 });
    const p = call.then(
      () => {
        this.counts.ok++;
        this.latencies.push(nowMs() - t0);
      },
      (err: unknown) => {
        this.counts.failed++;
        const e = ConnectError.from(err);
        const key = `${Code[e.code]}: ${e.rawMessage.slice(0, 160)}`;
        this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
      },
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }
}
