import { readFileSync } from "node:fs";

// Read from package.json so the version is bumped in one place; the path is the same from src/ and dist/.
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };

/** The hub's version, as reported by /api/health and the hello ack. */
export const HUB_VERSION: string = typeof pkg.version === "string" ? pkg.version : "0.0.0";
