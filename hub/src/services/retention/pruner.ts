import { rmSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { Logger } from "../../logger.js";
import type { PruneBatch, RetentionRepository } from "../../repositories/retention.js";

/** How long history is kept, in days (0: forever), and how often the prune runs. */
export interface RetentionSettings {
  actionsDays: number;
  hostEventsDays: number;
  plansDays: number;
  runsDays: number;
  leasesDays: number;
  intervalMs: number;
}

/** What one prune removed. */
export interface PruneReport {
  actions: number;
  host_events: number;
  plans: number;
  plan_frames: number;
  runs: number;
  run_dirs: number;
  leases: number;
  /** Database pages handed back to the file system. */
  freed_pages: number;
  duration_ms: number;
}

/** The first prune after a start waits this long at most: the reconnect burst of the fleet comes first. */
const FIRST_PRUNE_MAX_DELAY_MS = 60_000;

/** Ids the hub generates for runs and plans; nothing else is ever turned into a path to delete. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const DAY_MS = 86_400_000;

/**
 * Retention: deletes actions, host events, plans (with their frame files), runs (with their
 * artifact directories) and ended leases older than their settings, in short batches that yield to
 * the event loop, then hands the freed pages back to the file system with an incremental vacuum and
 * truncates the WAL. Incremental rather than a full VACUUM: it needs no second copy of the database
 * on disk, runs in milliseconds per prune instead of rewriting the whole file, and never holds the
 * write lock for long, so it can run hourly while agents report results.
 */
export class RetentionPruner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PruneReport> | null = null;
  private stopping = false;

  constructor(
    private readonly repo: RetentionRepository,
    private readonly dirs: { runs: string; plans: string },
    private readonly settings: RetentionSettings,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopping = false;
    const schedule = (delayMs: number): void => {
      this.timer = setTimeout(() => {
        void this.prune().finally(() => {
          if (!this.stopping) schedule(this.settings.intervalMs);
        });
      }, delayMs);
      this.timer.unref();
    };
    schedule(Math.min(this.settings.intervalMs, FIRST_PRUNE_MAX_DELAY_MS));
  }

  /** Stops the timer and waits for a prune under way to finish its current batch. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One prune now (the timer's, also callable by tools and tests); a second call while one runs joins it. */
  prune(nowMs = Date.now()): Promise<PruneReport> {
    this.running ??= this.pruneOnce(nowMs).finally(() => (this.running = null));
    return this.running;
  }

  private async pruneOnce(nowMs: number): Promise<PruneReport> {
    const started = Date.now();
    const s = this.settings;
    const report: PruneReport = { actions: 0, host_events: 0, plans: 0, plan_frames: 0, runs: 0, run_dirs: 0, leases: 0, freed_pages: 0, duration_ms: 0 };
    try {
      const cutoff = (days: number): string | null => (days === 0 ? null : new Date(nowMs - days * DAY_MS).toISOString());
      const actionsFrom = { seq: 0 };
      const eventsFrom = { seq: 0 };
      const runsFrom = { seq: 0 };
      report.actions = await this.batches(cutoff(s.actionsDays), (c) => this.repo.pruneActions(c, actionsFrom));
      report.host_events = await this.batches(cutoff(s.hostEventsDays), (c) => this.repo.pruneHostEvents(c, eventsFrom));
      report.plans = await this.batches(cutoff(s.plansDays), (c) => this.repo.prunePlans(c), (id) => {
        if (this.remove(join(this.dirs.plans, `${id}.jpg`), id)) report.plan_frames++;
      });
      report.runs = await this.batches(cutoff(s.runsDays), (c) => this.repo.pruneRuns(c, runsFrom), (id) => {
        if (this.remove(join(this.dirs.runs, id), id)) report.run_dirs++;
      });
      report.leases = await this.batches(cutoff(s.leasesDays), (c) => this.repo.pruneLeases(c));
      report.freed_pages = this.repo.reclaim();
    } catch (err) {
      // A failing prune (disk full, database locked past busy_timeout) must not stop the next one.
      this.logger.error({ err, ...report }, "retention prune failed; the next one retries");
    }
    report.duration_ms = Date.now() - started;
    this.logger.info(report, "retention prune");
    return report;
  }

  /** Runs batches until none is left (or the hub stops), yielding between them; returns the rows deleted. */
  private async batches(cutoff: string | null, batch: (cutoff: string) => PruneBatch, onDeleted?: (id: string) => void): Promise<number> {
    if (cutoff === null) return 0;
    let total = 0;
    for (;;) {
      const b = batch(cutoff);
      total += b.deleted;
      if (onDeleted) for (const id of b.ids) onDeleted(id);
      if (!b.more || this.stopping) return total;
      await yieldToEventLoop();
    }
  }

  /** Deletes a run directory or frame file the database no longer knows; true when something was there. */
  private remove(path: string, id: string): boolean {
    if (!UUID.test(id)) {
      this.logger.warn({ id }, "retention: not deleting files for an id the hub did not generate");
      return false;
    }
    try {
      rmSync(path, { recursive: true, force: false });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      this.logger.warn({ path, err: (err as Error).message }, "retention: could not delete files of a pruned record");
      return false;
    }
  }
}
