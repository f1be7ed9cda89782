/**
 * A single-consumer async queue that counts buffered bytes and tells the
 * producer when to pause (above highWaterMark) and resume (below half), which
 * is how a slow reader ends up stalling the remote through the SSH window.
 */
export interface EventQueueOptions<T> {
  highWaterMark: number;
  size(event: T): number;
  onHigh(): void;
  onLow(): void;
  /**
   * Coalescing: consecutive queued events for which `mergeable` holds are handed
   * out as one `merge`d event of at most `maxMergedSize` bytes. When the consumer
   * lags, this turns many 32 KiB SSH packets into few large messages, and the
   * per-message cost downstream (gRPC framing, HTTP/2 writes) stops dominating.
   */
  mergeable?(a: T, b: T): boolean;
  merge?(events: T[]): T;
  maxMergedSize?: number;
}

export class EventQueue<T> {
  private readonly items: T[] = [];
  private head = 0;
  private bytes = 0;
  private high = false;
  private ended = false;
  private error: { err: unknown } | undefined;
  private waiter: { resolve(r: IteratorResult<T>): void; reject(e: unknown): void } | undefined;

  constructor(private readonly options: EventQueueOptions<T>) {}

  get buffered(): number {
    return this.bytes;
  }

  get done(): boolean {
    return this.ended || this.error !== undefined;
  }

  push(event: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: event, done: false });
      return;
    }
    this.items.push(event);
    this.bytes += this.options.size(event);
    if (!this.high && this.bytes > this.options.highWaterMark) {
      this.high = true;
      this.options.onHigh();
    }
  }

  /** No more events; queued ones are still delivered. */
  end(): void {
    if (this.done) return;
    this.ended = true;
    this.settleWaiter();
  }

  /** Delivers queued events, then rejects with err. */
  fail(err: unknown): void {
    if (this.done) return;
    this.error = { err };
    this.settleWaiter();
  }

  /** Drops whatever is queued (the consumer is gone or no longer wants it). */
  clear(): void {
    this.items.length = 0;
    this.head = 0;
    this.bytes = 0;
    this.checkLow();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      let value = this.take();
      const { mergeable, merge, maxMergedSize = 0, size } = this.options;
      if (mergeable && merge && this.head < this.items.length && mergeable(value, this.items[this.head]!)) {
        const parts = [value];
        let total = size(value);
        while (this.head < this.items.length && mergeable(value, this.items[this.head]!) && total + size(this.items[this.head]!) <= maxMergedSize) {
          const part = this.take();
          parts.push(part);
          total += size(part);
        }
        if (parts.length > 1) value = merge(parts);
      }
      this.checkLow();
      return Promise.resolve({ value, done: false });
    }
    if (this.error) return Promise.reject(this.error.err);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private take(): T {
    const value = this.items[this.head]!;
    this.items[this.head++] = undefined as T; // let the buffer be collected
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    this.bytes -= this.options.size(value);
    return value;
  }

  private checkLow(): void {
    if (this.high && this.bytes <= this.options.highWaterMark / 2) {
      this.high = false;
      this.options.onLow();
    }
  }

  private settleWaiter(): void {
    if (!this.waiter || this.head < this.items.length) return;
    const w = this.waiter;
    this.waiter = undefined;
    if (this.error) w.reject(this.error.err);
    else w.resolve({ value: undefined, done: true });
  }
}
