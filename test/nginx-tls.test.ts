import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io as connectSocket } from "socket.io-client";
import { afterAll, describe, expect, it } from "vitest";
import { AGENT_CLI, HUB_CLI, ROOT, enrollHost, startNode } from "../scripts/lib/launch.js";
import { requireTool } from "../hub/test/system-tools.js";
import { E2E_ADMIN_KEY, exited, freePort, waitFor } from "./helpers.js";

// Debian's real nginx with deployment/nginx/labrig-hub.conf (only ports, upstream and certificate
// paths swapped for test ones) and a certificate from deployment/nginx/make-cert.sh, in a prefix
// of its own on 127.0.0.1; REST, a real agent process and a dashboard socket all go through it.
const dir = mkdtempSync(join(tmpdir(), "labrig-nginx-"));
const processes: ChildProcess[] = [];
const log = createWriteStream(join(dir, "processes.log"));

afterAll(async () => {
  for (const p of processes.reverse()) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill("SIGTERM");
      await exited(p);
    }
  }
  log.end();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request that trusts only `ca` (fetch cannot take a CA). */
function https(url: string, ca: string | undefined, init: { method?: string; body?: unknown } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    const req = httpsRequest(
      url,
      {
        method: init.method ?? "GET",
        ...(ca === undefined ? {} : { ca }),
        headers: { authorization: `Bearer ${E2E_ADMIN_KEY}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function nginxConfig(site: string, ports: { https: number; http: number; hub: number }, cert: string, key: string): string {
  const rendered = site
    .replace("server 127.0.0.1:8080;", `server 127.0.0.1:${ports.hub};`)
    .replace("listen 443 ssl;", `listen 127.0.0.1:${ports.https} ssl;`)
    .replace("listen 80;", `listen 127.0.0.1:${ports.http};`)
    .replace(/^\s*listen \[::\]:\d+( ssl)?;\n/gm, "")
    .replace("/etc/labrig/tls/hub.crt", cert)
    .replace("/etc/labrig/tls/hub.key", key);
  const directives = rendered.replace(/#.*$/gm, "");
  for (const left of ["8080", ":443", "listen 80", "/etc/labrig/tls"]) if (directives.includes(left)) throw new Error(`the site config changed shape: '${left}' is still in it; update this test's substitutions`);
  return rendered;
}

describe("TLS through Debian's nginx with deployment/nginx/labrig-hub.conf", () => {
  it("serves REST with HSTS, upgrades /agent and /dashboard sockets, and an agent that pins the certificate connects over https", async () => {
    requireTool("nginx", "nginx", ["-v"]);
    requireTool("openssl", "openssl", ["version"]);

    // The certificate, with the names this test connects by, and its fingerprint as printed.
    const tls = join(dir, "tls");
    const made = spawnSync(join(ROOT, "deployment", "nginx", "make-cert.sh"), [tls, "localhost", "127.0.0.1"], { encoding: "utf8" });
    expect(made.status, made.stderr).toBe(0);
    const cert = readFileSync(join(tls, "hub.crt"), "utf8");
    const x509 = new X509Certificate(cert);
    expect(made.stdout).toContain(`sha256 Fingerprint=${x509.fingerprint256}`);
    expect(x509.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1");

    const ports = { https: await freePort(), http: await freePort(), hub: await freePort() };
    const hubUrl = `http://127.0.0.1:${ports.hub}`;
    const env = { ...process.env, PORT: String(ports.hub), LABRIG_BIND: "127.0.0.1", LABRIG_TLS_UPSTREAM: "true", LABRIG_DATA_DIR: join(dir, "hub"), LABRIG_ADMIN_KEY: E2E_ADMIN_KEY, LABRIG_HEARTBEAT_MS: "500", LOG_LEVEL: "info" };
    const hub = startNode([HUB_CLI, "serve"], { env, logFile: log });
    processes.push(hub);
    await waitFor(async () => (await fetch(`${hubUrl}/api/health`)).ok, 15_000, "the hub");

    const prefix = join(dir, "nginx");
    mkdirSync(join(prefix, "logs"), { recursive: true });
    const site = nginxConfig(readFileSync(join(ROOT, "deployment", "nginx", "labrig-hub.conf"), "utf8"), ports, join(tls, "hub.crt"), join(tls, "hub.key"));
    writeFileSync(join(prefix, "labrig-hub.conf"), site);
    const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `    ${t}_temp_path ${join(prefix, `${t}_temp`)};`).join("\n");
    writeFileSync(
      join(prefix, "nginx.conf"),
      `daemon off;\nworker_processes 1;\npid ${join(prefix, "nginx.pid")};\nerror_log ${join(prefix, "logs", "error.log")} info;\nevents { worker_connections 256; }\nhttp {\n    access_log ${join(prefix, "logs", "access.log")};\n${temp}\n    include ${join(prefix, "labrig-hub.conf")};\n}\n`,
    );
    const args = ["-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", join(prefix, "logs", "error.log")];
    const check = spawnSync("nginx", ["-t", ...args], { encoding: "utf8" });
    expect(check.status, check.stderr).toBe(0);
    const nginx = spawn("nginx", args, { stdio: "ignore" });
    processes.push(nginx);
    const base = `https://127.0.0.1:${ports.https}`;
    await waitFor(async () => (await https(`${base}/api/health`, cert).catch(() => null))?.status === 200, 10_000, "nginx");

    // REST over TLS, HSTS on every answer, plain HTTP redirected, /metrics not exposed.
    const health = await https(`${base}/api/health`, cert);
    expect(health.headers["strict-transport-security"]).toBe("max-age=63072000; includeSubDomains");
    expect((await https(`${base}/api/hosts`, cert)).status).toBe(200);
    expect((await https(`${base}/metrics`, cert)).status).toBe(404);
    const redirect = await new Promise<Answer>((resolve, reject) => {
      httpRequest(`http://127.0.0.1:${ports.http}/api/hosts`, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: "" }));
      }).on("error", reject).end();
    });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe("https://127.0.0.1/api/hosts");
    // Not pinned, the self-signed certificate is refused.
    await expect(https(`${base}/api/health`, undefined)).rejects.toThrow(/self-signed|self signed/);

    // A real agent process, its hub URL https://, pinning the certificate with hub.ca_file.
    const token = enrollHost("tls-1", env);
    writeFileSync(join(dir, "hub.crt"), cert);
    const agentConfig = join(dir, "agent.yaml");
    writeFileSync(
      agentConfig,
      [
        "host: tls-1",
        "hub:",
        `  url: ${base}`,
        `  token: ${token}`,
        `  ca_file: ${join(dir, "hub.crt")}`,
        "data_dir: ./agent-data",
        "gpio: { driver: memory }",
        "devices:",
        "  - id: dut1",
        "    resources: [{ name: relay, kind: gpio, line: 5, direction: out }]",
        "",
      ].join("\n"),
    );
    const agent = startNode([AGENT_CLI, "run", "--config", agentConfig], { env, logFile: log });
    processes.push(agent);
    await waitFor(async () => JSON.parse((await https(`${base}/api/system/status`, cert)).body).fleet.agents_connected === 1, 15_000, "the agent over TLS");

    // A dashboard socket through nginx (WebSocket only: the upgrade must pass), then an action it sees finish.
    const dashboard = connectSocket(`${base}/dashboard`, { ca: cert, auth: { token: E2E_ADMIN_KEY }, transports: ["websocket"], reconnection: false, forceNew: true });
    await new Promise<void>((resolve, reject) => {
      dashboard.once("connect", () => resolve());
      dashboard.once("connect_error", reject);
    });
    const seen = new Promise<Record<string, unknown>>((resolve) => dashboard.once("action.finished", resolve));
    const action = await https(`${base}/api/hosts/tls-1/devices/dut1/actions`, cert, { method: "POST", body: { action: "gpio.write", params: { value: 1 } } });
    expect(action.status, action.body).toBe(200);
    expect(JSON.parse(action.body)).toMatchObject({ status: "succeeded", result: { value: 1 } });
    expect(await seen).toMatchObject({ host: "tls-1", action: "gpio.write", status: "succeeded" });
    dashboard.disconnect();

    // Both sockets came through nginx's WebSocket upgrade (101); nginx logs one when it closes.
    agent.kill("SIGTERM");
    await exited(agent);
    const upgraded = (): number => readFileSync(join(prefix, "logs", "access.log"), "utf8").match(/"GET \/socket\.io\/\?EIO=4&transport=websocket[^"]* HTTP\/1\.1" 101 /g)?.length ?? 0;
    await waitFor(async () => upgraded() >= 2, 5000, "two WebSocket upgrades in nginx's access log");
  }, 60_000);
});
