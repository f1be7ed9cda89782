/** Test client for the emulator's specs: https with the emulator's CA, answers with reason phrase and parsed body. */
import { readFileSync } from "node:fs";
import https from "node:https";
import type { Connection } from "./index.js";

export interface Answer {
  status: number;
  reason: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined for an empty body. */
  body: any;
}

export interface RequestOptions {
  /** Form body (string values) or JSON body (object, sent as application/json). */
  form?: Record<string, string>;
  json?: Record<string, unknown>;
  /** Authorization header; null sends none. Default the connection's token. */
  auth?: string | null;
}

export class PveClient {
  private readonly ca: string;
  constructor(readonly conn: Connection) {
    this.ca = readFileSync(conn.caFile, "utf8");
  }

  get token(): string {
    return `PVEAPIToken=${this.conn.tokenId}=${this.conn.secret}`;
  }

  request(method: string, path: string, o: RequestOptions = {}): Promise<Answer> {
    const url = new URL(`${this.conn.url}/api2/json${path}`);
    const body = o.json ? JSON.stringify(o.json) : o.form ? new URLSearchParams(o.form).toString() : undefined;
    const headers: Record<string, string> = {};
    const auth = o.auth === undefined ? this.token : o.auth;
    if (auth !== null) headers.Authorization = auth;
    if (body !== undefined) {
      headers["Content-Type"] = o.json ? "application/json" : "application/x-www-form-urlencoded";
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, ca: this.ca, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode!, reason: res.statusMessage ?? "", headers: res.headers, body: text ? JSON.parse(text) : undefined });
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  async data(method: string, path: string, o: RequestOptions = {}): Promise<any> {
    const a = await this.request(method, path, o);
    if (a.status !== 200) throw new Error(`${method} ${path}: ${a.status} ${a.reason}`);
    return a.body.data;
  }

  /** Polls a task until it stops; returns its status object. */
  async waitTask(node: string, upid: string, intervalMs = 50): Promise<any> {
    for (;;) {
      const s = await this.data("GET", `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`);
      if (s.status === "stopped") return s;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
