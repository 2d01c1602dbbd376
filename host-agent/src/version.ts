import { readFileSync } from "node:fs";

/**
 * The agent's version, read from its package.json. The file sits one level above both
 * src/ (tests) and dist/ (installed), so the same relative URL works in either.
 */
function readVersion(): string {
  const raw = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  const parsed = JSON.parse(raw) as { version?: unknown };
  if (typeof parsed.version !== "string") {
    throw new Error("host-agent/package.json has no version string; reinstall the agent.");
  }
  return parsed.version;
}

export const AGENT_VERSION: string = readVersion();
