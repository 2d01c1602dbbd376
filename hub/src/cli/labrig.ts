#!/usr/bin/env node
// `labrig`: the operator and CI client of a hub's REST API. `labrig run CAMPAIGN --wait --junit FILE`
import { sleep } from "@labrig/shared";
// starts a run, follows it, writes the JUnit report, and exits 0 only when the run passed.
import { realpathSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

export const USAGE = `Usage: labrig run <campaign-id-or-name> [--wait] [--junit FILE] [--url URL] [--timeout S]

  --wait        follow the run, printing progress, until it finishes
  --junit FILE  write the run's JUnit XML report to FILE (implies --wait)
  --url URL     the hub (default: $LABRIG_URL or http://127.0.0.1:8080)
  --timeout S   with --wait, give up (and cancel the run) after S seconds

Environment: LABRIG_URL, LABRIG_TOKEN (an API key or JWT, sent as Authorization: Bearer).
Exit codes: 0 the run passed (or was started, without --wait); 1 it failed, errored, was
canceled or interrupted; 2 usage or connection errors.`;

export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Poll interval while waiting (tests shorten it). */
  pollMs?: number;
}

interface RunArgs {
  campaign: string;
  wait: boolean;
  junit: string | null;
  url: string;
  timeoutS: number | null;
}

class UsageError extends Error {}
/** The hub could not be reached or answered with an error: exit 2. */
class HubError extends Error {}

function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): RunArgs {
  const [command, ...rest] = argv;
  if (command !== "run") throw new UsageError(command === undefined ? "missing command" : `unknown command '${command}'`);
  const out: RunArgs = { campaign: "", wait: false, junit: null, url: env.LABRIG_URL || "http://127.0.0.1:8080", timeoutS: null };
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

async function call(args: RunArgs, env: NodeJS.ProcessEnv, method: string, path: string): Promise<{ status: number; text: string; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (env.LABRIG_TOKEN) headers.authorization = `Bearer ${env.LABRIG_TOKEN}`;
  let res: Response;
  try {
    res = await fetch(new URL(path, args.url), { method, headers, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new HubError(`cannot reach the hub at ${args.url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  if ((res.headers.get("content-type") ?? "").includes("json") && text !== "") json = JSON.parse(text) as Record<string, unknown>;
  if (res.status >= 400) throw new HubError(`${method} ${path}: HTTP ${res.status}: ${typeof json.message === "string" ? json.message : text.slice(0, 300)}`);
  return { status: res.status, text, json };
}

interface RunView {
  status: string;
  reason: string | null;
  tests: { id: string; name: string; attempt: number; status: string; host: string | null; device: string | null; message: string | null }[];
}

const FINISHED = new Set(["passed", "failed", "error", "canceled", "interrupted", "skipped"]);

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
    const started = await call(args, io.env, "POST", `/api/campaigns/${encodeURIComponent(args.campaign)}/runs`);
    const runId = String(started.json.id);
    io.stdout(`run ${runId} started (campaign ${args.campaign})\n`);
    if (!args.wait) return 0;
    const deadline = args.timeoutS === null ? Number.POSITIVE_INFINITY : Date.now() + args.timeoutS * 1000;
    const seen = new Map<string, string>();
    let run: RunView;
    for (;;) {
      run = (await call(args, io.env, "GET", `/api/runs/${runId}`)).json as unknown as RunView;
      for (const t of run.tests) {
        const key = `${t.id}`;
        if (seen.get(key) === t.status) continue;
        seen.set(key, t.status);
        const where = t.host ? ` on ${t.host}/${t.device}` : "";
        io.stdout(`  ${t.name} (attempt ${t.attempt})${where}: ${t.status}${t.message && t.status !== "running" ? ` - ${t.message}` : ""}\n`);
      }
      if (FINISHED.has(run.status)) break;
      if (Date.now() > deadline) {
        io.stderr(`labrig: run ${runId} still ${run.status} after ${args.timeoutS} s; canceling it\n`);
        await call(args, io.env, "POST", `/api/runs/${runId}/cancel`).catch((err: unknown) => io.stderr(`labrig: cancel failed: ${(err as Error).message}\n`));
        return 1;
      }
      await sleep(io.pollMs ?? 1000);
    }
    io.stdout(`run ${runId} ${run.status}${run.reason ? `: ${run.reason}` : ""}\n`);
    if (args.junit !== null) {
      const xml = await call(args, io.env, "GET", `/api/runs/${runId}/junit.xml`);
      try {
        writeFileSync(args.junit, xml.text);
      } catch (err) {
        io.stderr(`labrig: cannot write ${args.junit}: ${(err as Error).message}\n`);
        return 2;
      }
      io.stdout(`JUnit report written to ${args.junit}\n`);
    }
    return run.status === "passed" ? 0 : 1;
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
