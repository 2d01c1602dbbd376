import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HubDatabase } from "../src/db/database.js";
import { MIGRATIONS } from "../src/db/migrations.js";
import { ActionsRepository, type NewAction } from "../src/repositories/actions.js";
import { HostEventsRepository } from "../src/repositories/host-events.js";
import { HostsRepository } from "../src/repositories/hosts.js";
import { LeasesRepository } from "../src/repositories/leases.js";
import { ActionLedger } from "../src/services/work/ledger.js";
import type { DeviceSlot } from "../src/services/work/scheduler.js";
import { cleanupTempDirs, makeTempDir } from "./helpers.js";

// The action ledger's staging over a real SQLite file: an action queued inside a commit is written
// once at its end — as running when it was dispatched in the same commit — and never lost.

let database: HubDatabase;
let ledger: ActionLedger;

beforeEach(() => {
  database = new HubDatabase(join(makeTempDir(), "labrig.db"), pino({ level: "silent" }), MIGRATIONS);
  database.start();
  new HostsRepository(database.db).insert({ id: "rig-1", name: "rig-1", labels: {}, tokenHash: "x", createdAt: new Date().toISOString() });
  ledger = new ActionLedger(new ActionsRepository(database.db), new LeasesRepository(database.db), new HostEventsRepository(database.db));
});

afterEach(() => {
  database.stop();
  cleanupTempDirs();
});

const action = (id: string): NewAction => ({ id, host: null, device: null, action: "gpio.read", resource: null, params: {}, target: { selector: { labels: {}, capabilities: [] } }, priority: 0, leaseId: null, requestedBy: "ci", queuedAt: new Date().toISOString() });
const slot = { key: "rig-1/dut", host: "rig-1", device: "dut" } as DeviceSlot;
const rows = () => database.db.prepare("SELECT id, status, attempts, host_id, dispatched_at IS NOT NULL AS dispatched FROM actions ORDER BY seq").all();

describe("the action ledger", () => {
  it("writes an action queued and dispatched in one commit once, as running on its device", () => {
    ledger.commit(() => {
      ledger.queued(action("a1"));
      expect(rows()).toEqual([]);
      ledger.dispatched("a1", slot, "io");
    });
    expect(rows()).toEqual([{ id: "a1", status: "running", attempts: 1, host_id: "rig-1", dispatched: 1 }]);
  });

  it("writes an action that found no device at the end of the commit, as queued", () => {
    ledger.commit(() => ledger.queued(action("a1")));
    expect(rows()).toEqual([{ id: "a1", status: "queued", attempts: 0, host_id: null, dispatched: 0 }]);
  });

  it("writes a staged action before anything else is recorded about it, and when the commit's work throws", () => {
    ledger.commit(() => {
      ledger.queued(action("a1"));
      expect(ledger.endedUnsent("a1", "no_device_available", "none free")).not.toBeNull();
    });
    expect(() =>
      ledger.commit(() => {
        ledger.queued(action("a2"));
        throw new Error("a dispatch pass failed");
      }),
    ).toThrow("a dispatch pass failed");
    expect(rows()).toEqual([
      { id: "a1", status: "failed", attempts: 0, host_id: null, dispatched: 0 },
      { id: "a2", status: "queued", attempts: 0, host_id: null, dispatched: 0 },
    ]);
  });

  it("keeps an action staged when writing its dispatch fails, and writes nothing of it once it is forgotten", () => {
    database.db.exec("CREATE TRIGGER refuse BEFORE INSERT ON actions WHEN NEW.status = 'running' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    ledger.commit(() => {
      ledger.queued(action("a1"));
      expect(() => ledger.dispatched("a1", slot, "io")).toThrow("database or disk is full");
      ledger.forget("a1");
      ledger.queued(action("a2"));
      expect(() => ledger.dispatched("a2", slot, "io")).toThrow("database or disk is full");
    });
    // a1 withdrawn: nothing; a2 not forgotten: still written, as queued (never as running without a device).
    expect(rows()).toEqual([{ id: "a2", status: "queued", attempts: 0, host_id: null, dispatched: 0 }]);
  });
});
