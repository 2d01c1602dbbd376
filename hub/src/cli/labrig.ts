#!/usr/bin/env node
// `labrig`: the operator and CI client of a hub's REST API. `labrig run CAMPAIGN --wait --junit FILE`
// starts a run, follows it, writes the JUnit report, and exits 0 only when the run passed.
import { backoffMs, sleep } from "@labrig/shared";
import { realpathSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

export const USAGE = `Usage: labrig run <campaign-id-or-name> [--wait] [--junit FILE] [--url URL] [--timeout S] [--retry-for S] [--reruns N]

  --wait         follow the run, printing progress, until it finishes
  --junit FILE   write the run's JUnit XML report to FILE (implies --wait)
  --url URL      the hub (default: $LABRIG_URL or http://127.0.0.1:8080); a path prefix
                 (https://lab.example/labrig) is kept
  --timeout S    with --wait, give up (and cancel the run) after S seconds
  --retry-for S  keep retrying while the hub is unreachable or answers a recoverable error
                 (restarting, 503 with retry_after) for up to S seconds per request (default 300)
  --reruns N     start the campaign again, up to N times, when a run ends 'interrupted' because
                 the hub restarted under it (default 1; 0 never)

Environment: LABRIG_URL, LABRIG_TOKEN (an API key or JWT, sent as Authorization: Bearer).
Exit codes: 0 the run passed (or was started, without --wait); 1 it failed, errored, was
canceled or interrupted; 2 usage or connection errors.`;

export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Poll interval while waiting (tests shorten it). */
  pollMs?: number;
  /** First retry delay after a failed request, doubling up to 10 s (tests shorten it). */
  retryBaseMs?: number;
}

interface RunArgs {
  campaign: string;
  wait: boolean;
  junit: string | null;
  url: string;
  timeoutS: number | null;
  retryForS: number;
  reruns: number;
}

class UsageError extends Error {}
/** The hub could not be reached or answered with an error: exit 2. */
class HubError extends Error {}

function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): RunArgs {
  const [command, ...rest] = argv;
  if (command !== "run") throw new UsageError(command === undefined ? "missing command" : `unknown command '${command}'`);
  const out: RunArgs = { campaign: "", wait: false, junit: null, url: env.LABRIG_URL || "http://127.0.0.1:8080", timeoutS: null, retryForS: 300, reruns: 1 };
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    const value = (): string => {
      const v = rest[++i];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === "--wait") out.wait = true;
    else if (arg === "--junit") out.junit = value();
    else if (arg === "--url") out.url = value();
    else if (arg === "--timeout") {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError("--timeout needs a whole number of seconds");
      out.timeoutS = Number(v);
    } else if (arg === "--retry-for" || arg === "--reruns") {
      const v = value();
      if (!/^\d+$/.test(v)) throw new UsageError(`${arg} needs a whole number`);
      if (arg === "--reruns") out.reruns = Number(v);
      else out.retryForS = Number(v);
    } else if (arg.startsWith("--")) throw new UsageError(`unknown option ${arg}`);
    else positional.push(arg);
  }
  if (positional.length !== 1) throw new UsageError("give exactly one campaign id or name");
  out.campaign = positional[0] as string;
  if (out.junit !== null) out.wait = true;
  try {
    new URL(out.url);
  } catch {
    // new URL throws TypeError on anything unparsable: that is the usage error to report.
    throw new UsageError(`'${out.url}' is not a URL (expected e.g. http://hub.example:8080)`);
  }
  return out;
}

