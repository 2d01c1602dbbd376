import { LabrigError } from "@labrig/shared";

/**
 * The error a driver throws when its signal fires. The executor aborts with a LabrigError
 * that says why (timeout, cancel, shutdown), so drivers pass that reason on unchanged.
 */
export function abortReason(signal: AbortSignal): LabrigError {
  const reason: unknown = signal.reason;
  if (reason instanceof LabrigError) return reason;
  return new LabrigError("canceled", "The action was aborted before it finished.", { cause: reason });
}

/** Resolves after `ms`, or rejects with the abort reason as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Exponential backoff with a cap: attempt 0 → base, doubling up to max. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
}
