/*
 * Counts by two keys (route × status class, event × outcome), the first examples of each failure, and
 * grids of given cells (the auth matrix), as plain tables: these figures are meant to be read in a CI log.
 */

export class Tally {
  private readonly cells = new Map<string, Map<string, number>>();
  private readonly columns = new Set<string>();

  add(row: string, column: string): void {
    let cols = this.cells.get(row);
    if (!cols) {
      cols = new Map();
      this.cells.set(row, cols);
    }
    cols.set(column, (cols.get(column) ?? 0) + 1);
    this.columns.add(column);
  }

  get total(): number {
    let n = 0;
    for (const cols of this.cells.values()) for (const c of cols.values()) n += c;
    return n;
  }

  /** The count of one column over every row. */
  column(column: string): number {
    let n = 0;
    for (const cols of this.cells.values()) n += cols.get(column) ?? 0;
    return n;
  }

  get rows(): string[] {
    return [...this.cells.keys()];
  }

  /** The table as text: one row per key, one column per value seen, totals last. */
  format(title: string, columnOrder: readonly string[] = []): string {
    const columns = [...columnOrder.filter((c) => this.columns.has(c)), ...[...this.columns].filter((c) => !columnOrder.includes(c)).sort()];
    const rows = [...this.cells.keys()].sort();
    const width = Math.max(title.length, ...rows.map((r) => r.length), 5);
    const colWidth = columns.map((c) => Math.max(c.length, 5));
    const line = (label: string, values: string[]): string => `${label.padEnd(width)}  ${values.map((v, i) => v.padStart(colWidth[i] ?? 5)).join("  ")}`;
    const out = [line(title, [...columns, "total"].map((c, i) => (i < columns.length ? c : "total")))];
    for (const row of rows) {
      const cols = this.cells.get(row) as Map<string, number>;
      const values = columns.map((c) => String(cols.get(c) ?? "."));
      out.push(line(row, [...values, String([...cols.values()].reduce((a, b) => a + b, 0))]));
    }
    out.push(line("total", [...columns.map((c) => String(this.column(c))), String(this.total)]));
    return out.join("\n");
  }
}

/** Failures by kind, with the first few examples of each for the report. */
export class Failures {
  private readonly byKind = new Map<string, { count: number; examples: string[] }>();

  add(kind: string, example: string): void {
    const entry = this.byKind.get(kind) ?? { count: 0, examples: [] };
    entry.count++;
    if (entry.examples.length < 3) entry.examples.push(example.length > 600 ? `${example.slice(0, 600)}…` : example);
    this.byKind.set(kind, entry);
  }

  get count(): number {
    let n = 0;
    for (const e of this.byKind.values()) n += e.count;
    return n;
  }

  format(): string {
    if (this.byKind.size === 0) return "failures: none";
    const out = ["failures:"];
    for (const [kind, e] of this.byKind) {
      out.push(`  ${kind}: ${e.count}`);
      for (const ex of e.examples) out.push(`    e.g. ${ex}`);
    }
    return out.join("\n");
  }
}

/** A table of given cells (route × credential → outcome), aligned for a CI log. */
export function formatGrid(title: string, columns: readonly string[], rows: readonly { label: string; cells: readonly string[] }[]): string {
  const width = Math.max(title.length, ...rows.map((r) => r.label.length));
  const colWidth = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r.cells[i] ?? "").length)));
  const line = (label: string, cells: readonly string[]): string => `${label.padEnd(width)}  ${cells.map((c, i) => c.padStart(colWidth[i] ?? 0)).join("  ")}`;
  return [line(title, columns), ...rows.map((r) => line(r.label, r.cells))].join("\n");
}
