import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { cleanupTempDirs, startHub, stopAll } from "./helpers.js";

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

/** Sends one HTTP/1.1 request on `socket` and resolves with the raw response head, or rejects when the server closes the socket. */
function request(socket: Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    const onData = (d: Buffer): void => {
      data += d.toString("latin1");
      const end = data.indexOf("\r\n\r\n");
      const length = /content-length: (\d+)/i.exec(data);
      if (end >= 0 && length && data.length >= end + 4 + Number(length[1])) {
        cleanup();
        resolve(data.slice(0, end));
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`the server closed the pooled connection (got ${JSON.stringify(data.slice(0, 80))})`));
    };
    const cleanup = (): void => {
      socket.off("data", onData);
      socket.off("close", onClose);
    };
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  });
}

describe("HTTP keep-alive", () => {
  it("keeps an idle pooled connection open past Node's 5 s default and announces its timeout, so a client never sends into a closing socket", async () => {
    const hub = await startHub();
    const socket = connect(hub.port, "127.0.0.1");
    await new Promise<void>((r) => socket.once("connect", () => r()));
    try {
      const first = await request(socket, "/api/health");
      expect(first).toMatch(/^HTTP\/1\.1 200/);
      expect(first).toMatch(/keep-alive: timeout=65/i);
      // Longer than Node's default keepAliveTimeout (5 s) and undici's pool idle time (4 s).
      await new Promise((r) => setTimeout(r, 6000));
      const second = await request(socket, "/api/health");
      expect(second).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      socket.destroy();
    }
  }, 20_000);
});
