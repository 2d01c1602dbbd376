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

/** Tokens a model call is assumed to use before anything was spent today (a frame plus a short answer). */
const FIRST_CALL_TOKENS_ESTIMATE = 2000;

/** Model calls held against the budget by one plan until its usage is stored. */
export interface BudgetReservation {
  /** Reserves one more model call (each call, retries included, takes one first); throws `budget_exhausted` when there is no room. */
  take(): void;
  /** Gives back what this plan held; call once its plan (with its real usage) is stored. */
  release(): void;
}

/**
 * The daily budget: usage is read from the stored plans (so a restart does not reset it), and every
 * model call is reserved before it is made — a request and an estimate of its tokens — so plans that
 * start at the same moment cannot all pass the check and overshoot together. The day is a UTC day.
 */
export class PlannerBudget {
  /** Held by plans whose usage is not stored yet. */
  private readonly pending: UsageToday = { requests: 0, tokens: 0 };

  constructor(
    private readonly limits: BudgetLimits,
    private readonly usageSince: (sinceIso: string) => UsageToday,
  ) {}

  /** Today's stored usage and the limits (what GET /api/plans/usage shows); reservations are not included. */
  usage(now = new Date()): UsageToday & BudgetLimits {
    return { ...this.usageSince(startOfUtcDay(now)), ...this.limits };
  }

  /** Throws `budget_exhausted` (with retry_after until the reset) when today's requests or tokens are spent or held. */
  check(now = new Date()): void {
    this.room(now);
  }

  /** A reservation for one plan's model calls; nothing is held until its first take(). */
  reserve(): BudgetReservation {
    const held: UsageToday = { requests: 0, tokens: 0 };
    return {
      take: () => {
        const tokens = this.room(new Date());
        held.requests += 1;
        held.tokens += tokens;
        this.pending.requests += 1;
        this.pending.tokens += tokens;
      },
      release: () => {
        this.pending.requests -= held.requests;
        this.pending.tokens -= held.tokens;
        held.requests = 0;
        held.tokens = 0;
      },
    };
  }

  /** Checks there is room for one more call; returns the tokens to hold for it (today's average per call). */
  private room(now: Date): number {
    const u = this.usage(now);
    const requests = u.requests + this.pending.requests;
    const tokens = u.tokens + this.pending.tokens;
    if (requests >= u.requestsPerDay || tokens >= u.tokensPerDay) {
      const held = this.pending.requests > 0 ? ` (${this.pending.requests} requests held by plans under way)` : "";
      throw new LabrigError(
        "budget_exhausted",
        `The planner's daily budget is spent (${requests}/${u.requestsPerDay} requests, ${tokens}/${u.tokensPerDay} tokens${held}). It resets at 00:00 UTC; raise GEMINI_DAILY_REQUESTS or GEMINI_DAILY_TOKENS to allow more.`,
        { retryAfter: secondsUntilUtcMidnight(now) },
      );
    }
    return u.requests > 0 ? Math.ceil(u.tokens / u.requests) : FIRST_CALL_TOKENS_ESTIMATE;
  }
}
