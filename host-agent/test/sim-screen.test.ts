import { readFileSync } from "node:fs";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAgent, type Agent } from "../src/agent.js";
import { parseConfig } from "../src/config.js";
import { makeTempDir, requireSocat, testLogger, until } from "./helpers.js";

/** Fraction of bright pixels in the middle of the picture, where the board's screen word is drawn. */
function brightMiddle(bytes: Buffer): number {
  const img = jpeg.decode(bytes, { useTArray: true });
  let bright = 0;
  let n = 0;
  for (let y = Math.floor(img.height * 0.3); y < img.height * 0.6; y++) {
    for (let x = Math.floor(img.width * 0.1); x < img.width * 0.9; x++) {
      const i = (y * img.width + x) * 4;
      if ((img.data[i] as number) > 200 && (img.data[i + 1] as number) > 200 && (img.data[i + 2] as number) > 200) bright++;
      n++;
    }
  }
  return bright / n;
}

describe("the simulated board's screen (test-pattern video resource)", () => {
  let temp: ReturnType<typeof makeTempDir>;
  let agent: Agent;

  beforeEach(async () => {
    requireSocat();
    temp = makeTempDir();
    const config = parseConfig(
      {
        host: "sim-1",
        // Nobody listens here: the agent keeps retrying the hub, which this test does not need.
        hub: { url: "http://127.0.0.1:9", token: "t" },
        data_dir: "./data",
        gpio: { driver: "memory" },
        devices: [
          {
            id: "dut1",
            simulated: true,
            resources: [
              { name: "console", kind: "serial", path: "./dut1-console" },
              { name: "power", kind: "power", line: 17 },
              { name: "screen", kind: "video", source: "test-pattern", width: 320, height: 240, fps: 5 },
            ],
          },
        ],
      },
      { baseDir: temp.dir },
    );
    // Long enough that the BOOTING snapshot (next frame + JPEG) is taken before the login prompt, even on a loaded box.
    agent = createAgent(config, testLogger(), { sim: { bootMs: 2000 } });
    await agent.start();
  });

  afterEach(async () => {
    await agent.stop();
    temp.remove();
  });

  async function snapshot(): Promise<Buffer> {
    const device = agent.devices.get("dut1");
    const source = device?.videoCapture("screen")?.source;
    // A frame rendered after the state change, not the one from before it.
    await source?.next(source.latest()?.seq ?? -1, 2000);
    const r = await device?.run("capture.snapshot", "screen", {}, new AbortController().signal);
    return readFileSync(join(agent.artifacts.dir, `${(r as { artifact: string }).artifact}.jpg`));
  }

  it("is dark while off and shows BOOTING, LOGIN and SHELL in big letters as the board comes up", async () => {
    const device = agent.devices.get("dut1");
    const dut = () => agent.sims.get("dut1")?.dut;
    expect(dut()?.screen()).toEqual({ blank: true });
    const off = await snapshot();
    expect(brightMiddle(off)).toBe(0);

    await device?.run("power.on", "power", {}, new AbortController().signal);
    expect(dut()?.screen()).toEqual({ text: "BOOTING" });
    const booting = await snapshot();
    await until(() => dut()?.status === "login", "the login prompt", 10_000);
    expect(dut()?.screen()).toEqual({ text: "LOGIN" });
    const login = await snapshot();
    const console_ = device?.serialConsole("console");
    await console_?.write("root\rlabrig\r");
    await until(() => dut()?.status === "shell", "the shell", 5000);
    expect(dut()?.screen()).toEqual({ text: "SHELL" });
    const shell = await snapshot();
    // Each state shows its word in white over a black box; the amount of white differs by word.
    const lit = [booting, login, shell].map(brightMiddle);
    for (const v of lit) expect(v).toBeGreaterThan(0.03);
    expect(new Set(lit.map((v) => v.toFixed(4))).size).toBe(3);
  });
});
