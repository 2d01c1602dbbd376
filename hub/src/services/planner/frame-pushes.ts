import { makeEnvelope, toLabrigError } from "@labrig/shared";
import type { AgentNamespace } from "../../realtime/agent-namespace.js";
import type { Planner } from "./planner.js";

/** Agents may push a frame with an instruction (`frame`); the planner plans from it like any plan (its id in the ack). */
export function acceptFramePushes(agents: AgentNamespace, planner: Planner): void {
  agents.handle("frame", (session, push, ack) => {
    if (!planner.available) {
      ack?.({ ok: false, error: makeEnvelope("planner_unavailable", "This hub has no planner: set GEMINI_API_KEY on the hub and restart it.") });
      return;
    }
    try {
      ack?.({ ok: true, plan_id: planner.accept(session.host, push) });
    } catch (err) {
      ack?.({ ok: false, error: toLabrigError(err).toEnvelope() });
    }
  });
}
