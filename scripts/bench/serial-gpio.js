// @ts-check
// Serial and GPIO figures for the host agent: console throughput through SerialConsole + ConsoleStream
// over a real socat PTY, expect latency once the matching bytes are in, and gpio.pulse width error on a
// MemoryLine. Prints figures, not pass/fail. Needs a build (npm run build) and socat.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { SerialPort } from "serialport";
import { ConsoleStream, Device, MemoryLineFactory, SerialConsole, createLogger, findSocat, parseConfig } from "../../host-agent/dist/index.js";
import { quantile } from "../lib/bench.js";

const THROUGHPUT_BYTES = 8 * 1024 * 1024;
const THROUGHPUT_MAX_MS = 20_000;
const EXPECT_ROUNDS = 200;
const PULSES = 40;
const PULSE_MS = 50;

const logger = createLogger("silent");
/** @param {string} msg */
const progress = (msg) => process.stdout.write(`  … ${msg}\n`);
/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @param {string} dir */
async function ptyPair(dir) {
  const a = join(dir, "a");
  const b = join(dir, "b");
  const child = spawn("socat", [`PTY,link=${a},rawer,echo=0`, `PTY,link=${b},rawer,echo=0`], { stdio: "ignore" });
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b))) {
    if (Date.now() > deadline) throw new Error("socat did not create the PTY pair");
    await sleep(10);
  }
  return { a, b, stop: () => child.kill("SIGTERM") };
}

/** @param {string} path */
async function openPeer(path) {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise((res, rej) => port.open((e) => (e ? rej(e) : res(undefined))));
  return port;
}

/** @param {SerialPort} port @param {string | Buffer} data */
async function writePeer(port, data) {
  await new Promise((res, rej) => port.write(data, (e) => (e ? rej(e) : res(undefined))));
  await new Promise((res, rej) => port.drain((e) => (e ? rej(e) : res(undefined))));
}

