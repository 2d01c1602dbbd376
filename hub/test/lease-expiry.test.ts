import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HubDatabase } from "../src/db/database.js";
import { MIGRATIONS } from "../src/db/migrations.js";
import { HubBus } from "../src/bus.js";
import { ActionsRepository } from "../src/repositories/actions.js";
import { DevicesRepository } from "../src/repositories/devices.js";
import { HostEventsRepository, type HostEventKind } from "../src/repositories/host-events.js";
import { HostsRepository } from "../src/repositories/hosts.js";
import { LeasesRepository } from "../src/repositories/leases.js";
import { LeaseBook } from "../src/services/lease-book.js";
import { LEASE_CLEANUP_OWNER, LeaseManager } from "../src/services/leases.js";
import { hashToken } from "../src/services/tokens.js";
import { FleetSource } from "../src/services/work/fleet-source.js";
import { LateResults } from "../src/services/work/late-results.js";
import { ActionLedger } from "../src/services/work/ledger.js";
import { Scheduler } from "../src/services/work/scheduler.js";
import { WorkService } from "../src/services/work/work.js";
import { cleanupTempDirs, makeTempDir } from "./helpers.js";

// The lease manager over a real SQLite file and the real work unit (no agent connected: cleanup
// actions wait in its queue, which is where this test looks for them).

const logger = pino({ level: "silent" });

/** Host events whose writes fail while `failing` is set, as they do when the database is locked. */
class FlakyEvents extends HostEventsRepository {
  failing = false;
  override add(event: { hostId: string; deviceId?: string | null; kind: HostEventKind; detail?: string | null; at: string }): void {
    if (this.failing) throw new Error("SQLITE_BUSY: database is locked");
    super.add(event);
  }
}

describe("lease expiry", () => {
  let database: HubDatabase;
  let work: WorkService;
  let leases: LeaseManager;

  beforeEach(() => {
    const dir = makeTempDir();
    database = new HubDatabase(join(dir, "labrig.db"), logger, MIGRATIONS);
    database.start();
  });

  afterEach(() => {
    leases?.stop();
    void work?.stop();
    database.stop();
    cleanupTempDirs();
  });

  it("keeps an expired lease active when ending it cannot be recorded, and ends it with its cleanup on the next sweep", () => {
    const db = database.db;
    const at = new Date().toISOString();
    const hosts = new HostsRepository(db);
    hosts.insert({ id: "rig-1", name: "rig-1", labels: {}, tokenHash: "x", createdAt: at });
    const devices = new DevicesRepository(db);
    devices.replaceForHost("rig-1", [{ id: "dut", labels: {}, capabilities: [], resources: [{ name: "io", kind: "gpio" }] }], at);
    const events = new FlakyEvents(db);
    const actions = new ActionsRepository(db);
    const repo = new LeasesRepository(db);
    const ledger = new ActionLedger(actions, repo, events);
    const scheduler = new Scheduler();
    const book = new LeaseBook();
    const bus = new HubBus(logger);
    work = new WorkService(scheduler, ledger, book, new FleetSource(hosts, devices, scheduler), new LateResults(ledger, bus, logger), bus, { actionTimeoutMs: 10_000, heartbeatIntervalMs: 5000, queueTimeoutMs: 30_000, queueMax: 100, drainMs: 0 }, logger);
    work.start();
    leases = new LeaseManager(repo, book, work, ledger, bus, logger);

    const expired = new Date(Date.now() - 1000).toISOString();
    repo.insert({
      id: "lease-1",
      tokenHash: hashToken("lrl_secret"),
      owner: "ci-job",
      requestedBy: "tester",
      ttlS: 60,
      cleanup: { action: "wait", params: { ms: 0 } },
      devices: [{ host: "rig-1", device: "dut" }],
      createdAt: expired,
      expiresAt: expired,
      endedAt: null,
      endReason: null,
    });
    const cleanups = (): number => actions.list({ host: "rig-1", device: "dut", limit: 50 }).actions.filter((a) => a.requested_by === LEASE_CLEANUP_OWNER).length;

    events.failing = true;
    // start() loads the lease and sweeps at once: the lease is past its expiry, but the write fails.
    leases.start();
    expect(repo.get("lease-1")?.endedAt).toBeNull();
    expect(book.get("lease-1")).toBeDefined();
    expect(cleanups()).toBe(0);

    events.failing = false;
    leases.sweep();
    expect(repo.get("lease-1")?.endReason).toBe("expired");
    expect(book.get("lease-1")).toBeUndefined();
    expect(cleanups()).toBe(1);
    expect(new HostEventsRepository(db).recent("rig-1").some((e) => e.kind === "lease" && e.detail?.includes("lease lease-1 of 'ci-job' ended: expired; cleanup wait queued"))).toBe(true);
  });
});
