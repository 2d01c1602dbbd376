import { PassThrough, Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { StreamChunk } from "@labrig/shared";
import { drainedOrClosed } from "../src/api/routes/artifacts.js";
import { Server } from "socket.io";
import { HubBus } from "../src/bus.js";
import { AgentConnections } from "../src/realtime/agent-connections.js";
import { AgentNamespace } from "../src/realtime/agent-namespace.js";
import { AuthFailureLimiter } from "../src/services/auth-failure-limiter.js";
import type { HostTokens } from "../src/services/tokens.js";
import { VideoRelay } from "../src/services/video-relay.js";

// Long-lived hub objects that see traffic from the network must stay bounded however long it goes on.

describe("streaming an artifact to a slow client", () => {
  it("leaves no drain or close listener behind after each wait, however many slices it waits for", async () => {
    const out = new Writable({ highWaterMark: 1, write: (_chunk, _enc, cb) => setImmediate(cb) });
    for (let i = 0; i < 50; i++) {
      expect(out.write(Buffer.alloc(16))).toBe(false);
      await drainedOrClosed(out);
    }
    expect(out.listenerCount("drain")).toBe(0);
    expect(out.listenerCount("close")).toBe(0);
  });

  it("returns when the client goes away instead of waiting for a drain that never comes", async () => {
    const out = new PassThrough({ highWaterMark: 1 });
    expect(out.write(Buffer.alloc(16))).toBe(false);
    const waiting = drainedOrClosed(out);
    out.destroy();
    await waiting;
    expect(out.listenerCount("drain")).toBe(0);
  });
});

describe("video relay", () => {
  it("remembers a bounded number of unwatched streams, whatever ids an agent sends chunks for", () => {
    // No agent is connected, so stop requests are only logged; what matters is the relay's memory.
    const logger = pino({ level: "silent" });
    const connections = new AgentConnections();
    const bus = new HubBus(logger);
    // A namespace that never listens: the relay only registers its stream.chunk handler on it.
    const agents = new AgentNamespace({ io: new Server(), tokens: {} as HostTokens, connections, limiter: new AuthFailureLimiter(20), bus, logger });
    const relay = new VideoRelay(connections, agents, bus, logger);
    const chunk = (device: string): StreamChunk => ({
      host: "cam-1",
      device,
      resource: "screen",
      seq: 0,
      codec: "vp8",
      type: "key",
      timestamp_us: 0,
      data: Buffer.alloc(1),
      width: 16,
      height: 16,
    });
    for (let i = 0; i < 5000; i++) expect(relay.handleChunk("cam-1", chunk(`dev-${i}`))).toBe(false);
    expect(relay.strayStreams).toBeGreaterThan(0);
    expect(relay.strayStreams).toBeLessThanOrEqual(1024);
  });
});
