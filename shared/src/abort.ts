import { LabrigError } from "./errors.js";

// Timers and abort signals, written once for hub and agent: the abortable sleep, the race of a
// promise against a signal, and the bounded wait for something to settle.

/**
 * The error to throw when `signal` fires. Whoever aborts passes a LabrigError that says why
 * (timeout, cancel, shutdown), so it is passed on unchanged; anything else becomes `canceled`.
 */
export function abortReason(signal: AbortSignal): LabrigError {
  const reason: unknown = signal.reason;
  if (reason instanceof LabrigError) return reason;
  return new LabrigError("canceled", "The operation was aborted before it finished.", { cause: reason });
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

/** `work`'s outcome, or the abort reason as soon as `signal` fires (whichever comes first). */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Waits at most `ms` for `work` to settle, either way; true when it did. For shutdowns and
 * cancels that must not hang on a part that ignores them. `work`'s rejection is not rethrown.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([settled, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Exponential backoff with a cap: attempt 0 → base, doubling up to max. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
}
