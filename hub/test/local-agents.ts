import { createAgent, createLogger, parseConfig, type Agent, type AgentOptions, type Logger } from "@labrig/host-agent";
import { addHost, getJson, makeTempDir, waitFor, type RunningHub } from "./helpers.js";

// Real agents (host-agent's createAgent) in the test process, enrolled on a real hub: the one way
// hub tests start an agent. Their config lives in a temp dir removed by cleanupTempDirs().

const agents: Agent[] = [];

/**
 * The simulated board (`dut1`) most hub tests drive: a serial console on a socat PTY, a power
 * relay, a reset line and, with `screen`, a test-pattern video source.
 */
export function simulatedBoard(labels: Record<string, string> = { board: "sim" }, { screen = false } = {}): Record<string, unknown> {
  return {
    id: "dut1",
    labels,
    simulated: true,
    resources: [
      { name: "console", kind: "serial", path: "./dut1-console", baud_rate: 115200 },
      { name: "power", kind: "power", line: 17, cycle_off_ms: 50 },
      { name: "reset", kind: "gpio", line: 27, direction: "out", active_low: true },
      ...(screen ? [{ name: "screen", kind: "video", source: "test-pattern", width: 160, height: 120, fps: 10 }] : []),
    ],
  };
}

/** Enrols `host`, starts an agent with `devices` (memory GPIO) against the hub and waits until the hub lists it online. */
export async function startLocalAgent(
  hub: RunningHub,
  host: string,
  devices: unknown[],
  options: { logger?: Logger; agent?: AgentOptions } = {},
): Promise<Agent> {
  const token = await addHost(hub.dataDir, host);
  const config = parseConfig({ host, hub: { url: hub.url, token }, data_dir: "./data", gpio: { driver: "memory" }, devices }, { baseDir: makeTempDir() });
  const agent = createAgent(config, options.logger ?? createLogger("silent"), options.agent);
  agents.push(agent);
  await agent.start();
  await waitFor(async () => (await getJson(`${hub.url}/api/hosts/${host}`)).body.state === "online", 10_000);
  return agent;
}

/** Stops every agent startLocalAgent started; call in afterEach before stopping the hubs. */
export async function stopLocalAgents(): Promise<void> {
  for (const a of agents.splice(0)) await a.stop();
}
