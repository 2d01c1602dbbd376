import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("README quick start", () => {
  it("is exactly two command lines, run and test, without sudo, and CI runs the second one", () => {
    const section = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("\n## ", readme.indexOf("## Quick start") + 3));
    const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(1);
    const lines = blocks[0]!.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toEqual(["deployment/install-deps.sh && npm ci && npm start", "deployment/install-deps.sh --dev && npm ci && npm test"]);
    expect(section).not.toMatch(/\bsudo deployment|\bsudo npm/);
    const ci = readFileSync(new URL("../.ci/run", import.meta.url), "utf8").split("\n");
    expect(ci).toContain(lines[1]);
  });

  it("documents the production steps: pm2 via npx, systemd, nginx TLS, metrics, backups", () => {
    for (const text of ["npx pm2 start deployment/ecosystem.config.cjs", "systemd/labrig-hub.service", "deployment/nginx/make-cert.sh", "hub.ca_file", "GET /metrics", "labrig-hub backup", "labrig-hub restore", "labrig-hub-backup.timer", "GET /api/system/status"]) {
      expect(readme, text).toContain(text);
    }
  });
});
