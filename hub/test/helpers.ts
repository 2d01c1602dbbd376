import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import { pino, type Logger } from "pino";
import { expect } from "vitest";
import { io as connectClient, type Socket as ClientSocket } from "socket.io-client";
import { runCli } from "../src/cli/commands.js";
import { loadConfig, type HubConfig } from "../src/config.js";
import { createHub, type Hub } from "../src/hub.js";

/** Temp dirs created by a test file; removed by cleanupTempDirs() in afterEach. */
const tempDirs: string[] = [];

export function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "labrig-hub-test-"));
  tempDirs.push(dir);
  return dir;
}

export function cleanupTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The admin key every test hub gets through LABRIG_ADMIN_KEY (pass LABRIG_ADMIN_KEY: "" to start without one). */
export const TEST_ADMIN_KEY = "lrk_test-admin-key-for-hub-tests-0123456789";

export function testEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PORT: "0", LABRIG_BIND: "127.0.0.1", LABRIG_DATA_DIR: dataDir, LOG_LEVEL: "silent", LABRIG_ADMIN_KEY: TEST_ADMIN_KEY, ...extra };
}

export function testConfig(dataDir: string, extra: Record<string, string> = {}): HubConfig {
  return loadConfig(testEnv(dataDir, extra));
}

/** A pino logger that keeps every line in memory, for asserting on what the hub logs. */
export function memoryLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim() !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines };
}

/** Runs the CLI in-process and captures its output. */
export async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const { exitCode, served } = await runCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env });
  if (served) await served.hub.stop();
  return { code: exitCode, stdout, stderr };
}

/** Creates a host through the CLI (as an operator would) and returns its token. */
export async function addHost(dataDir: string, name: string): Promise<string> {
  const out = await cli(["host", "add", name, "--json"], testEnv(dataDir));
  if (out.code !== 0) throw new Error(`host add failed: ${out.stderr}`);
  return (JSON.parse(out.stdout) as { token: string }).token;
}

export interface RunningHub {
  hub: Hub;
  url: string;
  port: number;
  dataDir: string;
  config: HubConfig;
}

const runningHubs: Hub[] = [];
const clients: ClientSocket[] = [];

export async function startHub(
  opts: { dataDir?: string; env?: Record<string, string>; logger?: Logger; announce?: (text: string) => void } = {},
): Promise<RunningHub> {
  const dataDir = opts.dataDir ?? makeTempDir();
  const config = testConfig(dataDir, opts.env);
  const hub = createHub(config, { logger: opts.logger ?? pino({ level: "silent" }), announce: opts.announce ?? (() => undefined) });
  const { url, port } = await hub.start();
  runningHubs.push(hub);
  return { hub, url, port, dataDir, config };
}

/** Stops every hub and client a test started; call in afterEach. */
export async function stopAll(): Promise<void> {
  for (const c of clients.splice(0)) c.disconnect();
  for (const h of runningHubs.splice(0)) await h.stop();
}

/** A socket.io-client to the /agent namespace that does not connect until told to. */
export function agentSocket(url: string, auth: Record<string, unknown>): ClientSocket {
  const socket = connectClient(`${url}/agent`, { auth, transports: ["websocket"], reconnection: false, autoConnect: false, forceNew: true });
  clients.push(socket);
  return socket;
}

/** Connects, resolving on `connect` and rejecting with the connect_error (whose `data` is the envelope). */
export function connect(socket: ClientSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", (err) => reject(err));
    socket.connect();
  });
}

export async function connectedAgent(url: string, host: string, token: string): Promise<ClientSocket> {
  const socket = agentSocket(url, { host, token });
  await connect(socket);
  return socket;
}

export const SIM_DEVICE = {
  id: "dut-1",
  labels: { board: "rpi4" },
  capabilities: ["gpio", "power", "serial"],
  resources: [
    { name: "console", kind: "serial" },
    { name: "power", kind: "power" },
    { name: "reset", kind: "gpio" },
    { name: "boot-sel", kind: "gpio" },
  ],
};

/** A hello; `startedAt` names the agent process (a new one each call unless given). */
export function helloPayload(host: string, devices: unknown[] = [SIM_DEVICE], startedAt = new Date().toISOString()): Record<string, unknown> {
  return { host, version: "0.1.0-test", started_at: startedAt, devices };
}

export async function sayHello(socket: ClientSocket, host: string, devices?: unknown[], startedAt?: string): Promise<Record<string, unknown>> {
  return (await socket.timeout(5000).emitWithAck("hello", helloPayload(host, devices, startedAt))) as Record<string, unknown>;
}

/** Polls until `check` returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, stepMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Reads the database file through its own connection, like an operator with sqlite3 would. */
export function queryDb<T>(dataDir: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(join(dataDir, "labrig.db"), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** A dashboard socket.io-client that does not connect until told to; `auth`, `query` and `headers` carry credentials. */
export function dashboardSocket(url: string, opts: { auth?: Record<string, unknown>; query?: Record<string, string>; headers?: Record<string, string> } = {}): ClientSocket {
  const socket = connectClient(`${url}/dashboard`, {
    auth: opts.auth ?? {},
    query: opts.query ?? {},
    extraHeaders: opts.headers ?? {},
    transports: ["websocket"],
    reconnection: false,
    autoConnect: false,
    forceNew: true,
  });
  clients.push(socket);
  return socket;
}

// The launcher's: the hub tests, the end-to-end tests and the benches pick ports alike.
export { freePort } from "../../scripts/lib/launch.js";

/** Asserts the one error envelope: status, stable code, a message, recoverable, and the request id echoed in X-Request-Id. */
export function expectEnvelope(res: { status: number; headers: Headers; body: Record<string, unknown>; text?: string }, status: number, code: string, context = ""): void {
  const where = context === "" ? (res.text ?? JSON.stringify(res.body)) : `${context}: ${res.text ?? JSON.stringify(res.body)}`;
  expect(res.status, where).toBe(status);
  expect(res.body.error_code, where).toBe(code);
  expect(typeof res.body.message, where).toBe("string");
  expect(typeof res.body.recoverable, where).toBe("boolean");
  expect(res.body.request_id, where).toBe(res.headers.get("x-request-id"));
  expect(String(res.body.request_id), where).not.toBe("");
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

/**
 * fetch with the test admin key as `Authorization: Bearer` unless the request names its own
 * Authorization header, or `auth` is null (anonymous) or another credential.
 */
export async function getJson(url: string, init: RequestInit & { auth?: string | null } = {}): Promise<JsonResponse> {
  const { auth, ...rest } = init;
  const headers = new Headers(rest.headers);
  const credential = auth === undefined ? TEST_ADMIN_KEY : auth;
  if (!headers.has("authorization") && credential !== null) headers.set("authorization", `Bearer ${credential}`);
  const res = await fetch(url, { ...rest, headers });
  const text = await res.text();
  const json = (res.headers.get("content-type") ?? "").includes("json") && text !== "";
  return { status: res.status, headers: res.headers, body: (json ? JSON.parse(text) : {}) as Record<string, unknown>, text };
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}, auth?: string | null): Promise<JsonResponse> {
  return getJson(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body), ...(auth === undefined ? {} : { auth }) });
}
