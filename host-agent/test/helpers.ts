import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SerialPort } from "serialport";
import { createLogger, type Logger } from "../src/logger.js";
import { findSocat, ptyAddress, removeStaleLink, SOCAT_INSTALL_HINT, waitForPath } from "../src/sim/pty.js";

/** Logs are silent in tests unless LOG_LEVEL asks for them (debugging a failure). */
export function testLogger(): Logger {
  const level = process.env.LOG_LEVEL;
  return createLogger(level === "debug" || level === "trace" || level === "info" || level === "warn" ? level : "silent");
}

/** Fails (never skips) when socat is missing, with the install command. */
export function requireSocat(): void {
  if (findSocat() === null) throw new Error(SOCAT_INSTALL_HINT);
}

export function makeTempDir(prefix = "labrig-agent-test-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface PtyPair {
  a: string;
  b: string;
  stop: () => Promise<void>;
}

/** Two real pseudo-terminals joined back to back by socat: what is written to one is read from the other. */
export async function startPtyPair(dir: string): Promise<PtyPair> {
  requireSocat();
  const a = join(dir, "pty-a");
  const b = join(dir, "pty-b");
  removeStaleLink(a);
  removeStaleLink(b);
  const child: ChildProcess = spawn("socat", ["-d", "-d", ptyAddress(a), ptyAddress(b)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPath(a, 5000, "pty a");
    await waitForPath(b, 5000, "pty b");
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`socat did not create the PTY pair: ${(err as Error).message}\n${stderr}`);
  }
  return {
    a,
    b,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The far end of a console, opened with the real serialport binding. */
export async function openPeer(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return port;
}

export async function writePeer(port: SerialPort, data: string | Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => port.write(data, (err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve, reject) => port.drain((err) => (err ? reject(err) : resolve())));
}

export async function closePeer(port: SerialPort): Promise<void> {
  if (!port.isOpen) return;
  await new Promise<void>((resolve, reject) => port.close((err) => (err ? reject(err) : resolve())));
}

/** Polls `cond` every 10 ms until it holds, failing with `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
