import { describe, expect, it } from "vitest";
import { plainHttpExposed, warnIfPlainHttp } from "../src/ops/http-server.js";
import { memoryLogger, testConfig, makeTempDir, cleanupTempDirs } from "./helpers.js";
import { afterEach } from "vitest";

afterEach(() => cleanupTempDirs());

describe("the plain-HTTP warning at start", () => {
  it("warns when the hub listens beyond loopback without TLS in front, and not when LABRIG_TLS_UPSTREAM says TLS is upstream", () => {
    const exposed = testConfig(makeTempDir(), { LABRIG_BIND: "0.0.0.0" });
    const { logger, lines } = memoryLogger();
    warnIfPlainHttp(exposed, logger);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, bind: "0.0.0.0" });
    expect(String(lines[0]?.msg)).toContain("LABRIG_TLS_UPSTREAM=true");

    expect(plainHttpExposed(testConfig(makeTempDir(), { LABRIG_BIND: "0.0.0.0", LABRIG_TLS_UPSTREAM: "true" }))).toBe(false);
    expect(plainHttpExposed(testConfig(makeTempDir(), { LABRIG_BIND: "192.168.1.10" }))).toBe(true);
    for (const bind of ["127.0.0.1", "::1", "localhost"]) expect(plainHttpExposed(testConfig(makeTempDir(), { LABRIG_BIND: bind })), bind).toBe(false);
  });
});
