// @ts-check
// Runs every benchmark in this folder (every *.js but this file), one after another, each in its
// own node process so one bench's memory and sockets do not skew the next. `npm run bench` builds first.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const self = basename(fileURLToPath(import.meta.url));
const benches = readdirSync(here)
  .filter((f) => f.endsWith(".js") && f !== self)
  .sort();

let failed = 0;
for (const file of benches) {
  process.stdout.write(`\n=== bench: ${file} ===\n`);
  // --expose-gc lets benches measure heap after a collection instead of whatever garbage is lying around.
  const res = spawnSync(process.execPath, ["--expose-gc", join(here, file)], { stdio: "inherit" });
  if (res.status !== 0) {
    failed += 1;
    process.stdout.write(`bench ${file} failed (exit ${res.status ?? res.signal})\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
