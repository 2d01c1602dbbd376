import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.js";

// The agent's logger: whatever is logged by mistake (a config with the hub token, an error whose
// message carries a URL or a Bearer header), no credential reaches the journal.

describe("the agent's logger", () => {
  it("censors credential fields and scrubs the hub token and credential shapes from every line", () => {
    const chunks: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString("utf8"));
        cb();
      },
    });
    // A hub token without the lrh_ prefix: only the configured-secret scrubbing can catch it.
    const token = "host-token-without-a-prefix-0123456789";
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    const logger = createLogger("trace", sink, [token]);
    logger.info({ config: { hub: { url: "https://hub.lab", token } } }, "config loaded");
    logger.warn({ err: new Error(`connect to https://hub.lab/agent?token=${token} failed`) }, "hub link error");
    logger.error(`the hub refused Authorization: Bearer ${jwt} and lrh_abcdefghijklmnop`);
    logger.debug({ handshake: { auth: { host: "pi1", token } } }, "handshake");
    const text = chunks.join("");
    expect(chunks).toHaveLength(4);
    for (const secret of [token, jwt, "lrh_abcdefghijklmnop"]) expect(text).not.toContain(secret);
    expect(text).toContain("[redacted]");
    // Every line is still JSON, with what is not a credential kept.
    const lines = chunks.map((c) => JSON.parse(c) as { msg: string; service: string });
    expect(lines.map((l) => l.msg)).toEqual(["config loaded", "hub link error", expect.stringContaining("the hub refused Authorization: Bearer [redacted]"), "handshake"]);
    expect(lines[0]?.service).toBe("labrig-agent");
  });
});
