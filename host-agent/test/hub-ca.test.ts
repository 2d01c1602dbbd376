import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config.js";
import { runDoctor } from "../src/doctor.js";
import { makeTempDir } from "./helpers.js";

const MAKE_CERT = new URL("../../deployment/nginx/make-cert.sh", import.meta.url).pathname;

// hub.ca_file: the agent pins the hub's CA (or self-signed certificate) instead of the system's CAs.
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function config(hub: Record<string, unknown>, baseDir: string) {
  return parseConfig({ host: "pi-1", hub: { url: "https://hub.lab.example", token: "lrh_t", ...hub }, devices: [] }, { baseDir });
}

describe("hub.ca_file", () => {
  it("reads the PEM file, relative to the config, into the hub link's CA", () => {
    const temp = makeTempDir();
    try {
      writeFileSync(join(temp.dir, "hub.crt"), PEM);
      const c = config({ ca_file: "hub.crt" }, temp.dir);
      expect(c.hub.ca_file).toBe(join(temp.dir, "hub.crt"));
      expect(c.hub.ca).toBe(PEM);
      expect(config({}, temp.dir).hub.ca).toBeUndefined();
    } finally {
      temp.remove();
    }
  });

  it("names the key and the fix when the file is missing or holds no certificate", () => {
    const temp = makeTempDir();
    try {
      expect(() => config({ ca_file: "missing.crt" }, temp.dir)).toThrow(ConfigError);
      expect(() => config({ ca_file: "missing.crt" }, temp.dir)).toThrow(/hub\.ca_file: cannot read .*missing\.crt.*make-cert\.sh/);
      writeFileSync(join(temp.dir, "key.pem"), "-----BEGIN PRIVATE KEY-----\n");
      expect(() => config({ ca_file: "key.pem" }, temp.dir)).toThrow(/hub\.ca_file: .*holds no PEM certificate/);
    } finally {
      temp.remove();
    }
  });
});

describe("doctor behind TLS", () => {
  it("asks the hub's /api/health with the pinned CA, and without one names hub.ca_file as the fix", async () => {
    const temp = makeTempDir();
    const made = spawnSync(MAKE_CERT, [join(temp.dir, "tls"), "localhost", "127.0.0.1"], { encoding: "utf8" });
    expect(made.status, made.stderr).toBe(0);
    // A real TLS server with the script's self-signed certificate, standing in for nginx in front of the hub.
    const server = createServer({ cert: readFileSync(join(temp.dir, "tls", "hub.crt")), key: readFileSync(join(temp.dir, "tls", "hub.key")) }, (req, res) => {
      res.writeHead(req.url === "/api/health" ? 200 : 404, { "content-type": "application/json" }).end('{"status":"ok"}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const doctor = async (caLine: string) => {
        const path = join(temp.dir, "agent.yaml");
        writeFileSync(path, `host: pi1\nhub: { url: "${url}", token: t${caLine} }\ngpio: { driver: memory }\n`);
        const report = await runDoctor({ configPath: path, devDir: join(temp.dir, "dev"), sysfsRoot: join(temp.dir, "gpio"), hubTimeoutMs: 3000 });
        return report.checks.find((c) => c.name === "hub");
      };
      expect(await doctor(", ca_file: tls/hub.crt")).toMatchObject({ status: "ok", summary: expect.stringContaining(`/api/health answered 200 with the CA in ${join(temp.dir, "tls", "hub.crt")}`) });
      expect(await doctor("")).toMatchObject({ status: "fail", summary: expect.stringContaining("the TLS certificate is not trusted"), fix: expect.stringContaining("set hub.ca_file") });
    } finally {
      server.close();
      temp.remove();
    }
  });
});
