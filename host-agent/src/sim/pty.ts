import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, lstatSync, unlinkSync } from "node:fs";
import { LabrigError, backoffMs, sleep } from "@labrig/shared";
import { findExecutable } from "../capture/ffmpeg-source.js";
import type { Logger } from "../logger.js";

export const SOCAT_INSTALL_HINT = "socat is not installed; install it: apt-get install socat";

/** The socat executable on PATH, or null. */
export function findSocat(env: NodeJS.ProcessEnv = process.env): string | null {
  return findExecutable("socat", env);
}

/** socat's address for a raw pseudo-terminal whose slave is reachable at `link`. */
export function ptyAddress(link: string): string {
  return `PTY,link=${link},rawer,echo=0`;
}

/** Removes a symlink a crashed run left behind, so waiting for the link really waits for the new one. Never touches anything else. */
export function removeStaleLink(path: string): void {
  try {
    if (lstatSync(path).isSymbolicLink()) unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** Polls until `path` exists (socat creates the link once the PTY is set up). */
export async function waitForPath(path: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new LabrigError("device_unavailable", `${what} did not appear at ${path} within ${timeoutMs} ms; see socat's messages in the log.`);
    await sleep(10);
  }
}

export interface SimPtyOptions {
  /** Where the slave side appears; the agent opens this path as it would a USB serial adapter. */
  path: string;
  readyTimeoutMs?: number;
  /** First delay before restarting a socat that died; doubles while it keeps dying, up to restartMaxMs. */
  restartDelayMs?: number;
  restartMaxMs?: number;
}

type DataListener = (text: string) => void;

/**
 * A real pseudo-terminal for the simulated device: `socat PTY,link=<path>,rawer,echo=0 STDIO`.
 * The agent opens <path> with serialport; the simulator talks to socat's stdin/stdout.
 * If socat dies while the sim runs it is restarted, and the agent's console reconnects.
 */
export class SimPty {
  private child: ChildProcess | null = null;
  private running = false;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Restarts since socat last came up; a socat that cannot start (a bad link path) is retried ever more slowly. */
  private restartAttempt = 0;
  private readonly listeners = new Set<DataListener>();

  constructor(
    private readonly options: SimPtyOptions,
    private readonly logger: Logger,
  ) {}

  get path(): string {
    return this.options.path;
  }

  /** The running socat's pid (tests kill it to check the restart). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (findSocat() === null) throw new LabrigError("device_unavailable", `The simulated rig needs a pseudo-terminal: ${SOCAT_INSTALL_HINT}`);
    this.running = true;
    this.restartAttempt = 0;
    try {
      await this.spawn();
    } catch (err) {
      // The agent stops only what started; a socat left here would be restarted forever.
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const killTimer = setTimeout(() => child.kill("SIGKILL"), 2000);
      await exited;
      clearTimeout(killTimer);
    }
    removeStaleLink(this.options.path);
  }

  /** Sends text to the agent (what the board prints). Dropped while socat restarts, as a line glitch would drop it. */
  write(text: string): void {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed) return;
    stdin.write(text);
  }

  /** Calls `listener` with what the agent writes to the console; returns the unsubscribe. */
  onData(listener: DataListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async spawn(): Promise<void> {
    const path = this.options.path;
    removeStaleLink(path);
    const child = spawn("socat", ["-d", "-d", ptyAddress(path), "STDIO"], { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (text: string) => {
      for (const l of [...this.listeners]) l(text);
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => {
      for (const line of text.split("\n")) if (line.trim() !== "") this.logger.debug({ pty: path, socat: line.trim() }, "socat");
    });
    // A write racing socat's exit fails with EPIPE; the exit handler below restarts it.
    child.stdin?.on("error", (err) => this.logger.debug({ pty: path, err: err.message }, "socat stdin closed"));
    child.on("error", (err) => this.logger.error({ pty: path, err: err.message }, "socat could not be run"));
    child.on("exit", (code, signal) => {
      if (this.child !== child || !this.running) return;
      this.child = null;
      this.logger.warn({ pty: path, code, signal }, "socat exited while the simulator runs; restarting it");
      const delay = backoffMs(this.restartAttempt++, this.options.restartDelayMs ?? 200, this.options.restartMaxMs ?? 5000);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (!this.running) return;
        this.spawn().catch((err: unknown) => this.logger.error({ pty: path, err: (err as Error).message }, "restarting socat failed"));
      }, delay);
    });
    await waitForPath(path, this.options.readyTimeoutMs ?? 5000, "socat's pseudo-terminal");
    if (this.child === child) this.restartAttempt = 0;
    this.logger.info({ pty: path, pid: child.pid }, "simulated console pseudo-terminal ready");
  }
}
