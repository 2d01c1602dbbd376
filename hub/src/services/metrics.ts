import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * What the metrics read at scrape time. Each function is cheap and side-effect free; the hub wires
 * them to whatever owns the fact today (metrics-wiring.ts), so a new unit only changes the wiring.
 */
export interface MetricsSources {
  queue(): { waiting: number; running: number };
  hosts(): { online: number; offline: number };
  devicesByHealth(): Record<string, number>;
  leases(): { active: number; devices: number };
  runsActive(): number;
  planner(): { enabled: boolean; requestsLeft: number; tokensLeft: number };
  connections(): { agents: number; dashboards: number };
  video(): { streams: number; viewers: number };
}

/** One action that ended, as the counters and the latency histogram need it. */
export interface FinishedAction {
  action: string;
  status: string;
  errorCode: string | null;
  /** Hub clock, when the request was accepted. */
  queuedAt: string;
}

// Latency buckets from a millisecond dispatch on the LAN to a long expect or a queued request.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

/**
 * The hub's Prometheus metrics (prom-client): counters and histograms fed by events as they
 * happen, gauges read from `sources` at each scrape, and Node's process metrics (CPU, memory,
 * file descriptors, event-loop lag, GC). One registry per hub, so hubs in one process (tests) do
 * not share series.
 */
export class HubMetrics {
  readonly registry = new Registry();
  private readonly actions: Counter<"action" | "outcome" | "error_code">;
  private readonly latency: Histogram<"action">;
  private readonly queueWait: Histogram<"action">;
  private readonly runs: Counter<"status">;
  private readonly plannerCalls: Counter<"status">;
  private readonly plannerTokens: Counter<"direction">;

  constructor(sources: MetricsSources, version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges *_total, which promtool rejects (that suffix means a counter);
    // the same counts stay available by type as nodejs_active_handles, _requests and _resources.
    for (const misnamed of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(misnamed);
    new Gauge({ name: "labrig_build_info", help: "Always 1; the hub's version as a label.", labelNames: ["version"], registers }).set({ version }, 1);
    this.actions = new Counter({
      name: "labrig_actions_total",
      help: "Actions that ended, by action, outcome (succeeded, failed, canceled) and error code (none when it succeeded).",
      labelNames: ["action", "outcome", "error_code"],
      registers,
    });
    this.latency = new Histogram({
      name: "labrig_dispatch_latency_seconds",
      help: "Dispatch round trip: from accepting an action request to its stored outcome (queue wait, agent round trip and run time).",
      labelNames: ["action"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: "labrig_queue_wait_seconds",
      help: "Time an action waited on the hub for a free device before it was sent to an agent.",
      labelNames: ["action"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.runs = new Counter({ name: "labrig_runs_total", help: "Campaign and test-case runs that ended, by status.", labelNames: ["status"], registers });
    this.plannerCalls = new Counter({ name: "labrig_planner_calls_total", help: "Plans the planner finished, by status.", labelNames: ["status"], registers });
    this.plannerTokens = new Counter({ name: "labrig_planner_tokens_total", help: "Model tokens used by the planner, by direction (input, output).", labelNames: ["direction"], registers });

    const gauge = (name: string, help: string, read: (g: Gauge) => void, labelNames: string[] = []): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          read(this);
        },
      });
    };
    gauge("labrig_queue_depth", "Requests (actions and leases) waiting on the hub for a free device.", (g) => g.set(sources.queue().waiting));
    gauge("labrig_actions_running", "Actions sent to agents and not finished yet.", (g) => g.set(sources.queue().running));
    gauge(
      "labrig_hosts",
      "Enrolled hosts by presence state.",
      (g) => {
        const h = sources.hosts();
        g.set({ state: "online" }, h.online);
        g.set({ state: "offline" }, h.offline);
      },
      ["state"],
    );
    gauge(
      "labrig_devices",
      "Devices by health (good, unknown, bad, maintenance).",
      (g) => {
        g.reset();
        for (const [health, n] of Object.entries(sources.devicesByHealth())) g.set({ health }, n);
      },
      ["health"],
    );
    gauge("labrig_leases_active", "Leases holding devices now.", (g) => g.set(sources.leases().active));
    gauge("labrig_leased_devices", "Devices held by a lease now.", (g) => g.set(sources.leases().devices));
    gauge("labrig_runs_active", "Runs queued or running.", (g) => g.set(sources.runsActive()));
    gauge("labrig_planner_enabled", "1 when the Gemini planner is configured (GEMINI_API_KEY), else 0.", (g) => g.set(sources.planner().enabled ? 1 : 0));
    gauge("labrig_planner_budget_remaining_requests", "Planner requests left in today's budget (UTC day).", (g) => g.set(sources.planner().requestsLeft));
    gauge("labrig_planner_budget_remaining_tokens", "Planner tokens left in today's budget (UTC day).", (g) => g.set(sources.planner().tokensLeft));
    gauge("labrig_agents_connected", "Host agents connected on /agent.", (g) => g.set(sources.connections().agents));
    gauge("labrig_dashboards_connected", "Operator sockets connected on /dashboard.", (g) => g.set(sources.connections().dashboards));
    gauge("labrig_video_streams", "Live video streams somebody watches.", (g) => g.set(sources.video().streams));
    gauge("labrig_video_viewers", "Watchers of live video streams, summed over streams.", (g) => g.set(sources.video().viewers));
  }

  /** An action ended (every action, also those that never reached a device). */
  actionFinished(a: FinishedAction, nowMs = Date.now()): void {
    this.actions.inc({ action: a.action, outcome: a.status, error_code: a.errorCode ?? "none" });
    const queued = Date.parse(a.queuedAt);
    if (!Number.isNaN(queued)) this.latency.observe({ action: a.action }, Math.max(0, nowMs - queued) / 1000);
  }

  /** An action was sent to an agent after waiting `waitedMs` on the hub. */
  actionDispatched(action: string, waitedMs: number): void {
    this.queueWait.observe({ action }, waitedMs / 1000);
  }

  runFinished(status: string): void {
    this.runs.inc({ status });
  }

  planFinished(status: string, usage: { input_tokens: number; output_tokens: number }): void {
    this.plannerCalls.inc({ status });
    this.plannerTokens.inc({ direction: "input" }, usage.input_tokens);
    this.plannerTokens.inc({ direction: "output" }, usage.output_tokens);
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
