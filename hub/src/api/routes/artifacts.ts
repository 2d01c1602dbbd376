import { once } from "node:events";
import type { Writable } from "node:stream";
import { IdSchema } from "@labrig/shared";
import { z } from "zod";
import type { AgentArtifacts } from "../../services/agent-artifacts.js";
import { RESPONDED, route, type Route } from "../route.js";

/**
 * Waits until `out` takes more data or closes. The listener that did not fire is removed: a clip
 * streamed in hundreds of slices to a slow client would otherwise pile up one `close` listener per wait.
 */
export async function drainedOrClosed(out: Writable): Promise<void> {
  const done = new AbortController();
  try {
    await Promise.race([once(out, "drain", { signal: done.signal }), once(out, "close", { signal: done.signal })]);
  } finally {
    done.abort();
  }
}

const ArtifactPath = z.object({ host: IdSchema, id: z.string().min(1).max(80) });

/** A snapshot or clip read from the agent that holds it, streamed through. */
export function artifactRoutes(deps: { agentArtifacts: AgentArtifacts }): Route[] {
  return [
    route({
      method: "get",
      path: "/api/hosts/:host/artifacts/:id",
      tag: "hosts",
      summary: "A snapshot or clip, read from the agent that holds it (400 bad id, 404 unknown, 503 host offline).",
      params: ArtifactPath,
      responseType: "application/octet-stream",
      handler: async ({ params, res }) => {
        const artifact = await deps.agentArtifacts.open(params.host, params.id);
        res.status(200);
        res.setHeader("Content-Type", artifact.mime_type);
        res.setHeader("Content-Length", String(artifact.size));
        // An id names one immutable file: caching it is always right.
        res.setHeader("Cache-Control", "private, max-age=86400, immutable");
        res.write(artifact.first);
        for await (const part of artifact.rest) {
          // A client that went away stops the reading: no more slices are asked of the agent.
          if (res.destroyed) return RESPONDED;
          if (!res.write(part)) await drainedOrClosed(res);
        }
        res.end();
        return RESPONDED;
      },
    }),
  ];
}
