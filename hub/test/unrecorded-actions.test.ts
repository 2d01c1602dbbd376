import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { FakeAgent, post } from "./dispatch-helpers.js";
import { cleanupTempDirs, queryDb, startHub, stopAll, waitFor } from "./helpers.js";

// An action the hub cannot write down (a full or failing disk under its database) must not run: no
// device may do what the records do not show. The failure is real SQLite refusing the write — a
// trigger added from a second connection raises it, as SQLITE_FULL would — against a real hub and a
// real socket.io agent.

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

const EXACT = "/api/hosts/rig-a/devices/dut/actions";

describe("an action whose record cannot be written", () => {
  it("is withdrawn before it runs, whether it was being sent or queued, and the device stays free for the next one", async () => {
    const hub = await startHub();
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut" }]);
    const db = new Database(join(hub.dataDir, "labrig.db"));
    try {
      db.exec("CREATE TRIGGER refuse_writes BEFORE INSERT ON actions WHEN NEW.action = 'gpio.write' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");

      // A free device: the action is recorded before it is sent, so a failed write means it is never sent.
      const sent = await post(hub, EXACT, { action: "gpio.write", params: { value: 1 } });
      expect(sent.status).toBe(500);
      expect(sent.body).toMatchObject({ error_code: "internal_error", message: expect.stringContaining("withdrawn before it ran") });
      expect(agent.executed).toEqual([]);

      // A busy device: the action would wait in the queue, its write fails at once, and nothing of it stays queued.
      agent.hold = true;
      const running = post(hub, EXACT, { action: "gpio.read", params: {} });
      await waitFor(() => agent.held.size === 1, 5000);
      const queued = await post(hub, EXACT, { action: "gpio.write", params: { value: 0 } });
      expect(queued.status).toBe(500);
      expect(queued.body).toMatchObject({ error_code: "internal_error", message: expect.stringContaining("withdrawn before it ran") });
      agent.hold = false;
      agent.release();
      expect((await running).body.status).toBe("succeeded");

      db.exec("DROP TRIGGER refuse_writes");
      const next = await post(hub, EXACT, { action: "gpio.write", params: { value: 1 } });
      expect(next.body).toMatchObject({ status: "succeeded", attempts: 1 });
      // Reached the agent and ran: the read and the last write, nothing else; the database holds exactly those two.
      expect(agent.requests.map((r) => r.action)).toEqual(["gpio.read", "gpio.write"]);
      expect(agent.executed.map((r) => r.action)).toEqual(["gpio.read", "gpio.write"]);
      expect(queryDb<{ action: string; status: string }>(hub.dataDir, "SELECT action, status FROM actions ORDER BY seq")).toEqual([
        { action: "gpio.read", status: "succeeded" },
        { action: "gpio.write", status: "succeeded" },
      ]);
    } finally {
      db.close();
    }
  });

  it("answers with the outcome of an action that ran when only writing its outcome fails, and frees the device", async () => {
    const hub = await startHub();
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut" }]);
    const db = new Database(join(hub.dataDir, "labrig.db"));
    try {
      db.exec("CREATE TRIGGER refuse_outcomes BEFORE UPDATE OF status ON actions WHEN NEW.status = 'succeeded' AND NEW.action = 'gpio.write' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
      const ran = await post(hub, EXACT, { action: "gpio.write", params: { value: 1 } });
      // The truth reaches the caller, so it does not retry (and run it twice).
      expect(ran.body).toMatchObject({ status: "succeeded", result: { value: 1 } });
      db.exec("DROP TRIGGER refuse_outcomes");
      expect((await post(hub, EXACT, { action: "gpio.read", params: {} })).body.status).toBe("succeeded");
      expect(agent.executed.map((r) => r.action)).toEqual(["gpio.write", "gpio.read"]);
    } finally {
      db.close();
    }
  });
});
