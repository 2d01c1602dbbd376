import type { SqliteDb } from "../db/database.js";

/** One page of a table listed newest first by its `seq` column; `next` is the cursor of the next page. */
export interface SeqPage<Row> {
  rows: Row[];
  next: number | null;
}

/**
 * Keyset pagination over `table` by `seq` (stable under inserts, unlike OFFSET): equality filters on
 * the given columns (undefined ones are left out), newest first, one extra row read to know whether
 * another page follows. Table and column names come from the repositories, never from requests.
 */
export function pageBySeq<Row extends { seq: number }>(
  db: SqliteDb,
  table: string,
  filters: Record<string, string | undefined>,
  limit: number,
  beforeSeq: number | undefined,
): SeqPage<Row> {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: limit + 1 };
  for (const [column, value] of Object.entries(filters)) {
    if (value === undefined) continue;
    where.push(`${column} = @${column}`);
    params[column] = value;
  }
  if (beforeSeq !== undefined) {
    where.push("seq < @before_seq");
    params.before_seq = beforeSeq;
  }
  const sql = `SELECT * FROM ${table} ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT @limit`;
  const rows = db.prepare(sql).all(params) as Row[];
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  return { rows: page, next: more && last ? last.seq : null };
}