/** The hub's base URL joined with an API path, keeping a path prefix (`new URL("/api", base)` would drop it). */
export function apiUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}${path}`;
}

/** Gateway answers of a proxy in front of a hub that is restarting: worth waiting for. */
const PROXY_RETRY_STATUSES = new Set([502, 503, 504]);

interface Attempt {
  res?: { status: number; text: string; json: Record<string, unknown> };
  /** Why this attempt may be retried, or null when its outcome is final. */
  retry: { reason: string; afterS?: number } | null;
  error?: HubError;
}

async function attempt(args: RunArgs, env: NodeJS.ProcessEnv, method: string, path: string): Promise<Attempt> {
  const headers: Record<string, string> = {};
  if (env.LABRIG_TOKEN) headers.authorization = `Bearer ${env.LABRIG_TOKEN}`;
  let res: Response;
  try {
    res = await fetch(apiUrl(args.url, path), { method, headers, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    const cause = (err as Error).cause as (Error & { code?: string }) | undefined;
    const error = new HubError(`cannot reach the hub at ${args.url}: ${cause instanceof Error ? cause.message : (err as Error).message}`);
    // A POST that may have reached the hub (reset, timeout) is not sent again: it could start a second run.
    const neverArrived = cause?.code === "ECONNREFUSED" || cause?.code === "ENOTFOUND" || cause?.code === "EAI_AGAIN";
    return { error, retry: method === "GET" || neverArrived ? { reason: error.message } : null };
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  if ((res.headers.get("content-type") ?? "").includes("json") && text !== "") {
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      return { error: new HubError(`${method} ${path}: HTTP ${res.status} with a body that is not JSON (${(err as Error).message})`), retry: null };
    }
  }
  if (res.status < 400) return { res: { status: res.status, text, json }, retry: null };
  const message = typeof json.message === "string" ? json.message : text.slice(0, 300);
  const error = new HubError(`${method} ${path}: HTTP ${res.status}: ${message}`);
  // The hub's envelope says whether a retry can help; a proxy's bare 502/503/504 means the hub is away.
  const recoverable = typeof json.recoverable === "boolean" ? json.recoverable : PROXY_RETRY_STATUSES.has(res.status);
  const afterS = typeof json.retry_after === "number" ? json.retry_after : undefined;
  return { error, retry: recoverable ? { reason: message, ...(afterS === undefined ? {} : { afterS }) } : null };
}

/** One request, retried while the hub is away or answers a recoverable error, for up to --retry-for seconds. */
async function call(args: RunArgs, io: CliIo, method: string, path: string): Promise<{ status: number; text: string; json: Record<string, unknown> }> {
  const deadline = Date.now() + args.retryForS * 1000;
  for (let n = 0; ; n++) {
    const a = await attempt(args, io.env, method, path);
    if (a.res) {
      if (n > 0) io.stderr(`labrig: the hub answers again (${method} ${path})\n`);
      return a.res;
    }
    const waitMs = a.retry === null ? 0 : Math.max(backoffMs(n, io.retryBaseMs ?? 500, 10_000), (a.retry.afterS ?? 0) * 1000);
    if (a.retry === null || Date.now() + waitMs > deadline) throw a.error ?? new HubError(`${method} ${path} failed`);
    if (n === 0) io.stderr(`labrig: ${a.retry.reason}; retrying for up to ${args.retryForS} s\n`);
    await sleep(waitMs);
  }
}

interface RunView {
  status: string;
  reason: string | null;
  tests: { id: string; name: string; attempt: number; status: string; host: string | null; device: string | null; message: string | null }[];
}

const FINISHED = new Set(["passed", "failed", "error", "canceled", "interrupted", "skipped"]);

/** Runs the CLI; resolves with the exit code (never calls process.exit, so tests run it in-process too). */
/** Follows a run until it finishes (the final view) or the --timeout deadline passes (null, after canceling it). */
async function followRun(args: RunArgs, io: CliIo, runId: string, deadline: number): Promise<RunView | null> {
  const seen = new Map<string, string>();
  for (;;) {
    const run = (await call(args, io, "GET", `/api/runs/${runId}`)).json as unknown as RunView;
    for (const t of run.tests) {
      if (seen.get(t.id) === t.status) continue;
      seen.set(t.id, t.status);
      const where = t.host ? ` on ${t.host}/${t.device}` : "";
      io.stdout(`  ${t.name} (attempt ${t.attempt})${where}: ${t.status}${t.message && t.status !== "running" ? ` - ${t.message}` : ""}\n`);
    }
    if (FINISHED.has(run.status)) return run;
    if (Date.now() > deadline) {
      io.stderr(`labrig: run ${runId} still ${run.status} after ${args.timeoutS} s; canceling it\n`);
      await call(args, io, "POST", `/api/runs/${runId}/cancel`).catch((err: unknown) => io.stderr(`labrig: cancel failed: ${(err as Error).message}\n`));
      return null;
    }
    await sleep(io.pollMs ?? 1000);
  }
}

/** Runs the CLI; resolves with the exit code (never calls process.exit, so tests run it in-process too). */
export async function runLabrig(argv: readonly string[], io: CliIo): Promise<number> {
  let args: RunArgs;
  try {
    args = parseArgs(argv, io.env);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`labrig: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const deadline = args.timeoutS === null ? Number.POSITIVE_INFINITY : Date.now() + args.timeoutS * 1000;
    for (let rerun = 0; ; rerun++) {
      const started = await call(args, io, "POST", `/api/campaigns/${encodeURIComponent(args.campaign)}/runs`);
      const runId = String(started.json.id);
      io.stdout(`run ${runId} started (campaign ${args.campaign})\n`);
      if (!args.wait) return 0;
      const run = await followRun(args, io, runId, deadline);
      if (run === null) return 1;
      io.stdout(`run ${runId} ${run.status}${run.reason ? `: ${run.reason}` : ""}\n`);
      // Interrupted means the hub restarted under the run: nothing the devices did, so it is worth another go.
      if (run.status === "interrupted" && rerun < args.reruns) {
        io.stdout(`starting the campaign again (rerun ${rerun + 1} of at most ${args.reruns})\n`);
        continue;
      }
      if (args.junit !== null) {
        const xml = await call(args, io, "GET", `/api/runs/${runId}/junit.xml`);
        try {
          writeFileSync(args.junit, xml.text);
        } catch (err) {
          io.stderr(`labrig: cannot write ${args.junit}: ${(err as Error).message}\n`);
          return 2;
        }
        io.stdout(`JUnit report written to ${args.junit}\n`);
      }
      return run.status === "passed" ? 0 : 1;
    }
  } catch (err) {
    if (err instanceof HubError) {
      io.stderr(`labrig: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** True when this file is the program being run (also through npm's bin symlink). */
function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    // The script path vanished or is unreadable: then this module was imported, not run.
    return false;
  }
}

if (isMain()) {
  runLabrig(process.argv.slice(2), { env: process.env, stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`labrig: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
