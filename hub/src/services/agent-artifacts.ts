import {
  ARTIFACT_FETCH_MAX_BYTES,
  ArtifactFetchAckSchema,
  ArtifactIdSchema,
  LabrigError,
  OkAckSchema,
  describeZodError,
  type ArtifactFetch,
  type ErrorEnvelope,
} from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { AgentConnections } from "../realtime/agent-connections.js";

/** An artifact being read from its agent slice by slice: the first slice is already here. */
export interface OpenedArtifact {
  mime_type: string;
  size: number;
  first: Buffer;
  /** The remaining slices, fetched one at a time as the caller asks (so a slow HTTP client paces the agent). */
  rest: AsyncGenerator<Buffer, void, void>;
}

export interface AgentArtifactsOptions {
  /** How long the agent may take to answer one slice. */
  sliceTimeoutMs?: number;
}

/**
 * Snapshots and clips stay on the agent that made them until the hub fetches them. This reads
 * them over the host's live socket (`artifact.fetch`, in slices that fit one socket.io message)
 * and tells the agent to delete its copy once the hub has stored one (`artifact.delete`).
 */
export class AgentArtifacts {
  private readonly sliceTimeoutMs: number;

  constructor(
    private readonly connections: AgentConnections,
    private readonly hosts: { get(id: string): unknown },
    private readonly logger: Logger,
    options: AgentArtifactsOptions = {},
  ) {
    this.sliceTimeoutMs = options.sliceTimeoutMs ?? 15_000;
  }

  /** The whole artifact in memory (snapshots for the planner; use open() to stream big clips). */
  async fetchArtifact(host: string, id: string): Promise<{ mime_type: string; data: Buffer }> {
    const a = await this.open(host, id);
    const parts = [a.first];
    for await (const part of a.rest) parts.push(part);
    return { mime_type: a.mime_type, data: Buffer.concat(parts) };
  }

  /** Starts reading an artifact: validates the id, finds the host's socket, fetches the first slice. */
  async open(host: string, id: string): Promise<OpenedArtifact> {
    if (!ArtifactIdSchema.safeParse(id).success) {
      throw new LabrigError("validation_failed", `'${id.slice(0, 80)}' is not an artifact id; use the 'artifact' value a capture action returned.`);
    }
    if (!this.hosts.get(host)) throw new LabrigError("unknown_host", `No host '${host}'. GET /api/hosts lists the hosts.`);
    const first = await this.slice(host, id, 0);
    const size = first.size;
    const self = this;
    async function* rest(): AsyncGenerator<Buffer, void, void> {
      let offset = first.data.length;
      while (offset < size) {
        const next = await self.slice(host, id, offset);
        if (next.data.length === 0 || next.size !== size) {
          throw new LabrigError("host_lost", `Artifact ${id} on ${host} changed or shrank while it was being read; fetch it again.`);
        }
        offset += next.data.length;
        yield next.data;
      }
    }
    return { mime_type: first.mime_type, size, first: first.data, rest: rest() };
  }

  /** Tells the agent the hub has its own copy now. False when the agent could not be asked or did not have it. */
  async deleteArtifact(host: string, id: string): Promise<boolean> {
    const socket = this.connections.get(host);
    if (!socket) return false;
    try {
      const ack: unknown = await socket.timeout(this.sliceTimeoutMs).emitWithAck("artifact.delete", { id });
      const parsed = OkAckSchema.safeParse(ack);
      return parsed.success && parsed.data.ok;
    } catch (err) {
      this.logger.warn({ host, artifact: id, err: (err as Error).message }, "agent did not confirm deleting an artifact; it ages out there by itself");
      return false;
    }
  }

  private async slice(host: string, id: string, offset: number): Promise<{ mime_type: string; size: number; data: Buffer }> {
    const socket = this.connections.get(host);
    if (!socket) throw new LabrigError("host_offline", `Host '${host}' is offline; its artifacts can be fetched when its agent is connected again.`, { retryAfter: 5 });
    const request: ArtifactFetch = { id, offset, max_bytes: ARTIFACT_FETCH_MAX_BYTES };
    let ack: unknown;
    try {
      ack = await socket.timeout(this.sliceTimeoutMs).emitWithAck("artifact.fetch", request);
    } catch (err) {
      throw new LabrigError("host_lost", `Host '${host}' did not answer artifact.fetch within ${this.sliceTimeoutMs} ms; retry.`, { cause: err });
    }
    const parsed = ArtifactFetchAckSchema.safeParse(ack);
    if (!parsed.success) {
      this.logger.error({ host, artifact: id, problem: describeZodError(parsed.error) }, "agent answered artifact.fetch with an invalid ack");
      throw new LabrigError("internal_error", `Host '${host}' answered artifact.fetch in an unexpected shape; are the agent and hub compatible versions?`);
    }
    if (!parsed.data.ok) throw fromEnvelope(parsed.data.error);
    const { mime_type, size, data } = parsed.data;
    return { mime_type, size, data: Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
  }
}

function fromEnvelope(e: ErrorEnvelope): LabrigError {
  return new LabrigError(e.error_code, e.message, e.retry_after === undefined ? {} : { retryAfter: e.retry_after });
}
