import type { Socket } from "socket.io";

/** The one live socket per host. Shared by the /agent namespace (which fills it) and the action proxy (which sends on it). */
export class AgentConnections {
  private readonly sockets = new Map<string, Socket>();

  get(hostId: string): Socket | undefined {
    return this.sockets.get(hostId);
  }

  /** Registers `socket` as the host's live socket and returns the one it replaces, if any. */
  set(hostId: string, socket: Socket): Socket | undefined {
    const previous = this.sockets.get(hostId);
    this.sockets.set(hostId, socket);
    return previous === socket ? undefined : previous;
  }

  /** Forgets the socket if it is still the host's live one; returns whether it was. */
  release(hostId: string, socket: Socket): boolean {
    if (this.sockets.get(hostId) !== socket) return false;
    this.sockets.delete(hostId);
    return true;
  }

  isLive(hostId: string, socket: Socket): boolean {
    return this.sockets.get(hostId) === socket;
  }

  get size(): number {
    return this.sockets.size;
  }
}
