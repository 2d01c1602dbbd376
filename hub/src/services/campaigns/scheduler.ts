import { Cron } from "croner";
import type { Logger } from "../../logger.js";
import type { CampaignsRepository } from "../../repositories/campaigns.js";
import { checkSchedule } from "./validation.js";

/**
 * Fires scheduled campaigns with croner (time zone honoured, seconds allowed). One job per enabled
 * campaign with a schedule; refresh() after every change. What a firing does is the caller's:
 * the campaign service starts a run, or records it as skipped while the previous one still runs.
 */
export class CampaignScheduler {
  private readonly jobs = new Map<string, Cron>();
  private started = false;

  constructor(
    private readonly campaigns: CampaignsRepository,
    private readonly fire: (campaignId: string, scheduledAt: Date) => void,
    private readonly logger: Logger,
    /** Stored schedules that fire more often (saved before the setting existed, or under a lower one) are not started. */
    private readonly minIntervalS = 0,
  ) {}

  start(): void {
    this.started = true;
    for (const c of this.campaigns.list()) this.refresh(c.id);
  }

  stop(): void {
    this.started = false;
    for (const job of this.jobs.values()) job.stop();
    this.jobs.clear();
  }

  /** (Re)creates the campaign's job from what is stored now; removes it when the campaign is gone, disabled or unscheduled. */
  refresh(campaignId: string): void {
    this.jobs.get(campaignId)?.stop();
    this.jobs.delete(campaignId);
    if (!this.started) return;
    const c = this.campaigns.get(campaignId);
    if (!c || !c.spec.enabled || !c.spec.schedule) return;
    const { cron, timezone } = c.spec.schedule;
    const bad = checkSchedule(cron, timezone, this.minIntervalS);
    if (bad) {
      this.logger.error({ campaign_id: campaignId, cron, timezone, problem: bad.message }, "stored campaign schedule not started; update the campaign's schedule");
      return;
    }
    const job = new Cron(cron, { timezone, name: `campaign:${campaignId}`, catch: (err) => this.logger.error({ err, campaign_id: campaignId }, "scheduled campaign start failed") }, () => {
      const at = new Date();
      this.logger.info({ campaign_id: campaignId, cron, timezone }, "scheduled campaign due");
      this.fire(campaignId, at);
    });
    this.jobs.set(campaignId, job);
  }

  /** When the campaign fires next (null when it has no active schedule). */
  nextRun(campaignId: string): Date | null {
    return this.jobs.get(campaignId)?.nextRun() ?? null;
  }
}
