// @ts-check
// `npm start`: the hub on an embedded SQLite file plus one host agent with the simulated rig,
// both as real processes, so a newcomer sees the whole system work in one command.
import { spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { AGENT_CLI, HUB_CLI, SAMPLE_CAMPAIGN_NAME, authHeaders, enrollHost, ensureAdminKey, ensureSampleCampaign, startNode, waitForHostState, waitForHub, writeSimAgentConfig } from "./lib/launch.js";

const port = Number(process.env.PORT ?? 8080);
const bind = process.env.LABRIG_BIND ?? "127.0.0.1";
const dataDir = resolve(process.env.LABRIG_DATA_DIR ?? "./data");
const url = `http://${bind === "0.0.0.0" ? "127.0.0.1" : bind}:${port}`;
// The hub needs an admin key for the REST API: the operator's own LABRIG_ADMIN_KEY, or one kept in <data>/sim/admin.key.
const stored = process.env.LABRIG_ADMIN_KEY ? null : ensureAdminKey(dataDir);
const adminKey = process.env.LABRIG_ADMIN_KEY ?? stored?.key ?? "";
const env = { ...process.env, PORT: String(port), LABRIG_BIND: bind, LABRIG_DATA_DIR: dataDir, LABRIG_ADMIN_KEY: adminKey };

if (spawnSync("socat", ["-V"], { stdio: "ignore" }).error) {
  console.error("The simulated rig needs socat for its serial console. Install it: sudo apt-get install socat");
  process.exit(1);
}

mkdirSync(join(dataDir, "logs"), { recursive: true });
const hubLog = createWriteStream(join(dataDir, "logs", "hub.log"), { flags: "a" });
const agentLog = createWriteStream(join(dataDir, "logs", "agent.log"), { flags: "a" });

const token = enrollHost("sim-1", env);
const agentConfig = writeSimAgentConfig({ dir: join(dataDir, "sim"), host: "sim-1", hubUrl: url, token });

/** @type {import("node:child_process").ChildProcess[]} */
const children = [];
let stopping = false;

/** @param {number} code */
function stop(code) {
  if (stopping) return;
  stopping = true;
  // Agent first, then hub: the reverse of the start order.
  for (const child of [...children].reverse()) child.kill("SIGTERM");
  setTimeout(() => process.exit(code), 3000).unref();
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r))))).then(() => process.exit(code));
}

/**
 * @param {string} name
 * @param {import("node:child_process").ChildProcess} child
 */
function watch(name, child) {
  children.push(child);
  child.once("exit", (code, signal) => {
    if (stopping) return;
    console.error(`${name} exited (${signal ?? code}); see ${join(dataDir, "logs", `${name}.log`)}`);
    stop(1);
  });
}

process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));

watch("hub", startNode([HUB_CLI, "serve"], { env, logFile: hubLog }));
await waitForHub(url);
watch("agent", startNode([AGENT_CLI, "run", "--config", agentConfig], { env, logFile: agentLog }));
await waitForHostState(url, "sim-1", "online", 15_000, authHeaders(adminKey));
await ensureSampleCampaign(url, authHeaders(adminKey));

console.log(`
labrig is running.

  Dashboard               ${url}/   (sign in with the admin key below)
  Hub (REST + socket.io)  ${url}
  API health              ${url}/api/health
  Simulated host          sim-1, device dut1 (console, power, reset, screen)
  Sample campaign         ${SAMPLE_CAMPAIGN_NAME} (Runs page, or POST /api/campaigns/${SAMPLE_CAMPAIGN_NAME}/runs)
  Agent config            ${agentConfig}
  Logs                    ${join(dataDir, "logs")}/hub.log, agent.log
  Database                ${join(dataDir, "labrig.db")}
  API docs                ${url}/docs
  Admin API key           ${adminKey}
                          (${stored ? `kept in ${stored.path}, mode 600; reused at every npm start` : "from your LABRIG_ADMIN_KEY"})

Try it:
  export LABRIG_KEY='${adminKey}'
  curl -s ${url}/api/hosts -H "Authorization: Bearer $LABRIG_KEY"
  curl -s -X POST ${url}/api/hosts/sim-1/devices/dut1/actions -H "Authorization: Bearer $LABRIG_KEY" -H 'content-type: application/json' -d '{"action":"power.on","params":{}}'
  curl -s -X POST ${url}/api/hosts/sim-1/devices/dut1/actions -H "Authorization: Bearer $LABRIG_KEY" -H 'content-type: application/json' -d '{"action":"serial.expect","params":{"pattern":"login:","timeout_ms":10000}}'
  curl -s -X POST ${url}/api/keys -H "Authorization: Bearer $LABRIG_KEY" -H 'content-type: application/json' -d '{"name":"alice","role":"operator"}'

Ctrl-C stops both processes.
`);
