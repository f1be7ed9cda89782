/**
 * Takes a session channel's stdout and stderr data as ssh2 receives it, in
 * arrival order, with backpressure through the SSH window.
 *
 * Pausing ssh2's two Readables would keep each stream's order but lose the
 * interleaving between them (each buffers separately). So we intercept the
 * `push` calls ssh2's packet handler makes: returning false there is ssh2's
 * own signal to stop granting window (it sets `_waitChanDrain`), and
 * `Channel._read` is what grants it again. Relies on ssh2 1.x internals
 * (package.json pins 1.17.0); server/ssh/exec.spec.ts covers the behaviour.
 *
 * Must be installed synchronously in ssh2's exec callback: one TCP read can
 * carry the exec reply, all output, exit-status and close, all handled before
 * any await resumes. Until attach(), data and the exit are held here, and
 * the window stays shut: at most one SSH window (2 MiB) is ever held.
 */
import type { ClientChannel } from "ssh2";

export type OutputStream = "stdout" | "stderr";

export interface OutputHandlers {
  data(stream: OutputStream, data: Buffer): void;
  exit(code: number | null, signal: string | null): void;
}

interface Ssh2ChannelInternals {
  push(chunk: Buffer | null): boolean;
  _read(n: number): void;
  stderr: { push(chunk: Buffer | null): boolean; resume(): void };
  resume(): void;
}

export class ChannelOutput {
  private paused = false;
  private handlers?: OutputHandlers;
  private early: Array<[OutputStream, Buffer]> = [];
  private exit?: [number | null, string | null];

  constructor(readonly channel: ClientChannel) {
    const ch = channel as unknown as Ssh2ChannelInternals;
    const pushOut = ch.push.bind(ch);
    const pushErr = ch.stderr.push.bind(ch.stderr);
    ch.push = (chunk) => (chunk === null ? pushOut(null) : this.take("stdout", chunk));
    ch.stderr.push = (chunk) => (chunk === null ? pushErr(null) : this.take("stderr", chunk));
    channel.once("exit", (code: number | null, signal?: string) => {
      this.exit = [code ?? null, code === null || code === undefined ? (signal ?? null) : null];
      this.handlers?.exit(...this.exit);
    });
  }

  /** Starts delivery (held data first). The channel's 'close' can only follow this. */
  attach(handlers: OutputHandlers): void {
    this.handlers = handlers;
    for (const [stream, data] of this.early.splice(0)) handlers.data(stream, data);
    if (this.exit) handlers.exit(...this.exit);
    // Nothing is pushed into the Readables but their end: let it flow so ssh2
    // sees 'end' and emits the channel's 'close'.
    const ch = this.channel as unknown as Ssh2ChannelInternals;
    ch.resume();
    ch.stderr.resume();
    // Grants the window that take() held back before attach (unless the handlers paused already).
    if (!this.paused) ch._read(0);
  }

  /** Drains and ignores all output (control commands). */
  discard(): void {
    this.attach({ data: () => {}, exit: () => {} });
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // Grants the window again if ssh2 held it back while we were paused.
    (this.channel as unknown as Ssh2ChannelInternals)._read(0);
  }

  private take(stream: OutputStream, chunk: Buffer): boolean {
    if (!this.handlers) {
      this.early.push([stream, chunk]);
      return false; // no more window until attach()
    }
    this.handlers.data(stream, chunk);
    return !this.paused;
  }
}
