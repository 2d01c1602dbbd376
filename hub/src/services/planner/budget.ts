import { LabrigError } from "@labrig/shared";

export interface BudgetLimits {
  requestsPerDay: number;
  tokensPerDay: number;
}

export interface UsageToday {
  requests: number;
  tokens: number;
}

/** Seconds until the budget resets (UTC midnight), for retry_after. */
export function secondsUntilUtcMidnight(now = new Date()): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.ceil((next - now.getTime()) / 1000);
}

/** Start of today (UTC) as ISO, the lower bound for counting today's usage. */
export function startOfUtcDay(now = new Date()): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString();
}

/**
 * The daily budget: usage is read from the stored plans (so a restart does not reset it) and
 * checked before every model call; the day is a UTC day.
 */
export class PlannerBudget {
  constructor(
    private readonly limits: BudgetLimits,
    private readonly usageSince: (sinceIso: string) => UsageToday,
  ) {}

  usage(now = new Date()): UsageToday & BudgetLimits {
    return { ...this.usageSince(startOfUtcDay(now)), ...this.limits };
  }

  /** Throws `budget_exhausted` (with retry_after until the reset) when today's requests or tokens are spent. */
  check(now = new Date()): void {
    const u = this.usage(now);
    if (u.requests >= u.requestsPerDay || u.tokens >= u.tokensPerDay) {
      throw new LabrigError(
        "budget_exhausted",
        `The planner's daily budget is spent (${u.requests}/${u.requestsPerDay} requests, ${u.tokens}/${u.tokensPerDay} tokens). It resets at 00:00 UTC; raise GEMINI_DAILY_REQUESTS or GEMINI_DAILY_TOKENS to allow more.`,
        { retryAfter: secondsUntilUtcMidnight(now) },
      );
    }
  }
}
