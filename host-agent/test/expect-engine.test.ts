import { performance } from "node:perf_hooks";
import { LabrigError } from "@labrig/shared";
import { describe, expect, it } from "vitest";
import { ExpectEngine } from "../src/devices/expect-engine.js";

// The expect engine on its own: plain strings in, no port, no PTY.
const engine = (bufferChars = 1024): ExpectEngine => new ExpectEngine({ name: "dut1/console", bufferChars });
const opts = (pattern: string, extra: Partial<{ regex: boolean; timeoutMs: number; flush: boolean }> = {}) => ({ pattern, regex: false, timeoutMs: 2000, flush: false, ...extra });

describe("ExpectEngine", () => {
  it("finds text that arrived before the expect (pexpect's unread buffer) and consumes up to the end of the match", async () => {
    const e = engine();
    e.push("Welcome\r\nlabrig-sim login: ");
    expect(await e.expect(opts("login: "))).toEqual({ match: "login: ", groups: [], transcript: "Welcome\r\nlabrig-sim login: " });
    expect(e.pendingLength).toBe(0);
  });

  it("matches text split over several chunks", async () => {
    const e = engine();
    const r = e.expect(opts("Password: "));
    for (const piece of ["Pass", "wo", "rd", ": rest"]) e.push(piece);
    expect((await r).transcript).toBe("Password: ");
    expect(e.pendingLength).toBe(4);
  });

  it("serves expects in FIFO order, each consuming its match, so a later expect sees only what is left", async () => {
    const e = engine();
    const first = e.expect(opts("first"));
    const second = e.expect(opts("second"));
    e.push("second first second!");
    expect((await first).transcript).toBe("second first");
    expect((await second).transcript).toBe(" second");
  });

  it("applies flush when the expect's turn comes, not when it was asked", async () => {
    const e = engine();
    e.push("old marker ");
    const keep = e.expect(opts("old"));
    const fresh = e.expect(opts("marker", { flush: true }));
    expect((await keep).transcript).toBe("old");
    e.push("new marker");
    expect((await fresh).transcript).toBe("new marker");
  });

  it("regex expects return groups (null for one that took no part) and run in linear time on a catastrophic pattern", async () => {
    const e = engine(64 * 1024);
    const r = e.expect(opts("Linux (\\S+) ([0-9.]+)(-rc\\d)?", { regex: true }));
    e.push("$ uname -a\r\nLinux board 6.6.31 SMP\r\n");
    expect(await r).toMatchObject({ match: "Linux board 6.6.31", groups: ["board", "6.6.31", null] });
    const slow = e.expect(opts("(.|.)*QQQ", { regex: true, timeoutMs: 200 }));
    const t0 = performance.now();
    e.push("x".repeat(60 * 1024));
    // The push returns (a backtracking engine would not); the timeout then reports what was unread.
    expect(performance.now() - t0).toBeLessThan(10_000);
    await expect(slow).rejects.toMatchObject({ code: "expect_timeout" });
  });

  it("refuses a pattern RE2 cannot run with validation_failed, before waiting", () => {
    expect(() => engine().expect(opts("(a)\\1", { regex: true }))).toThrow(/params.pattern: backreferences/);
  });

  it("keeps at most bufferChars unread characters, dropping the oldest", async () => {
    const e = engine(10);
    e.push("0123456789abcdef");
    expect(e.pendingLength).toBe(10);
    await expect(e.expect(opts("0123", { timeoutMs: 30 }))).rejects.toMatchObject({ code: "expect_timeout" });
    expect((await e.expect(opts("ef"))).transcript).toBe("6789abcdef");
  });

  it("a timeout names the pattern and shows the tail of the unread output, in details too", async () => {
    const e = engine();
    e.push("booting...\r\nkernel panic");
    const err = (await e.expect(opts("never", { timeoutMs: 50 })).catch((x: unknown) => x)) as LabrigError;
    expect(err.code).toBe("expect_timeout");
    expect(err.message).toContain('"never" on dut1/console within 50 ms');
    expect(err.message).toContain("kernel panic");
    expect(err.details).toEqual({ tail: "booting...\r\nkernel panic" });
  });

  it("an abort rejects with its reason and lets the next expect in line run", async () => {
    const e = engine();
    const controller = new AbortController();
    const first = e.expect(opts("never"), controller.signal);
    const second = e.expect(opts("ok"));
    controller.abort(new LabrigError("canceled", "stop"));
    await expect(first).rejects.toMatchObject({ code: "canceled" });
    e.push("ok");
    expect((await second).match).toBe("ok");
  });

  it("failAll rejects every waiting expect with the transport's error", async () => {
    const e = engine();
    const a = e.expect(opts("a"));
    const b = e.expect(opts("b"));
    e.failAll(new LabrigError("device_unavailable", "port gone"));
    await expect(a).rejects.toMatchObject({ code: "device_unavailable" });
    await expect(b).rejects.toMatchObject({ code: "device_unavailable" });
  });
});
