import { afterEach, describe, expect, it } from "vitest";
import { addHost, agentSocket, cleanupTempDirs, connect, memoryLogger, startHub, stopAll } from "./helpers.js";

// Failed agent handshakes count against the same per-address limit as REST and dashboard logins, and
// a burst of them is logged a couple of times at warn, not once each.

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

async function handshake(url: string, host: string, token: string): Promise<{ error_code: string; retry_after?: number } | null> {
  return connect(agentSocket(url, { host, token })).then(
    () => null,
    (err: unknown) => (err as { data: { error_code: string; retry_after?: number } }).data,
  );
}

describe("failed agent handshakes", () => {
  it("are rate-limited per address after LABRIG_AUTH_FAIL_LIMIT failures, valid tokens included, and logged at warn only at the first and the blocking one", async () => {
    const { logger, lines } = memoryLogger();
    const hub = await startHub({ logger, env: { LABRIG_AUTH_FAIL_LIMIT: "3" } });
    const token = await addHost(hub.dataDir, "pi-1");
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) outcomes.push((await handshake(hub.url, "pi-1", `lrh_wrong-token-${i}-000000000000000000000000000`))?.error_code ?? "connected");
    expect(outcomes).toEqual(["unauthorized", "unauthorized", "unauthorized", ...Array<string>(7).fill("rate_limited")]);
    // While blocked, the right token is refused too: a guesser must not learn that it guessed right.
    const blocked = await handshake(hub.url, "pi-1", token);
    expect(blocked).toMatchObject({ error_code: "rate_limited", retry_after: expect.any(Number) });
    const failures = lines.filter((l) => String(l.msg).startsWith("agent handshake"));
    const warned = failures.filter((l) => l.level === 40);
    expect(warned).toHaveLength(2);
    expect(failures.length).toBeGreaterThanOrEqual(3);
    for (const line of failures) expect(JSON.stringify(line)).not.toContain("lrh_");
  });

  it("below the limit, a failed handshake does not keep the right token from connecting", async () => {
    const hub = await startHub({ env: { LABRIG_AUTH_FAIL_LIMIT: "1000" } });
    const token = await addHost(hub.dataDir, "pi-1");
    expect(await handshake(hub.url, "pi-1", "lrh_wrong-0000000000000000000000000000000")).toMatchObject({ error_code: "unauthorized" });
    expect(await handshake(hub.url, "pi-1", token)).toBeNull();
  });
});
