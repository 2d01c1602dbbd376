// @ts-check
// User patterns: what linear-time matching (RE2 through re2js) costs next to V8's backtracking RegExp
// as the baseline, measured in the same run: an expect on a 64 KiB unread buffer fed in 256-byte
// chunks (the agent's expect engine re-searches the buffer on every chunk), and a catastrophic
// pattern, where RegExp doubles per character and RE2 stays linear. Prints figures, not pass/fail.
import { performance } from "node:perf_hooks";
import { LabrigError, compilePattern } from "../../shared/dist/index.js";
import { ExpectEngine } from "../../host-agent/dist/index.js";

const BUFFER = 64 * 1024;
const CHUNK = 256;

/** @param {(text: string) => unknown} find @param {string} text */
function feedCost(find, text) {
  // What the engine does per chunk: search everything unread so far.
  const t0 = performance.now();
  for (let end = CHUNK; end <= text.length; end += CHUNK) find(text.slice(0, end));
  return performance.now() - t0;
}

const boot = Array.from({ length: BUFFER / 64 }, (_, i) => `[${String(i).padStart(6)}.000] systemd[1]: Started unit ${i}.service\n`).join("").slice(0, BUFFER);
const pattern = "login: (\\w+)$";
const re2 = compilePattern(pattern);
const native = new RegExp(pattern);
feedCost((t) => re2.exec(t), boot.slice(0, 8192));
feedCost((t) => native.exec(t), boot.slice(0, 8192));
const re2Ms = feedCost((t) => re2.exec(t), boot);
const nativeMs = feedCost((t) => native.exec(t), boot);
console.log(`expect over a ${BUFFER / 1024} KiB buffer in ${CHUNK}-byte chunks (${BUFFER / CHUNK} searches, no match):`);
console.log(`  RE2 (re2js)        ${re2Ms.toFixed(1)} ms total, ${(re2Ms / (BUFFER / CHUNK)).toFixed(3)} ms per chunk`);
console.log(`  RegExp (baseline)  ${nativeMs.toFixed(1)} ms total, ${(nativeMs / (BUFFER / CHUNK)).toFixed(3)} ms per chunk`);
console.log(`  ratio RE2 / RegExp ${(re2Ms / nativeMs).toFixed(1)}×`);

console.log(`catastrophic pattern (.|.)*X on n characters without X:`);
const bad = "(.|.)*X";
const badRe2 = compilePattern(bad);
const badNative = new RegExp(bad);
for (const n of [16, 18, 20, 22]) {
  const text = "a".repeat(n);
  let t0 = performance.now();
  badNative.exec(text);
  const nativeN = performance.now() - t0;
  t0 = performance.now();
  badRe2.exec(text);
  const re2N = performance.now() - t0;
  console.log(`  n=${String(n).padStart(6)}  RegExp ${nativeN.toFixed(1).padStart(8)} ms   RE2 ${re2N.toFixed(3)} ms`);
}
for (const n of [65_536, 1_048_576]) {
  const text = "a".repeat(n);
  const t0 = performance.now();
  badRe2.exec(text);
  console.log(`  n=${String(n).padStart(7)}  RegExp (would not finish)   RE2 ${(performance.now() - t0).toFixed(1)} ms`);
}

// And through the agent's expect engine itself, a catastrophic regex expect on a full buffer.
const engine = new ExpectEngine({ name: "bench/console", bufferChars: BUFFER });
const waiting = engine.expect({ pattern: "(a|aa)+$QQQ", regex: true, timeoutMs: 60_000, flush: false });
waiting.catch(() => undefined);
const t0 = performance.now();
for (let i = 0; i < BUFFER / CHUNK; i++) engine.push("a".repeat(CHUNK));
console.log(`expect engine, (a|aa)+$QQQ pending while 64 KiB of 'a' arrive in ${CHUNK}-byte chunks: ${(performance.now() - t0).toFixed(1)} ms in all`);
engine.failAll(new LabrigError("canceled", "bench done"));
