// @ts-check
// Hub-side overhead of a plan: snapshot through the agent, fetch of the JPEG, scaling, prompt and
// request building, the SDK call to a model that answers at once (a local fake on 127.0.0.1, so the
// model's own latency is ~0), validation and storage. Figures, not pass/fail. Needs a build.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createAgent, createLogger as agentLogger, parseConfig } from "../../host-agent/dist/index.js";
import { createHub, createLogger, loadConfig, runCli, scaleJpeg } from "../../hub/dist/index.js";
import { quantile } from "../lib/bench.js";

const PLANS = 100;
const SNAPSHOTS = 100;
const MAX_MS = 60_000;
const ADMIN_KEY = "lrk_bench-planner-admin-key-0123456789abcdef";
const SIZES = [
  { width: 640, height: 480 },
  { width: 1280, height: 720 },
];
/** @param {string} msg */
const progress = (msg) => process.stdout.write(`  … ${msg}\n`);

/** A Gemini stand-in that answers every generateContent at once with a one-action plan. */
async function instantModel() {
  const answer = JSON.stringify({ observation: "a test pattern", reasoning: "", actions: [{ action: "wait", params: { ms: 0 } }], done: false });
  let modelMs = 0;
  const server = createServer((req, res) => {
    const t0 = performance.now();
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: answer }] }, finishReason: "STOP" }], usageMetadata: { promptTokenCount: 300, candidatesTokenCount: 30 } }));
      modelMs += performance.now() - t0;
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(null)));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, server, modelMs: () => modelMs };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "labrig-bench-planner-"));
  const model = await instantModel();
  const env = {
    PORT: "0",
    LABRIG_BIND: "127.0.0.1",
    LABRIG_DATA_DIR: join(dir, "hub"),
    LABRIG_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: "warn",
    GEMINI_API_KEY: "bench",
    GEMINI_BASE_URL: model.url,
    GEMINI_STREAM: "false",
    GEMINI_DAILY_REQUESTS: "1000000",
  };
  let token = "";
  await runCli(["host", "add", "bench-1", "--json"], { env, stdout: (t) => (token = JSON.parse(t).token), stderr: () => undefined });
  const config = loadConfig(env);
  const hub = createHub(config, { logger: createLogger("warn"), announce: () => undefined });
  const { url } = await hub.start();
  const agentConfig = parseConfig(
    {
      host: "bench-1",
      hub: { url, token },
      data_dir: "./agent",
      gpio: { driver: "memory" },
      devices: SIZES.map((s) => ({ id: `cam-${s.width}`, resources: [{ name: "screen", kind: "video", source: "test-pattern", width: s.width, height: s.height, fps: 15 }] })),
    },
    { baseDir: dir },
  );
  const agent = createAgent(agentConfig, agentLogger("warn"));
  await agent.start();
  const headers = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const h = /** @type {{state: string}} */ (await (await fetch(`${url}/api/hosts/bench-1`, { headers })).json());
    if (h.state === "online") break;
    await new Promise((r) => setTimeout(r, 50));
  }

  const rows = [];
  try {
    for (const size of SIZES) {
      const device = `cam-${size.width}`;
      progress(`${size.width}x${size.height}: ${SNAPSHOTS} snapshots + fetches`);
      const snap = [];
      let lastJpeg = Buffer.alloc(0);
      const stopAt = Date.now() + MAX_MS;
      for (let i = 0; i < SNAPSHOTS && Date.now() < stopAt; i++) {
        const t0 = performance.now();
        const rec = /** @type {{result: {artifact: string}}} */ (await (await fetch(`${url}/api/hosts/bench-1/devices/${device}/actions`, { method: "POST", headers, body: JSON.stringify({ action: "capture.snapshot", params: {} }) })).json());
        const res = await fetch(`${url}/api/hosts/bench-1/artifacts/${rec.result.artifact}`, { headers });
        lastJpeg = Buffer.from(await res.arrayBuffer());
        snap.push(performance.now() - t0);
      }
      progress(`${size.width}x${size.height}: scaling to ${config.planner.maxEdge} px`);
      const scale = [];
      for (let i = 0; i < 50; i++) {
        const t0 = performance.now();
        scaleJpeg(lastJpeg, config.planner.maxEdge);
        scale.push(performance.now() - t0);
        // Let the in-process agent and hub run between calls: 50 back-to-back scalings block the loop
        // long enough for the hub to miss the agent's heartbeats and mark the host offline.
        await new Promise((r) => setImmediate(r));
      }
      progress(`${size.width}x${size.height}: ${PLANS} plans against an instant model`);
      const plans = [];
      const modelBefore = model.modelMs();
      for (let i = 0; i < PLANS && Date.now() < stopAt + MAX_MS; i++) {
        const t0 = performance.now();
        const res = await fetch(`${url}/api/plans`, { method: "POST", headers, body: JSON.stringify({ instruction: "What is on the screen?", host: "bench-1", device }) });
        if (res.status !== 201) throw new Error(`plan failed: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
        plans.push(performance.now() - t0);
      }
      const modelPer = (model.modelMs() - modelBefore) / plans.length;
      rows.push({ size: `${size.width}x${size.height}`, snap, scale, plans, modelPer, jpegKb: lastJpeg.length / 1024 });
    }
  } finally {
    await agent.stop();
    await hub.stop();
    model.server.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const f = (/** @type {number} */ n) => n.toFixed(2).padStart(8);
  console.log("\nPlan overhead on the hub (model answers instantly; model time = time inside the fake server)");
  console.log("size       | jpeg KB | snapshot+fetch p50/p99 ms | scale p50/p99 ms | plan total p50/p99 ms | model ms | hub overhead p50 ms");
  for (const r of rows) {
    const overhead = quantile(r.plans, 0.5) - r.modelPer;
    console.log(
      `${r.size.padEnd(10)} | ${r.jpegKb.toFixed(1).padStart(7)} | ${f(quantile(r.snap, 0.5))} / ${f(quantile(r.snap, 0.99))} | ${f(quantile(r.scale, 0.5))} / ${f(quantile(r.scale, 0.99))} | ${f(quantile(r.plans, 0.5))} / ${f(quantile(r.plans, 0.99))} | ${f(r.modelPer)} | ${f(overhead)}`,
    );
  }
  console.log("hub overhead = plan total − model time: snapshot on the agent, JPEG fetch, scaling, prompt, SDK request, validation, storage.");
  console.log("Hub, agent and HTTP client share one Node process here, so the figures include the agent's JPEG encoding.");
}

await main();
