import { Writable } from "node:stream";
import { pino } from "pino";
import { requireSocat } from "../campaign-helpers.js";
import { BAD_KEY, roleKey } from "../credentials.js";
import { FakeGemini } from "../fake-gemini.js";
import { TEST_ADMIN_KEY, addHost, startHub, type RunningHub } from "../helpers.js";
import { simulatedBoard, startLocalAgent } from "../local-agents.js";
import type { Identity } from "./rest-requests.js";

/*
 * The fuzzer's rig: a real hub on 127.0.0.1 with a real agent driving a simulated board (serial
 * console on a PTY, power, a GPIO line, a test-pattern screen), the planner on a local fake Gemini,
 * and hosts that exist to be damaged. The hub logs into a counter, so an error it logs is seen.
 * rig-keeper.ts keeps it as it was while the REST fuzzer works on it.
 */

export const RIG_HOST = "fz-rig";
export const RIG_DEVICE = "dut1";
/** The host the socket fuzzer speaks as, and the enrolled but silent host it tries to impersonate. */
export const SOCKET_HOST = "fz-sock";
export const VICTIM_HOST = "fz-victim";
/** Hosts that only host-admin routes name: deleting one or rotating its token harms nothing. */
export const SACRIFICIAL_HOSTS = ["fz-sac-0", "fz-sac-1", "fz-sac-2"];

/** What the hub logged, by level (thousands of lines: counted, not kept); the first error lines are kept to show them. */
export class LogCounter {
  readonly byLevel = new Map<string, number>();
  readonly errors: string[] = [];
  private partial = "";
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      const lines = (this.partial + chunk.toString("utf8")).split("\n");
      this.partial = lines.pop() ?? "";
      for (const line of lines) {
        if (line.trim() === "") continue;
        const entry = JSON.parse(line) as { level: number };
        const level = pino.levels.labels[entry.level] ?? String(entry.level);
        this.byLevel.set(level, (this.byLevel.get(level) ?? 0) + 1);
        if (entry.level >= 50 && this.errors.length < 10) this.errors.push(line.slice(0, 1500));
      }
      cb();
    },
  });
}

export interface Rig {
  hub: RunningHub;
  fake: FakeGemini;
  log: LogCounter;
  tokens: Record<Identity, string | null>;
  /** Enrolment tokens of SOCKET_HOST and VICTIM_HOST. */
  hostTokens: Record<string, string>;
}

/** Starts the rig; `env` adds hub settings (the auth matrix turns JWTs on). */
export async function startRig(env: Record<string, string> = {}): Promise<Rig> {
  requireSocat();
  const fake = new FakeGemini(() => ({ text: JSON.stringify({ observation: "a test pattern", reasoning: "", actions: [{ action: "wait", params: { ms: 1 } }], done: true }) }));
  await fake.start();
  const log = new LogCounter();
  const hub = await startHub({
    logger: pino({ level: "warn" }, log.stream),
    // Thousands of bad credentials are sent on purpose; the limiter has its own test.
    env: { GEMINI_API_KEY: "k-fuzz", GEMINI_BASE_URL: fake.url, GEMINI_RETRY_BASE_MS: "5", GEMINI_DAILY_REQUESTS: "1000000", LABRIG_AUTH_FAIL_LIMIT: "1000000", ...env },
  });
  await startLocalAgent(hub, RIG_HOST, [simulatedBoard({ board: "sim" }, { screen: true })], { agent: { sim: { bootMs: 50 } } });
  const hostTokens: Record<string, string> = {};
  for (const host of [SOCKET_HOST, VICTIM_HOST]) hostTokens[host] = await addHost(hub.dataDir, host);
  for (const host of SACRIFICIAL_HOSTS) await addHost(hub.dataDir, host);
  const tokens: Record<Identity, string | null> = {
    admin: TEST_ADMIN_KEY,
    operator: (await roleKey(hub, "operator")).key,
    viewer: (await roleKey(hub, "viewer")).key,
    bad: BAD_KEY,
    none: null,
  };
  return { hub, fake, log, tokens, hostTokens };
}

