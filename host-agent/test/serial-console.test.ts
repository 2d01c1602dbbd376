import { performance } from "node:perf_hooks";
import { LabrigError } from "@labrig/shared";
import type { SerialPort } from "serialport";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConsoleStream } from "../src/console-stream.js";
import { SerialConsole, type SerialConsoleOptions } from "../src/devices/serial-console.js";
import { closePeer, makeTempDir, openPeer, startPtyPair, testLogger, until, writePeer, type PtyPair } from "./helpers.js";

function consoleOptions(path: string, extra: Partial<SerialConsoleOptions> = {}): SerialConsoleOptions {
  return { name: "dut1/console", path, baudRate: 115200, dataBits: 8, parity: "none", stopBits: 1, rtsCts: false, txCharDelayMs: 0, ...extra };
}

async function rejection(p: Promise<unknown>): Promise<LabrigError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LabrigError) return err;
    throw err;
  }
  throw new Error("expected the promise to reject");
}

describe("SerialConsole over a real socat PTY pair", () => {
  let temp: ReturnType<typeof makeTempDir>;
  let pair: PtyPair;
  let peer: SerialPort;
  let console_: SerialConsole;
  let received: string;

  async function startConsole(extra: Partial<SerialConsoleOptions> = {}): Promise<void> {
    received = "";
    console_ = new SerialConsole(consoleOptions(pair.a, extra), testLogger(), { onData: (t) => (received += t) });
    await console_.start();
    await console_.waitUntilOpen(2000);
  }

  beforeEach(async () => {
    temp = makeTempDir();
    pair = await startPtyPair(temp.dir);
    peer = await openPeer(pair.b);
  });

  afterEach(async () => {
    await console_?.stop();
    await closePeer(peer);
    await pair.stop();
    temp.remove();
  });

  it("expect finds literal text and returns the transcript up to the end of the match", async () => {
    await startConsole();
    const result = console_.expect({ pattern: "login: ", regex: false, timeoutMs: 2000, flush: false });
    await writePeer(peer, "Welcome (not a regex: a+b)\r\nlabrig-sim login: ");
    await expect(result).resolves.toEqual({ match: "login: ", groups: [], transcript: "Welcome (not a regex: a+b)\r\nlabrig-sim login: " });
  });

  it("expect with regex returns capture groups, null for a group that did not take part", async () => {
    await startConsole();
    const result = console_.expect({ pattern: "Linux (\\S+) ([0-9.]+)(-rc\\d)?", regex: true, timeoutMs: 2000, flush: false });
    await writePeer(peer, "$ uname -a\r\nLinux board 6.6.31 SMP\r\n");
    const r = await result;
    expect(r.match).toBe("Linux board 6.6.31");
    expect(r.groups).toEqual(["board", "6.6.31", null]);
    expect(r.transcript).toBe("$ uname -a\r\nLinux board 6.6.31");
  });

  it("serves several expects in order, each consuming what it matched", async () => {
    await startConsole();
    const first = console_.expect({ pattern: "first", regex: false, timeoutMs: 2000, flush: false });
    const second = console_.expect({ pattern: "second", regex: false, timeoutMs: 2000, flush: false });
    // The first "second" is consumed by the first expect's transcript; the second expect gets the later one.
    await writePeer(peer, "second first second!");
    expect((await first).transcript).toBe("second first");
    expect((await second).transcript).toBe(" second");
    expect(console_.pendingLength).toBe(1);
  });

  it("expect times out with expect_timeout and shows the tail of what it saw", async () => {
    await startConsole();
    const result = console_.expect({ pattern: "never", regex: false, timeoutMs: 200, flush: false });
    await writePeer(peer, "booting...\r\nkernel panic");
    const t0 = performance.now();
    const err = await rejection(result);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(err.code).toBe("expect_timeout");
    expect(err.message).toContain("kernel panic");
  });

  it("flush discards unread output before matching", async () => {
    await startConsole();
    await writePeer(peer, "old marker\r\n");
    await until(() => received.includes("old marker"), "the old output to arrive");
    const result = console_.expect({ pattern: "marker", regex: false, timeoutMs: 2000, flush: true });
    await writePeer(peer, "new marker");
    const r = await result;
    expect(r.transcript).toBe("new marker");
    expect(r.transcript).not.toContain("old");
  });

  it("expect honours its abort signal", async () => {
    await startConsole();
    const controller = new AbortController();
    const result = console_.expect({ pattern: "never", regex: false, timeoutMs: 5000, flush: false }, controller.signal);
    setTimeout(() => controller.abort(new LabrigError("canceled", "stop")), 50);
    const err = await rejection(result);
    expect(err.code).toBe("canceled");
  });

  it("a peer that sends 1 MiB without a newline does not grow any buffer past its bound", async () => {
    const sink = { ready: false, chunks: [] as { data: string; dropped_bytes: number }[] };
    const stream = new ConsoleStream({ host: "h", device: "dut1", resource: "console" }, {
      canSend: () => sink.ready,
      sendConsole: (c) => sink.chunks.push(c),
    });
    let total = 0;
    console_ = new SerialConsole(consoleOptions(pair.a, { logChars: 256 * 1024, expectBufferChars: 64 * 1024 }), testLogger(), {
      onData: (t) => {
        total += t.length;
        stream.push(t);
      },
    });
    await console_.start();
    await console_.waitUntilOpen(2000);
    const pending = console_.expect({ pattern: "never-sent", regex: true, timeoutMs: 20_000, flush: false });
    pending.catch(() => undefined);
    const MiB = 1024 * 1024;
    const block = Buffer.alloc(64 * 1024, "x");
    for (let i = 0; i < MiB / block.length; i++) await writePeer(peer, block);
    await until(() => total >= MiB, "1 MiB to arrive", 20_000);
    expect(console_.pendingLength).toBeLessThanOrEqual(64 * 1024);
    expect(console_.logLength).toBeLessThanOrEqual(256 * 1024);
    expect(console_.tail(2 * MiB).length).toBe(256 * 1024);
    expect(stream.buffered).toBeLessThanOrEqual(256 * 1024);
    // When the hub comes back, what was kept is sent in bounded chunks with the loss counted.
    sink.ready = true;
    stream.flush();
    const sent = sink.chunks.reduce((n, c) => n + c.data.length, 0);
    const dropped = sink.chunks.reduce((n, c) => n + c.dropped_bytes, 0);
    expect(sent).toBe(256 * 1024);
    expect(sent + dropped).toBe(MiB);
    expect(Math.max(...sink.chunks.map((c) => c.data.length))).toBeLessThanOrEqual(16 * 1024);
    stream.stop();
    await console_.stop();
    await expect(pending).rejects.toMatchObject({ code: "device_unavailable" });
  }, 30_000);

  it("tx_char_delay_ms writes one character at a time: N characters take at least N × delay", async () => {
    await startConsole({ txCharDelayMs: 10 });
    let got = "";
    peer.on("data", (d: Buffer) => (got += d.toString()));
    const t0 = performance.now();
    const bytes = await console_.write("0123456789abcdefghij");
    const elapsed = performance.now() - t0;
    expect(bytes).toBe(20);
    expect(elapsed).toBeGreaterThanOrEqual(200);
    await until(() => got === "0123456789abcdefghij", "the peer to receive every character");
  });

  it("write without delay returns the byte count and the peer receives it", async () => {
    await startConsole();
    let got = "";
    peer.on("data", (d: Buffer) => (got += d.toString()));
    expect(await console_.write("héllo\n")).toBe(7);
    await until(() => got === "héllo\n", "the peer to receive the text");
  });

  it("read by cursor returns only what arrived after the cursor, so a caller can check the console went silent", async () => {
    await startConsole();
    await writePeer(peer, "boot noise\r\n");
    await until(() => received.includes("noise"), "the early output to arrive");
    const now = console_.read(undefined, 1000);
    expect(now).toMatchObject({ text: "", more: false, dropped: 0, restarted: false });
    await writePeer(peer, "after power off\r\n");
    await until(() => received.includes("after"), "the new output to arrive");
    const fresh = console_.read(now.cursor, 1000);
    expect(fresh).toMatchObject({ text: "after power off\r\n", more: false, dropped: 0, restarted: false });
    // Nothing since: silence reads as empty text, with the same cursor to go on from.
    expect(console_.read(fresh.cursor, 1000)).toEqual({ text: "", cursor: fresh.cursor, more: false, dropped: 0, restarted: false });
    // max_bytes splits a read; nothing is lost between the pieces.
    const part = console_.read(now.cursor, 5);
    expect(part).toMatchObject({ text: "after", more: true });
    expect(console_.read(part.cursor, 1000).text).toBe(" power off\r\n");
  });

  it("a cursor from an earlier run of the console restarts at the oldest output held and says so; one past the end is refused", async () => {
    await startConsole();
    await writePeer(peer, "first run\r\n");
    await until(() => received.includes("first"), "output of the first run");
    const old = console_.read(undefined, 1000).cursor;
    await console_.stop();
    await startConsole();
    await writePeer(peer, "second run\r\n");
    await until(() => received.includes("second"), "output of the second run");
    const r = console_.read(old, 1000);
    expect(r).toMatchObject({ text: "second run\r\n", restarted: true, dropped: 0 });
    expect(r.cursor.split(":")[0]).not.toBe(old.split(":")[0]);
    const [epoch] = r.cursor.split(":");
    expect(() => console_.read(`${epoch}:999999`, 10)).toThrow(/past the end/);
  });

  it("a reader that fell behind the bounded log learns how many characters it missed", async () => {
    await startConsole({ logChars: 64 });
    const start = console_.read(undefined, 1000).cursor;
    await writePeer(peer, "A".repeat(100));
    await until(() => received.length >= 100, "100 characters to arrive");
    const r = console_.read(start, 1000);
    expect(r).toMatchObject({ text: "A".repeat(64), dropped: 36, restarted: false });
  });

  it("read returns the tail of the console log", async () => {
    await startConsole();
    await writePeer(peer, "line one\r\nline two\r\nline three\r\n");
    await until(() => received.includes("three"), "the output to arrive");
    expect(console_.tail(12)).toBe("line three\r\n");
    expect(console_.tail(10_000)).toBe("line one\r\nline two\r\nline three\r\n");
  });
});

describe("SerialConsole without its port", () => {
  it("reports device_unavailable at once when the port is not open, and keeps retrying quietly", async () => {
    const temp = makeTempDir();
    const states: string[] = [];
    const c = new SerialConsole(consoleOptions(`${temp.dir}/no-such-tty`), testLogger(), { onState: (s) => states.push(s) });
    try {
      await c.start();
      expect(c.isOpen).toBe(false);
      const t0 = performance.now();
      await expect(c.write("x")).rejects.toMatchObject({ code: "device_unavailable" });
      expect(() => c.expect({ pattern: "x", regex: false, timeoutMs: 5000, flush: false })).toThrow(/not open/);
      // "At once" means without waiting for the 5 s expect timeout; a loaded box may still take a while to run this.
      expect(performance.now() - t0).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 700));
      // Several reopen attempts happened, but the state was reported once.
      expect(states).toEqual(["unavailable"]);
    } finally {
      await c.stop();
      temp.remove();
    }
  });
});