async function serialFigures() {
  const dir = mkdtempSync(join(tmpdir(), "labrig-bench-"));
  const pair = await ptyPair(dir);
  const peer = await openPeer(pair.b);
  let received = 0;
  let chunks = 0;
  /** @type {{ marker: string, at: number } | null} */
  let watch = null;
  let arrivedAt = 0;
  const stream = new ConsoleStream({ host: "bench", device: "dut1", resource: "console" }, {
    canSend: () => true,
    sendConsole: (c) => {
      received += c.data.length;
      chunks++;
    },
  });
  const console_ = new SerialConsole(
    { name: "dut1/console", path: pair.a, baudRate: 115200, dataBits: 8, parity: "none", stopBits: 1, rtsCts: false, txCharDelayMs: 0, logFile: { path: join(dir, "console", "dut1-console.log"), maxBytes: 1 << 20, files: 3 } },
    logger,
    {
      onData: (t) => {
        stream.push(t);
        if (watch && t.includes(watch.marker.slice(-4))) arrivedAt = performance.now();
      },
    },
  );
  try {
    await console_.start();
    await console_.waitUntilOpen(3000);

    progress(`console throughput: ${THROUGHPUT_BYTES / 1048576} MiB through the PTY (at most ${THROUGHPUT_MAX_MS / 1000} s)`);
    const block = Buffer.alloc(64 * 1024, "abcdefghijklmnopqrstuvwxyz0123456789\r\n");
    const t0 = performance.now();
    let sent = 0;
    while (sent < THROUGHPUT_BYTES && performance.now() - t0 < THROUGHPUT_MAX_MS) {
      await writePeer(peer, block);
      sent += block.length;
    }
    const deadline = performance.now() + 10_000;
    while (received < sent && performance.now() < deadline) {
      stream.flush();
      await sleep(5);
    }
    const seconds = (performance.now() - t0) / 1000;
    const throughputChars = received;
    const throughputChunks = chunks;
    const logFile = console_.consoleLogFile;
    await logFile?.flushed();

    progress(`expect latency: ${EXPECT_ROUNDS} rounds`);
    /** @type {number[]} */
    const afterArrival = [];
    /** @type {number[]} */
    const endToEnd = [];
    for (let i = 0; i < EXPECT_ROUNDS; i++) {
      const marker = `marker-${String(i).padStart(5, "0")}`;
      watch = { marker, at: 0 };
      arrivedAt = 0;
      const pending = console_.expect({ pattern: `${marker} ok`, regex: false, timeoutMs: 5000, flush: true });
      const w0 = performance.now();
      await writePeer(peer, `noise noise ${marker} ok\r\n`);
      await pending;
      const done = performance.now();
      if (arrivedAt > 0) afterArrival.push(done - arrivedAt);
      endToEnd.push(done - w0);
    }
    watch = null;
    return {
      mibPerS: throughputChars / 1048576 / seconds,
      received: throughputChars,
      chunks: throughputChunks,
      logDropped: logFile?.droppedBytes ?? 0,
      afterArrival,
      endToEnd,
    };
  } finally {
    stream.stop();
    await console_.stop();
    await new Promise((res) => peer.close(() => res(undefined)));
    pair.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function pulseFigures() {
  progress(`gpio.pulse: ${PULSES} pulses of ${PULSE_MS} ms on a MemoryLine`);
  const config = parseConfig(
    { host: "bench", hub: { url: "http://127.0.0.1:9", token: "t" }, gpio: { driver: "memory" }, devices: [{ id: "dut1", resources: [{ name: "reset", kind: "gpio", line: 27, direction: "out" }] }] },
    { baseDir: tmpdir() },
  );
  const lines = new MemoryLineFactory();
  const dc = config.devices[0];
  if (!dc) throw new Error("bench config has no device");
  const device = new Device(dc, { lineFactory: lines, logger, reportState: () => undefined, onConsoleData: () => undefined });
  await device.start();
  const line = lines.get("dut1/reset");
  if (!line) throw new Error("no reset line");
  /** @type {number[]} */
  const edges = [];
  line.onChange(() => edges.push(performance.now()));
  /** @type {number[]} */
  const wireError = [];
  /** @type {number[]} */
  const reportedError = [];
  const signal = new AbortController().signal;
  for (let i = 0; i < PULSES; i++) {
    edges.length = 0;
    const r = /** @type {{ width_ms: number }} */ (await device.run("gpio.pulse", "reset", { width_ms: PULSE_MS, value: 1 }, signal));
    const [up, down] = edges;
    if (up !== undefined && down !== undefined) wireError.push(down - up - PULSE_MS);
    reportedError.push(r.width_ms - PULSE_MS);
  }
  await device.stop();
  return { wireError, reportedError };
}

if (findSocat() === null) {
  console.log("serial-gpio: socat is missing (apt-get install socat); serial figures skipped");
  process.exitCode = 1;
} else {
  console.log("serial-gpio: host agent serial console and GPIO");
  const s = await serialFigures();
  const g = await pulseFigures();
  /** @param {number} n */
  const ms = (n) => `${n.toFixed(3)} ms`;
  /** @type {Array<[string, string, string]>} */
  const rows = [
    ["console throughput (PTY → SerialConsole → ConsoleStream)", `${s.mibPerS.toFixed(2)} MiB/s`, `${s.received} chars in ${s.chunks} chunks, log file dropped ${s.logDropped} B`],
    ["expect latency after matching bytes arrive, p50", ms(quantile(s.afterArrival, 0.5)), `${s.afterArrival.length} rounds`],
    ["expect latency after matching bytes arrive, p99", ms(quantile(s.afterArrival, 0.99)), ""],
    ["expect end to end (peer write → match), p50", ms(quantile(s.endToEnd, 0.5)), ""],
    ["expect end to end (peer write → match), p99", ms(quantile(s.endToEnd, 0.99)), ""],
    [`gpio.pulse ${PULSE_MS} ms width error on the wire, p50`, ms(quantile(g.wireError, 0.5)), `${g.wireError.length} pulses, MemoryLine`],
    [`gpio.pulse ${PULSE_MS} ms width error on the wire, p99`, ms(quantile(g.wireError, 0.99)), ""],
    [`gpio.pulse ${PULSE_MS} ms reported width error, p50`, ms(quantile(g.reportedError, 0.5)), ""],
    [`gpio.pulse ${PULSE_MS} ms reported width error, p99`, ms(quantile(g.reportedError, 0.99)), ""],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const v = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${"figure".padEnd(w)}  ${"value".padStart(v)}  note`);
  for (const [name, value, note] of rows) console.log(`${name.padEnd(w)}  ${value.padStart(v)}  ${note}`);
  console.log("\nnote: sysfs pulses (onoff) need root and a private mount namespace (unshare -m) with a fake tree, as in host-agent/test/gpio-sysfs.test.ts; on a Pi, run this against real pins instead.");
}
