import type { TestCaseBody, TestCaseRecord } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";

interface SpecRow {
  id: string;
  name: string;
  spec_json: string;
  created_at: string;
  updated_at: string;
}

function toTestCase(row: SpecRow): TestCaseRecord {
  return { id: row.id, ...(JSON.parse(row.spec_json) as TestCaseBody), created_at: row.created_at, updated_at: row.updated_at };
}

/** SQL for `testcases`: the definition is stored whole as JSON (validated before it gets here). */
export class TestCasesRepository {
  private readonly stmts;

  constructor(db: SqliteDb) {
    this.stmts = {
      insert: db.prepare("INSERT INTO testcases (id, name, spec_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"),
      update: db.prepare("UPDATE testcases SET name = ?, spec_json = ?, updated_at = ? WHERE id = ?"),
      get: db.prepare("SELECT * FROM testcases WHERE id = ?"),
      byName: db.prepare("SELECT * FROM testcases WHERE name = ?"),
      list: db.prepare("SELECT * FROM testcases ORDER BY name"),
      remove: db.prepare("DELETE FROM testcases WHERE id = ?"),
      usedBy: db.prepare("SELECT DISTINCT c.id, c.name FROM campaign_testcases ct JOIN campaigns c ON c.id = ct.campaign_id WHERE ct.testcase_id = ? ORDER BY c.name"),
    };
  }

  insert(id: string, body: TestCaseBody, at: string): void {
    this.stmts.insert.run(id, body.name, JSON.stringify(body), at, at);
  }

  update(id: string, body: TestCaseBody, at: string): boolean {
    return this.stmts.update.run(body.name, JSON.stringify(body), at, id).changes > 0;
  }

  get(id: string): TestCaseRecord | undefined {
    const row = this.stmts.get.get(id) as SpecRow | undefined;
    return row ? toTestCase(row) : undefined;
  }

  byName(name: string): TestCaseRecord | undefined {
    const row = this.stmts.byName.get(name) as SpecRow | undefined;
    return row ? toTestCase(row) : undefined;
  }

  list(): TestCaseRecord[] {
    return (this.stmts.list.all() as SpecRow[]).map(toTestCase);
  }

  remove(id: string): boolean {
    return this.stmts.remove.run(id).changes > 0;
  }

  /** Campaigns that list this test case. */
  usedBy(id: string): { id: string; name: string }[] {
    return this.stmts.usedBy.all(id) as { id: string; name: string }[];
  }
}
