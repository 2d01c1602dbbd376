import type { CampaignBody } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";

interface SpecRow {
  id: string;
  name: string;
  spec_json: string;
  created_at: string;
  updated_at: string;
}

export interface StoredCampaign {
  id: string;
  spec: CampaignBody;
  createdAt: string;
  updatedAt: string;
}

/** SQL for `campaigns` and their ordered test case list. */
export class CampaignsRepository {
  private readonly stmts;
  private readonly saveTx;

  constructor(db: SqliteDb) {
    this.stmts = {
      insert: db.prepare("INSERT INTO campaigns (id, name, spec_json, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"),
      update: db.prepare("UPDATE campaigns SET name = ?, spec_json = ?, enabled = ?, updated_at = ? WHERE id = ?"),
      clearTests: db.prepare("DELETE FROM campaign_testcases WHERE campaign_id = ?"),
      addTest: db.prepare("INSERT INTO campaign_testcases (campaign_id, position, testcase_id) VALUES (?, ?, ?)"),
      get: db.prepare("SELECT * FROM campaigns WHERE id = ?"),
      byName: db.prepare("SELECT * FROM campaigns WHERE name = ?"),
      list: db.prepare("SELECT * FROM campaigns ORDER BY name"),
      remove: db.prepare("DELETE FROM campaigns WHERE id = ?"),
    };
    this.saveTx = db.transaction((id: string, spec: CampaignBody, at: string, isNew: boolean): boolean => {
      if (isNew) this.stmts.insert.run(id, spec.name, JSON.stringify(spec), spec.enabled ? 1 : 0, at, at);
      else if (this.stmts.update.run(spec.name, JSON.stringify(spec), spec.enabled ? 1 : 0, at, id).changes === 0) return false;
      this.stmts.clearTests.run(id);
      spec.testcases.forEach((tc, i) => this.stmts.addTest.run(id, i, tc));
      return true;
    });
  }

  insert(id: string, spec: CampaignBody, at: string): void {
    this.saveTx(id, spec, at, true);
  }

  update(id: string, spec: CampaignBody, at: string): boolean {
    return this.saveTx(id, spec, at, false);
  }

  get(id: string): StoredCampaign | undefined {
    const row = this.stmts.get.get(id) as SpecRow | undefined;
    return row ? this.toStored(row) : undefined;
  }

  byName(name: string): StoredCampaign | undefined {
    const row = this.stmts.byName.get(name) as SpecRow | undefined;
    return row ? this.toStored(row) : undefined;
  }

  list(): StoredCampaign[] {
    return (this.stmts.list.all() as SpecRow[]).map((r) => this.toStored(r));
  }

  remove(id: string): boolean {
    return this.stmts.remove.run(id).changes > 0;
  }

  private toStored(row: SpecRow): StoredCampaign {
    return { id: row.id, spec: JSON.parse(row.spec_json) as CampaignBody, createdAt: row.created_at, updatedAt: row.updated_at };
  }
}
