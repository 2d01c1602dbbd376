import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// The README is the newcomer's manual: it must name every setting the code reads.
const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

function envNamesIn(file: string): string[] {
  const source = readFileSync(new URL(file, import.meta.url), "utf8");
  return [...new Set([...source.matchAll(/\b((?:LABRIG|GEMINI|JWT|PLANNER)_[A-Z0-9_]+)\b/g)].map((m) => m[1]!))];
}

describe("README", () => {
  it("documents every environment variable of the hub, the agent and the CI CLI", () => {
    const names = [
      ...envNamesIn("../hub/src/config.ts"),
      ...envNamesIn("../host-agent/src/config.ts"),
      ...envNamesIn("../host-agent/src/cli.ts"),
      ...envNamesIn("../hub/src/cli/labrig.ts"),
      "PORT",
      "LOG_LEVEL",
    ];
    expect(names.length).toBeGreaterThan(35);
    for (const name of names) expect(readme, name).toContain(`\`${name}\``);
  });

  it("gives the two commands, run and test, and the setup CI uses", () => {
    expect(readme).toContain("npm start");
    expect(readme).toContain("npm test");
    const ci = readFileSync(new URL("../.ci/run", import.meta.url), "utf8");
    expect(ci).toContain("npm test");
    expect(ci).toContain("deployment/install-deps.sh");
    expect(readme).toContain("deployment/install-deps.sh");
  });
});
