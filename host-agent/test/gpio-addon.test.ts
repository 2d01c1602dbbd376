import { spawnSync } from "node:child_process";
import { closeSync, constants, existsSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ADDON_PATH, UapiError, nativeUapi } from "../src/devices/gpio/uapi.js";
import { IOCTL, LAYOUT } from "../src/devices/gpio/uapi-layout.js";
import { makeTempDir } from "./helpers.js";

/*
 * The native addon itself, on this machine's kernel: there is no GPIO chip here, so ioctl is
 * checked for its errors and its buffer guard, and the edge-event path (a libuv poll on an fd)
 * on a FIFO, which wakes the event loop exactly as a line request fd does when an edge arrives.
 */
function requireAddon(): void {
  if (!existsSync(ADDON_PATH)) throw new Error(`the GPIO addon is not built at ${ADDON_PATH}; run npm ci (it builds host-agent/binding.gyp with node-gyp)`);
}

describe("the GPIO uAPI addon", () => {
  it("runs a real ioctl and reports the kernel's errno by name", () => {
    requireAddon();
    const uapi = nativeUapi();
    const fd = uapi.open("/dev/null");
    try {
      let caught: unknown;
      try {
        uapi.ioctl(fd, IOCTL.GET_CHIPINFO, Buffer.alloc(LAYOUT.gpiochip_info.size));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(UapiError);
      // /dev/null is no GPIO chip: the kernel answers "inappropriate ioctl for device".
      expect((caught as UapiError).code).toBe("ENOTTY");
      // A buffer shorter than the request's struct would let the kernel write past its end: refused before the call.
      expect(() => uapi.ioctl(fd, IOCTL.GET_LINE, Buffer.alloc(16))).toThrow(/shorter than the request's struct/);
    } finally {
      uapi.close(fd);
    }
    expect(() => nativeUapi().open("/nonexistent/gpiochip0")).toThrow(expect.objectContaining({ code: "ENOENT" }));
  });

  it("wakes the event loop when an fd becomes readable, until unwatched", async () => {
    requireAddon();
    const temp = makeTempDir();
    const fifo = join(temp.dir, "edges");
    if (spawnSync("mkfifo", [fifo]).status !== 0) throw new Error("mkfifo failed (coreutils)");
    // O_RDWR on a FIFO holds both ends in one fd, like a line request that is read after each poll.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const uapi = nativeUapi();
    try {
      const seen: string[] = [];
      const buf = Buffer.alloc(64);
      let wake: () => void = () => undefined;
      const stop = uapi.watch(fd, () => {
        seen.push(buf.toString("utf8", 0, readSync(fd, buf, 0, buf.length, null)));
        wake();
      });
      const next = () => new Promise<void>((resolve) => (wake = resolve));
      let woke = next();
      writeSync(fd, "rise");
      await woke;
      woke = next();
      writeSync(fd, "fall");
      await woke;
      expect(seen).toEqual(["rise", "fall"]);
      stop();
      writeSync(fd, "after");
      await new Promise((r) => setTimeout(r, 50));
      expect(seen).toEqual(["rise", "fall"]);
    } finally {
      closeSync(fd);
      temp.remove();
    }
  });
});
