import { LabrigError, abortReason, compilePattern, type PatternMatch } from "@labrig/shared";

export interface ExpectOptions {
  pattern: string;
  regex: boolean;
  timeoutMs: number;
  flush: boolean;
}

export interface ExpectResult {
  match: string;
  groups: (string | null)[];
  transcript: string;
}

export interface ExpectEngineOptions {
  /** `device/resource`, for messages. */
  name: string;
  /** Unread characters kept; the oldest are dropped beyond this. */
  bufferChars: number;
  /** How much of the unread output a timeout shows. */
  timeoutTailChars?: number;
}

type Finder = (text: string) => Pick<PatternMatch, "end" | "match" | "groups"> | null;

interface Waiter {
  find: Finder;
  flush: boolean;
  started: boolean;
  resolve: (r: ExpectResult) => void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

export const DEFAULT_EXPECT_BUFFER_CHARS = 64 * 1024;
const DEFAULT_TIMEOUT_TAIL_CHARS = 300;

/**
 * pexpect-style expect over any stream of text, apart from the transport that delivers it:
 * output not yet consumed waits in a bounded buffer; each expect, served first come first
 * served, consumes the buffer up to the end of its match; a flush applies when that expect's
 * turn comes; a timeout shows the tail of what was unread. Patterns are compiled by the shared
 * pattern module (RE2), so matching is linear in the buffer whatever the pattern.
 */
export class ExpectEngine {
  private pending = "";
  private readonly waiters: Waiter[] = [];
  private readonly tailChars: number;

  constructor(private readonly options: ExpectEngineOptions) {
    this.tailChars = options.timeoutTailChars ?? DEFAULT_TIMEOUT_TAIL_CHARS;
  }

  /** Characters held for expect (bounded by bufferChars). */
  get pendingLength(): number {
    return this.pending.length;
  }

  /** Feeds output as it arrives; serves waiting expects. */
  push(text: string): void {
    if (text === "") return;
    this.pending += text;
    if (this.pending.length > this.options.bufferChars) this.pending = this.pending.slice(this.pending.length - this.options.bufferChars);
    this.pump();
  }

  /**
   * Waits for `pattern` in output not consumed by an earlier expect. An invalid pattern throws
   * `validation_failed` at once; timeout, abort and failAll reject.
   */
  expect(options: ExpectOptions, signal?: AbortSignal): Promise<ExpectResult> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const find = options.regex ? regexFinder(options.pattern) : literalFinder(options.pattern);
    return new Promise<ExpectResult>((resolve, reject) => {
      const waiter: Waiter = {
        find,
        flush: options.flush,
        started: false,
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      const remove = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        waiter.cleanup();
      };
      const timer = setTimeout(() => {
        const seen = this.pending.slice(-this.tailChars);
        remove();
        reject(
          new LabrigError(
            "expect_timeout",
            `No ${options.regex ? "match for the regular expression" : "occurrence of the text"} ${JSON.stringify(options.pattern)} on ${this.options.name} within ${options.timeoutMs} ms. ` +
              (seen === "" ? "Nothing unread arrived meanwhile; is the device powered and the baud rate right?" : `Last unread output: ${JSON.stringify(seen)}`),
            { details: { tail: seen } },
          ),
        );
        this.pump();
      }, options.timeoutMs);
      const onAbort = (): void => {
        remove();
        reject(abortReason(signal as AbortSignal));
        this.pump();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /** Rejects every waiting expect with `err` (the transport went away or stopped). */
  failAll(err: LabrigError): void {
    for (const w of this.waiters.splice(0)) {
      w.cleanup();
      w.reject(err);
    }
  }

  /** Serves the head waiter, then the next, until one finds no match in what is unread. */
  private pump(): void {
    for (;;) {
      const head = this.waiters[0];
      if (!head) return;
      if (!head.started) {
        head.started = true;
        // A flush applies when this expect's turn comes, so an earlier expect still sees its text.
        if (head.flush) this.pending = "";
      }
      const m = head.find(this.pending);
      if (!m) return;
      const transcript = this.pending.slice(0, m.end);
      this.pending = this.pending.slice(m.end);
      this.waiters.shift();
      head.cleanup();
      head.resolve({ match: m.match, groups: m.groups, transcript });
    }
  }
}

function literalFinder(pattern: string): Finder {
  return (text) => {
    const i = text.indexOf(pattern);
    return i < 0 ? null : { end: i + pattern.length, match: pattern, groups: [] };
  };
}

function regexFinder(pattern: string): Finder {
  let compiled: ReturnType<typeof compilePattern>;
  try {
    compiled = compilePattern(pattern);
  } catch (err) {
    throw new LabrigError("validation_failed", `params.pattern: ${(err as Error).message}`, { cause: err });
  }
  return (text) => compiled.exec(text);
}
