import { CONSOLE_PENDING_MAX_BYTES, type StreamChunk } from "@labrig/shared";
import type { Socket } from "socket.io";
import { describe, expect, it } from "vitest";
import { ConsoleViewer, VideoViewer } from "../src/realtime/stream-viewers.js";

// A stand-in for a socket.io server socket: only its engine.io write buffer (which a real browser
// fills by not reading) and emit. Filling a real socket's buffer on demand is not possible without
// a stalled TCP peer; the end-to-end behaviour is in dashboard-streams.test.ts.
function fakeSocket() {
  const sent: Array<[string, Record<string, unknown>]> = [];
  const conn = { writeBuffer: [] as unknown[] };
  const socket = { conn, emit: (event: string, payload: Record<string, unknown>) => sent.push([event, payload]) } as unknown as Socket;
  return { socket, sent, congest: () => (conn.writeBuffer = Array.from({ length: 64 })), drain: () => (conn.writeBuffer = []) };
}

const chunk = (seq: number, type: "key" | "delta"): StreamChunk => ({ host: "h", device: "d", resource: "cam", seq, codec: "vp8", type, timestamp_us: seq * 1000, data: new Uint8Array(4), width: 16, height: 16 });

describe("a console viewer on a slow connection", () => {
  it("sends output at once while the connection keeps up", () => {
    const f = fakeSocket();
    const v = new ConsoleViewer(f.socket, "h", "d", "console");
    v.push("abc");
    v.push("def");
    expect(f.sent.map(([e, p]) => [e, p.data, p.dropped_bytes])).toEqual([
      ["console.data", "abc", 0],
      ["console.data", "def", 0],
    ]);
  });

  it("holds output while the connection is congested, drops the oldest beyond the bound, and says how much when it drains", () => {
    const f = fakeSocket();
    const v = new ConsoleViewer(f.socket, "h", "d", "console");
    f.congest();
    for (let i = 0; i < 100; i++) v.push(`${String(i).padStart(4, "0")}${"x".repeat(996)}`);
    v.flush();
    expect(f.sent).toHaveLength(0);
    f.drain();
    v.flush();
    expect(f.sent).toHaveLength(1);
    const [, event] = f.sent[0] as [string, { data: string; dropped_bytes: number }];
    expect(event.data.length).toBe(CONSOLE_PENDING_MAX_BYTES);
    expect(event.dropped_bytes).toBe(100 * 1000 - CONSOLE_PENDING_MAX_BYTES);
    // The newest output is what is kept.
    expect(event.data.endsWith(`0099${"x".repeat(996)}`)).toBe(true);
    v.push("next");
    expect(f.sent.at(-1)?.[1]).toMatchObject({ data: "next", dropped_bytes: 0 });
  });
});

describe("a video viewer on a slow connection", () => {
  it("starts at a keyframe, drops chunks while congested and then waits for the next keyframe (newest wins, nothing queues)", () => {
    const f = fakeSocket();
    const v = new VideoViewer(f.socket, "h", "d", "cam");
    v.push(chunk(0, "delta"));
    v.push(chunk(1, "key"));
    v.push(chunk(2, "delta"));
    f.congest();
    v.push(chunk(3, "delta"));
    f.drain();
    v.push(chunk(4, "delta"));
    v.push(chunk(5, "key"));
    v.push(chunk(6, "delta"));
    expect(f.sent.map(([, c]) => c.seq)).toEqual([1, 2, 5, 6]);
    expect(v.dropped).toBe(3);
  });
});
