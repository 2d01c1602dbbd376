import type { AgentToHubEvents, HubToAgentEvents } from "@labrig/shared";
import type { Socket } from "socket.io";

/** An agent's socket, typed from the protocol: emits carry the payload each event declares. */
export type AgentSocket = Socket<AgentToHubEvents, HubToAgentEvents>;

/** The one live socket per host. The /agent namespace fills it; units that talk to agents read it. */
export class AgentConnections {
  private readonly sockets = new Map<string, AgentSocket>();

  get(hostId: string): AgentSocket | undefined {
    return this.sockets.get(hostId);
  }

  /** Registers `socket` as the host's live socket and returns the one it replaces, if any. */
  set(hostId: string, socket: AgentSocket): AgentSocket | undefined {
    const previous = this.sockets.get(hostId);
    this.sockets.set(hostId, socket);
    return previous === socket ? undefined : previous;
  }

  /** Forgets the socket if it is still the host's live one; returns whether it was. */
  release(hostId: string, socket: AgentSocket): boolean {
    if (this.sockets.get(hostId) !== socket) return false;
    this.sockets.delete(hostId);
    return true;
  }

  isLive(hostId: string, socket: AgentSocket): boolean {
    return this.sockets.get(hostId) === socket;
  }

  get size(): number {
    return this.sockets.size;
  }
}
