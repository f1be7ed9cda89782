import { writeFileSync } from "node:fs";
import { round } from "./stats.js";

/** One benchmark figure; `ratio` is value / baseline, both measured in the same run. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  [extra: string]: unknown;
}

export class BenchResults {
  readonly rows: BenchResult[] = [];

  add(name: string, value: number, unit: string, baseline?: number, extra: Record<string, unknown> = {}): void {
    const row: BenchResult = { name, value: round(value, 3), unit, ...extra };
    if (baseline !== undefined) {
      row.baseline = round(baseline, 3);
      row.ratio = round(value / baseline, 3);
    }
    this.rows.push(row);
    process.stderr.write(`bench: ${name} = ${row.value} ${unit}${baseline !== undefined ? ` (baseline ${row.baseline}, ratio ${row.ratio})` : ""}\n`);
  }

  write(path: string): void {
    writeFileSync(path, JSON.stringify(this.rows, null, 2) + "\n");
  }

  printTable(): void {
    const header = ["name", "value", "unit", "baseline", "ratio"];
    const lines = this.rows.map((r) => [r.name, String(r.value), r.unit, r.baseline === undefined ? "" : String(r.baseline), r.ratio === undefined ? "" : String(r.ratio)]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const fmt = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join("  ");
    console.log(fmt(header));
    console.log(widths.map((w) => "-".repeat(w)).join("  "));
    for (const l of lines) console.log(fmt(l));
  }
}
