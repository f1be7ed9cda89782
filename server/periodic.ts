/**
 * Runs an async task every interval, never two runs at once (a slow run, say
 * a destroy against a struggling Proxmox, must not be started twice). The
 * timer does not keep the process alive.
 */
export class Periodic {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One run now, unless one is under way (then this returns at once). */
  async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.task();
    } finally {
      this.running = false;
    }
  }
}
